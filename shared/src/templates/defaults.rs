//! The built-in subject, text and HTML of each message kind.

use super::TemplateKind;

pub(super) struct DefaultTemplate {
    pub(super) subject: &'static str,
    pub(super) text: &'static str,
    pub(super) html: Option<&'static str>,
}

// Small building blocks for the HTML versions; each expands to a literal so
// whole pages are `&'static str`.
macro_rules! page {
    ($($body:tt)*) => {
        concat!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            "<title>{{project_name}}</title>\n</head>\n",
            "<body style=\"margin:0;padding:0;background-color:#f4f4f5;\">\n",
            "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background-color:#f4f4f5;\">\n",
            "<tr><td align=\"center\" style=\"padding:32px 16px;\">\n",
            "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"max-width:480px;background-color:#ffffff;border:1px solid #e4e4e7;border-radius:8px;\">\n",
            "<tr><td style=\"padding:32px;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.6;color:#18181b;\">\n",
            "<p style=\"margin:0 0 24px;font-size:14px;font-weight:600;color:#52525b;\">{{project_name}}</p>\n",
            $($body)*
            "</td></tr>\n</table>\n</td></tr>\n</table>\n</body>\n</html>\n",
        )
    };
}

macro_rules! h1 {
    ($t:literal) => {
        concat!(
            "<h1 style=\"margin:0 0 16px;font-size:20px;font-weight:600;line-height:1.3;\">",
            $t,
            "</h1>\n"
        )
    };
}

macro_rules! p {
    ($t:literal) => {
        concat!("<p style=\"margin:0 0 16px;\">", $t, "</p>\n")
    };
}

macro_rules! button {
    ($label:literal) => {
        concat!(
            "<p style=\"margin:24px 0;\"><a href=\"{{link}}\" style=\"display:inline-block;padding:12px 24px;background-color:#18181b;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600;\">",
            $label,
            "</a></p>\n"
        )
    };
}

macro_rules! code {
    () => {
        "<p style=\"margin:24px 0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,'Courier New',monospace;font-size:32px;font-weight:700;letter-spacing:6px;\">{{code}}</p>\n"
    };
}

macro_rules! fallback {
    () => {
        concat!(
            "<p style=\"margin:0 0 16px;font-size:13px;color:#71717a;\">If the button does not work, copy this link into your browser:<br>",
            "<a href=\"{{link}}\" style=\"color:#2563eb;word-break:break-all;\">{{link}}</a></p>\n"
        )
    };
}

macro_rules! note {
    ($t:literal) => {
        concat!(
            "<p style=\"margin:0 0 16px;font-size:13px;color:#71717a;\">",
            $t,
            "</p>\n"
        )
    };
}

pub(super) fn default_template(kind: TemplateKind) -> DefaultTemplate {
    match kind {
        TemplateKind::Verification => DefaultTemplate {
            subject: "Verify your email for {{project_name}}",
            text: "Confirm that {{email}} is your email address for {{project_name}} by opening this link:\n\n\
                   {{link}}\n\n\
                   Or enter this code: {{code}}\n\n\
                   The link and code expire in {{expires_in}}.\n\n\
                   If you did not create an account with {{project_name}}, you can ignore this email.\n",
            html: Some(page!(
                h1!("Verify your email"),
                p!("Confirm that {{email}} is your email address for {{project_name}}."),
                button!("Verify email"),
                p!("Or enter this code:"),
                code!(),
                note!("The link and code expire in {{expires_in}}."),
                fallback!(),
                note!(
                    "If you did not create an account with {{project_name}}, you can ignore this email."
                ),
            )),
        },
        TemplateKind::PasswordReset => DefaultTemplate {
            subject: "Reset your {{project_name}} password",
            text: "We received a request to reset the password for {{email}} on {{project_name}}. \
                   To choose a new password, open this link:\n\n\
                   {{link}}\n\n\
                   The link expires in {{expires_in}}.\n\n\
                   If you did not ask for this, you can ignore this email. Your password will not change.\n",
            html: Some(page!(
                h1!("Reset your password"),
                p!(
                    "We received a request to reset the password for {{email}} on {{project_name}}."
                ),
                button!("Choose a new password"),
                note!("The link expires in {{expires_in}}."),
                fallback!(),
                note!(
                    "If you did not ask for this, you can ignore this email. Your password will not change."
                ),
            )),
        },
        TemplateKind::EmailCode => DefaultTemplate {
            subject: "{{code}} is your {{project_name}} sign-in code",
            text: "Your sign-in code for {{project_name}} is:\n\n\
                   {{code}}\n\n\
                   It expires in {{expires_in}}. Do not share it with anyone.\n\n\
                   If you did not try to sign in, you can ignore this email.\n",
            html: Some(page!(
                h1!("Your sign-in code"),
                p!("Enter this code to sign in to {{project_name}} as {{email}}:"),
                code!(),
                note!("The code expires in {{expires_in}}. Do not share it with anyone."),
                note!("If you did not try to sign in, you can ignore this email."),
            )),
        },
        TemplateKind::MagicLink => DefaultTemplate {
            subject: "Sign in to {{project_name}}",
            text: "Open this link to sign in to {{project_name}} as {{email}}:\n\n\
                   {{link}}\n\n\
                   The link expires in {{expires_in}}.\n\n\
                   If you did not try to sign in, you can ignore this email.\n",
            html: Some(page!(
                h1!("Sign in to {{project_name}}"),
                p!("Use the button below to sign in as {{email}}."),
                button!("Sign in"),
                note!("The link expires in {{expires_in}}."),
                fallback!(),
                note!("If you did not try to sign in, you can ignore this email."),
            )),
        },
        TemplateKind::EmailChange => DefaultTemplate {
            subject: "Confirm your new email address for {{project_name}}",
            text: "We received a request to change the email address of a {{project_name}} account \
                   from {{old_email}} to {{new_email}}. To confirm, open this link:\n\n\
                   {{link}}\n\n\
                   The link expires in {{expires_in}}.\n\n\
                   If you did not ask for this, you can ignore this email. The address will not change.\n",
            html: Some(page!(
                h1!("Confirm your new email address"),
                p!(
                    "We received a request to change the email address of a {{project_name}} account from {{old_email}} to {{new_email}}."
                ),
                button!("Confirm new address"),
                note!("The link expires in {{expires_in}}."),
                fallback!(),
                note!(
                    "If you did not ask for this, you can ignore this email. The address will not change."
                ),
            )),
        },
        TemplateKind::EmailChangeNotice => DefaultTemplate {
            subject: "Your {{project_name}} email address is being changed",
            text: "The email address of your {{project_name}} account is being changed \
                   from {{old_email}} to {{new_email}}.\n\n\
                   If you made this change, no action is needed.\n\n\
                   If you did not, someone else may have access to your account. \
                   Reset your password and contact {{project_name}} support.\n",
            html: Some(page!(
                h1!("Your email address is being changed"),
                p!(
                    "The email address of your {{project_name}} account is being changed from {{old_email}} to {{new_email}}."
                ),
                p!("If you made this change, no action is needed."),
                p!(
                    "If you did not, someone else may have access to your account. Reset your password and contact {{project_name}} support."
                ),
            )),
        },
        TemplateKind::Invitation => DefaultTemplate {
            subject: "{{inviter}} invited you to join {{tenant_name}} on {{project_name}}",
            text: "{{inviter}} invited you ({{email}}) to join {{tenant_name}} on {{project_name}}. \
                   To accept, open this link:\n\n\
                   {{link}}\n\n\
                   The invitation expires in {{expires_in}}.\n\n\
                   If you were not expecting this invitation, you can ignore this email.\n",
            html: Some(page!(
                h1!("Join {{tenant_name}}"),
                p!(
                    "{{inviter}} invited you ({{email}}) to join {{tenant_name}} on {{project_name}}."
                ),
                button!("Accept invitation"),
                note!("The invitation expires in {{expires_in}}."),
                fallback!(),
                note!("If you were not expecting this invitation, you can ignore this email."),
            )),
        },
        TemplateKind::NewSignIn => DefaultTemplate {
            subject: "New sign-in to your {{project_name}} account",
            text: "Your {{project_name}} account ({{email}}) was signed in to from a new device.\n\n\
                   Time: {{time}}\n\
                   IP address: {{ip}}\n\
                   Device: {{user_agent}}\n\n\
                   If this was you, no action is needed. \
                   If it was not, reset your password right away.\n",
            html: Some(page!(
                h1!("New sign-in"),
                p!("Your {{project_name}} account ({{email}}) was signed in to from a new device."),
                "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"margin:0 0 16px;font-size:14px;\">\n",
                "<tr><td style=\"padding:2px 16px 2px 0;color:#71717a;\">Time</td><td style=\"padding:2px 0;\">{{time}}</td></tr>\n",
                "<tr><td style=\"padding:2px 16px 2px 0;color:#71717a;\">IP address</td><td style=\"padding:2px 0;\">{{ip}}</td></tr>\n",
                "<tr><td style=\"padding:2px 16px 2px 0;color:#71717a;\">Device</td><td style=\"padding:2px 0;\">{{user_agent}}</td></tr>\n",
                "</table>\n",
                p!(
                    "If this was you, no action is needed. If it was not, reset your password right away."
                ),
            )),
        },
        TemplateKind::IdentityLinked => DefaultTemplate {
            subject: "A new way to sign in to your {{project_name}} account",
            text: "Your {{project_name}} account ({{email}}) can now be signed in to \
                   with {{provider}} (linked {{time}}).\n\n\
                   If you did this, no action is needed. If you did not, someone else \
                   may have access to your account: remove the sign-in method, reset \
                   your password and contact {{project_name}} support.\n",
            html: Some(page!(
                h1!("A new way to sign in"),
                p!(
                    "Your {{project_name}} account ({{email}}) can now be signed in to with {{provider}} (linked {{time}})."
                ),
                p!(
                    "If you did this, no action is needed. If you did not, someone else may have access to your account: remove the sign-in method, reset your password and contact {{project_name}} support."
                ),
            )),
        },
        TemplateKind::PhoneCode => DefaultTemplate {
            subject: "",
            text: "{{code}} is your {{project_name}} verification code.",
            html: None,
        },
    }
}
