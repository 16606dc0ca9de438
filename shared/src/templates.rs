//! The texts of the service's emails and SMS: built-in defaults, per-project
//! overrides and rendering.
//!
//! A template is plain text with `{{name}}` placeholders (spaces inside the
//! braces are allowed: `{{ name }}`). Each kind supplies a fixed set of
//! variables ([`variables`]); an override may use only those. When rendering,
//! values are inserted as is into `text`, HTML-escaped into `html`, and with
//! line breaks turned into spaces into `subject` (no header injection). A
//! variable the caller did not supply renders as empty text. Values are never
//! scanned for placeholders themselves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where overrides live in the project settings; error messages start with it.
pub const SETTINGS_PATH: &str = "settings.email_templates";

/// Longest subject an override may set, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest `text` or `html` an override may set, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

/// Every message the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// Link and code to verify an email address.
    Verification,
    /// Link to choose a new password.
    PasswordReset,
    /// A 6-digit sign-in code.
    EmailCode,
    /// A sign-in link.
    MagicLink,
    /// Link to confirm a new address, sent to the NEW address.
    EmailChange,
    /// Notice of an address change, sent to the OLD address (no link).
    EmailChangeNotice,
    /// Link to join an organisation.
    Invitation,
    /// Notice of a sign-in from a new device.
    NewSignIn,
    /// SMS with a 6-digit code (text only).
    PhoneCode,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 9] = [
        TemplateKind::Verification,
        TemplateKind::PasswordReset,
        TemplateKind::EmailCode,
        TemplateKind::MagicLink,
        TemplateKind::EmailChange,
        TemplateKind::EmailChangeNotice,
        TemplateKind::Invitation,
        TemplateKind::NewSignIn,
        TemplateKind::PhoneCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Verification => "verification",
            TemplateKind::PasswordReset => "password_reset",
            TemplateKind::EmailCode => "email_code",
            TemplateKind::MagicLink => "magic_link",
            TemplateKind::EmailChange => "email_change",
            TemplateKind::EmailChangeNotice => "email_change_notice",
            TemplateKind::Invitation => "invitation",
            TemplateKind::NewSignIn => "new_sign_in",
            TemplateKind::PhoneCode => "phone_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// An SMS: only `text`, no subject and no HTML.
    pub fn is_sms(self) -> bool {
        self == TemplateKind::PhoneCode
    }
}

/// Every variable name a template may mention (each kind supplies a subset).
pub const VARIABLES: &[&str] = &[
    "project_name",
    "email",
    "new_email",
    "old_email",
    "link",
    "code",
    "expires_in",
    "tenant_name",
    "inviter",
    "ip",
    "user_agent",
    "time",
    "phone",
];

/// The variables a kind supplies. `email` is always the recipient's address
/// (for `email_change`, the new one); `expires_in` is human text such as
/// "15 minutes"; `inviter` is a display name or address, always supplied.
pub fn variables(kind: TemplateKind) -> &'static [&'static str] {
    match kind {
        TemplateKind::Verification => &["project_name", "email", "link", "code", "expires_in"],
        TemplateKind::PasswordReset | TemplateKind::MagicLink => {
            &["project_name", "email", "link", "expires_in"]
        }
        TemplateKind::EmailCode => &["project_name", "email", "code", "expires_in"],
        TemplateKind::EmailChange => &[
            "project_name",
            "email",
            "old_email",
            "new_email",
            "link",
            "expires_in",
        ],
        TemplateKind::EmailChangeNotice => &["project_name", "email", "old_email", "new_email"],
        TemplateKind::Invitation => &[
            "project_name",
            "email",
            "tenant_name",
            "inviter",
            "link",
            "expires_in",
        ],
        TemplateKind::NewSignIn => &["project_name", "email", "ip", "user_agent", "time"],
        TemplateKind::PhoneCode => &["project_name", "phone", "code", "expires_in"],
    }
}

/// A project's replacement for some fields of one kind's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A project's overrides, serialized as a JSON object keyed by kind.
pub type TemplateOverrides = BTreeMap<TemplateKind, TemplateOverride>;

/// The values to substitute, by variable name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars<'a>(pub Vec<(&'static str, &'a str)>);

impl<'a> Vars<'a> {
    pub fn new() -> Self {
        Vars(Vec::new())
    }

    /// Sets `name` (replacing an earlier value).
    pub fn with(mut self, name: &'static str, value: &'a str) -> Self {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// A message ready to send. `html` is `None` for SMS; `subject` is empty for
/// SMS.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Renders `kind`, taking each field from `over` where it sets one and from
/// the built-in default otherwise.
pub fn render(kind: TemplateKind, over: Option<&TemplateOverride>, vars: &Vars) -> Rendered {
    let default = default_template(kind);
    let pick = |field: fn(&TemplateOverride) -> &Option<String>, fallback: &'static str| {
        over.and_then(|o| field(o).as_deref()).unwrap_or(fallback)
    };
    if kind.is_sms() {
        return Rendered {
            subject: String::new(),
            text: substitute(pick(|o| &o.text, default.text), vars, Mode::Text),
            html: None,
        };
    }
    Rendered {
        subject: substitute(pick(|o| &o.subject, default.subject), vars, Mode::Subject),
        text: substitute(pick(|o| &o.text, default.text), vars, Mode::Text),
        html: default
            .html
            .map(|html| substitute(pick(|o| &o.html, html), vars, Mode::Html)),
    }
}

/// Checks one override: field limits, a single-line subject, no subject or
/// HTML for SMS, closed placeholders naming variables the kind supplies. The
/// message names the field, e.g.
/// `settings.email_templates.magic_link.html: unknown variable {{foo}}`.
pub fn validate_override(kind: TemplateKind, over: &TemplateOverride) -> Result<(), String> {
    let fields = [
        ("subject", &over.subject, MAX_SUBJECT_CHARS),
        ("text", &over.text, MAX_BODY_CHARS),
        ("html", &over.html, MAX_BODY_CHARS),
    ];
    for (field, value, max) in fields {
        let Some(value) = value else { continue };
        let at = format!("{SETTINGS_PATH}.{}.{field}", kind.as_str());
        if kind.is_sms() && field != "text" {
            return Err(format!("{at}: not allowed, an SMS has only text"));
        }
        if value.trim().is_empty() {
            return Err(format!("{at}: is empty; leave it out to use the default"));
        }
        if value.chars().count() > max {
            return Err(format!("{at}: longer than {max} characters"));
        }
        if field == "subject" && value.chars().any(char::is_control) {
            return Err(format!(
                "{at}: must be a single line without control characters"
            ));
        }
        let mut bad = None;
        let closed = scan(value, |piece| {
            let Piece::Var(name) = piece else { return };
            if bad.is_some() {
                return;
            }
            if !VARIABLES.contains(&name) {
                bad = Some(format!("{at}: unknown variable {{{{{name}}}}}"));
            } else if !variables(kind).contains(&name) {
                bad = Some(format!(
                    "{at}: {{{{{name}}}}} is not available in {} templates (available: {})",
                    kind.as_str(),
                    variables(kind).join(", ")
                ));
            }
        });
        if let Some(bad) = bad {
            return Err(bad);
        }
        if !closed {
            return Err(format!("{at}: a {{{{ is not closed by }}}}"));
        }
    }
    Ok(())
}

/// Reads `settings.email_templates` from JSON: an object keyed by kind whose
/// values are objects with `subject`, `text` and `html` (each a string, or
/// null/absent to keep the default). `null` means no overrides.
pub fn parse_overrides(value: &Value) -> Result<TemplateOverrides, String> {
    let mut out = TemplateOverrides::new();
    let map = match value {
        Value::Null => return Ok(out),
        Value::Object(map) => map,
        _ => {
            return Err(format!(
                "{SETTINGS_PATH} must be an object keyed by template kind"
            ));
        }
    };
    for (key, entry) in map {
        let kind = TemplateKind::parse(key).ok_or_else(|| {
            let known: Vec<&str> = TemplateKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "{SETTINGS_PATH}.{key} is not a known template (known: {})",
                known.join(", ")
            )
        })?;
        let fields = entry.as_object().ok_or_else(|| {
            format!("{SETTINGS_PATH}.{key} must be an object with subject, text and/or html")
        })?;
        let mut over = TemplateOverride::default();
        for (field, v) in fields {
            let slot = match field.as_str() {
                "subject" => &mut over.subject,
                "text" => &mut over.text,
                "html" => &mut over.html,
                _ => {
                    return Err(format!(
                        "{SETTINGS_PATH}.{key}.{field} is not a known field (subject, text, html)"
                    ));
                }
            };
            *slot = match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => {
                    return Err(format!(
                        "{SETTINGS_PATH}.{key}.{field} must be a string or null"
                    ));
                }
            };
        }
        validate_override(kind, &over)?;
        out.insert(kind, over);
    }
    Ok(out)
}

/// Realistic example values for previews: exactly the variables `kind`
/// supplies.
pub fn sample_vars(kind: TemplateKind) -> Vars<'static> {
    let email = if kind == TemplateKind::EmailChange {
        "ada.new@example.com"
    } else {
        "ada@example.com"
    };
    let link = match kind {
        TemplateKind::Verification => {
            "https://auth.acme.example/verify-email?token=V2hhdCBhIHRva2Vu"
        }
        TemplateKind::PasswordReset => {
            "https://auth.acme.example/reset-password?token=cmVzZXQgbWUgcGxz"
        }
        TemplateKind::MagicLink => "https://auth.acme.example/magic-link?token=bWFnaWMgbGluayE",
        TemplateKind::EmailChange => {
            "https://auth.acme.example/confirm-email?token=bmV3IGFkZHJlc3M"
        }
        TemplateKind::Invitation => "https://auth.acme.example/invitations/accept?token=am9pbiB1cw",
        _ => "",
    };
    let expires_in = match kind {
        TemplateKind::Invitation => "7 days",
        TemplateKind::Verification | TemplateKind::EmailChange => "24 hours",
        TemplateKind::PasswordReset => "1 hour",
        _ => "15 minutes",
    };
    let value = |name: &str| -> &'static str {
        match name {
            "project_name" => "Acme",
            "email" => email,
            "new_email" => "ada.new@example.com",
            "old_email" => "ada@example.com",
            "link" => link,
            "code" => "482915",
            "expires_in" => expires_in,
            "tenant_name" => "Acme Research",
            "inviter" => "Grace Hopper",
            "ip" => "203.0.113.42",
            "user_agent" => "Firefox 128 on macOS",
            "time" => "3 March 2025, 14:05 UTC",
            "phone" => "+15555550123",
            _ => "",
        }
    };
    Vars(variables(kind).iter().map(|&n| (n, value(n))).collect())
}

// ---------------------------------------------------------------------------
// Rendering

#[derive(Clone, Copy)]
enum Mode {
    Subject,
    Text,
    Html,
}

fn substitute(template: &str, vars: &Vars, mode: Mode) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    // An unclosed `{{` stays as literal text (validation refuses it).
    scan(template, |piece| match piece {
        Piece::Literal(literal) => out.push_str(literal),
        Piece::Var(name) => {
            let value = vars.get(name).unwrap_or("");
            match mode {
                Mode::Text => out.push_str(value),
                Mode::Subject => out.extend(value.chars().map(|c| {
                    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                        ' '
                    } else {
                        c
                    }
                })),
                Mode::Html => escape_html_into(&mut out, value),
            }
        }
    });
    out
}

enum Piece<'t> {
    Literal(&'t str),
    /// A placeholder's name, trimmed.
    Var(&'t str),
}

/// Splits `template` into literal runs and `{{ name }}` placeholders. Returns
/// false if a `{{` is never closed; the rest from that `{{` on is then passed
/// as a literal.
fn scan<'t>(template: &'t str, mut each: impl FnMut(Piece<'t>)) -> bool {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            each(Piece::Literal(rest));
            return false;
        };
        if start > 0 {
            each(Piece::Literal(&rest[..start]));
        }
        each(Piece::Var(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        each(Piece::Literal(rest));
    }
    true
}

fn escape_html_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------
// Built-in defaults

struct DefaultTemplate {
    subject: &'static str,
    text: &'static str,
    html: Option<&'static str>,
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

fn default_template(kind: TemplateKind) -> DefaultTemplate {
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
        TemplateKind::PhoneCode => DefaultTemplate {
            subject: "",
            text: "{{code}} is your {{project_name}} verification code.",
            html: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOSTILE: &str = "<script>alert(\"x\")</script> & 'y'";

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in TemplateKind::ALL {
            assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        assert_eq!(TemplateKind::parse("Magic_Link"), None);
        for kind in TemplateKind::ALL {
            for v in variables(kind) {
                assert!(VARIABLES.contains(v), "{v}");
            }
        }
    }

    #[test]
    fn every_kind_renders_with_sample_vars() {
        for kind in TemplateKind::ALL {
            let vars = sample_vars(kind);
            let names: Vec<&str> = vars.0.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, variables(kind), "{kind:?}");
            assert!(vars.0.iter().all(|(_, v)| !v.is_empty()), "{kind:?}");

            let r = render(kind, None, &vars);
            assert!(!r.text.contains("{{") && !r.text.contains("}}"), "{kind:?}");
            assert!(!r.subject.contains("{{"), "{kind:?}");
            assert!(r.text.contains("Acme"), "{kind:?}");
            if kind.is_sms() {
                assert_eq!(r.html, None);
                assert_eq!(r.subject, "");
                assert_eq!(r.text, "482915 is your Acme verification code.");
                continue;
            }
            assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
            let html = r.html.expect("email kinds have html");
            assert!(!html.contains("{{"), "{kind:?}");
            assert!(html.starts_with("<!DOCTYPE html>"));
            if let Some(link) = vars.get("link") {
                assert!(r.text.contains(link), "{kind:?}");
                assert!(html.contains(&format!("href=\"{link}\"")), "{kind:?}");
            }
            if vars.get("code").is_some() {
                assert!(r.text.contains("482915") && html.contains("monospace"));
            }
        }
    }

    #[test]
    fn defaults_pass_their_own_validation() {
        for kind in TemplateKind::ALL {
            let d = default_template(kind);
            let over = TemplateOverride {
                subject: (!kind.is_sms()).then(|| d.subject.to_string()),
                text: Some(d.text.to_string()),
                html: d.html.map(str::to_string),
            };
            validate_override(kind, &over).unwrap();
        }
    }

    #[test]
    fn html_escapes_values_text_does_not() {
        let vars = sample_vars(TemplateKind::MagicLink).with("project_name", HOSTILE);
        let r = render(TemplateKind::MagicLink, None, &vars);
        let html = r.html.unwrap();
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
        );
        assert!(r.text.contains(HOSTILE));
        assert!(r.subject.contains(HOSTILE));
    }

    #[test]
    fn line_breaks_in_values_do_not_reach_the_subject() {
        let vars = sample_vars(TemplateKind::MagicLink)
            .with("project_name", "Acme\r\nBcc: victim@example.com\n");
        let r = render(TemplateKind::MagicLink, None, &vars);
        assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
        assert_eq!(r.subject, "Sign in to Acme  Bcc: victim@example.com ");
        assert!(r.text.contains("Acme\r\nBcc"));
    }

    #[test]
    fn override_replaces_only_the_fields_it_sets() {
        let vars = sample_vars(TemplateKind::EmailCode);
        let default = render(TemplateKind::EmailCode, None, &vars);
        let over = TemplateOverride {
            subject: Some("Your code for {{ project_name }}".into()),
            ..Default::default()
        };
        let r = render(TemplateKind::EmailCode, Some(&over), &vars);
        assert_eq!(r.subject, "Your code for Acme");
        assert_eq!(r.text, default.text);
        assert_eq!(r.html, default.html);

        let sms = TemplateOverride {
            text: Some("Code: {{code}} ({{expires_in}})".into()),
            ..Default::default()
        };
        let r = render(
            TemplateKind::PhoneCode,
            Some(&sms),
            &sample_vars(TemplateKind::PhoneCode),
        );
        assert_eq!(r.text, "Code: 482915 (15 minutes)");
        assert_eq!(r.html, None);
    }

    #[test]
    fn missing_values_are_empty_and_values_are_not_expanded() {
        let vars = Vars::new().with("code", "{{project_name}}");
        let r = render(TemplateKind::PhoneCode, None, &vars);
        assert_eq!(r.text, "{{project_name}} is your  verification code.");
        // An unclosed `{{` in a template stays literal.
        let over = TemplateOverride {
            text: Some("a {{code}} b {{ c".into()),
            ..Default::default()
        };
        let r = render(
            TemplateKind::PhoneCode,
            Some(&over),
            &Vars::new().with("code", "1"),
        );
        assert_eq!(r.text, "a 1 b {{ c");
    }

    fn over(field: &str, value: &str) -> TemplateOverride {
        let mut o = TemplateOverride::default();
        let slot = match field {
            "subject" => &mut o.subject,
            "text" => &mut o.text,
            _ => &mut o.html,
        };
        *slot = Some(value.to_string());
        o
    }

    #[test]
    fn validation_refuses_bad_overrides() {
        let ml = TemplateKind::MagicLink;
        assert_eq!(
            validate_override(ml, &over("html", "<p>{{foo}}</p>")).unwrap_err(),
            "settings.email_templates.magic_link.html: unknown variable {{foo}}"
        );
        assert_eq!(
            validate_override(ml, &over("text", "{{ foo }}")).unwrap_err(),
            "settings.email_templates.magic_link.text: unknown variable {{foo}}"
        );
        let err = validate_override(TemplateKind::EmailChangeNotice, &over("text", "{{link}}"))
            .unwrap_err();
        assert!(
            err.starts_with(
                "settings.email_templates.email_change_notice.text: {{link}} is not available"
            ),
            "{err}"
        );
        let err = validate_override(ml, &over("text", "hi {{link")).unwrap_err();
        assert!(err.contains("not closed"), "{err}");
        let err =
            validate_override(ml, &over("subject", "Sign in\nBcc: x@example.com")).unwrap_err();
        assert_eq!(
            err,
            "settings.email_templates.magic_link.subject: must be a single line without control characters"
        );
        validate_override(ml, &over("subject", &"s".repeat(200))).unwrap();
        let err = validate_override(ml, &over("subject", &"s".repeat(201))).unwrap_err();
        assert!(err.contains("subject: longer than 200"), "{err}");
        validate_override(ml, &over("text", &"é".repeat(20_000))).unwrap();
        let err = validate_override(ml, &over("text", &"t".repeat(20_001))).unwrap_err();
        assert!(err.contains("text: longer than 20000"), "{err}");
        let err = validate_override(ml, &over("html", &"h".repeat(20_001))).unwrap_err();
        assert!(err.contains("html: longer than 20000"), "{err}");
        let err = validate_override(ml, &over("text", "  \n")).unwrap_err();
        assert!(err.contains("text: is empty"), "{err}");

        let pc = TemplateKind::PhoneCode;
        validate_override(pc, &over("text", "{{code}} for {{phone}}")).unwrap();
        assert_eq!(
            validate_override(pc, &over("html", "<b>{{code}}</b>")).unwrap_err(),
            "settings.email_templates.phone_code.html: not allowed, an SMS has only text"
        );
        let err = validate_override(pc, &over("subject", "Code")).unwrap_err();
        assert!(err.contains("phone_code.subject: not allowed"), "{err}");
        let err = validate_override(pc, &over("text", "{{link}}")).unwrap_err();
        assert!(err.contains("is not available in phone_code"), "{err}");
    }

    #[test]
    fn parse_overrides_checks_structure() {
        assert_eq!(
            parse_overrides(&Value::Null).unwrap(),
            TemplateOverrides::new()
        );
        assert!(
            parse_overrides(&json!([]))
                .unwrap_err()
                .contains("must be an object")
        );
        let err = parse_overrides(&json!({"welcome": {"text": "hi"}})).unwrap_err();
        assert!(
            err.starts_with("settings.email_templates.welcome is not a known template"),
            "{err}"
        );
        let err = parse_overrides(&json!({"magic_link": {"body": "hi"}})).unwrap_err();
        assert_eq!(
            err,
            "settings.email_templates.magic_link.body is not a known field (subject, text, html)"
        );
        let err = parse_overrides(&json!({"magic_link": {"text": 5}})).unwrap_err();
        assert!(
            err.contains("magic_link.text must be a string or null"),
            "{err}"
        );
        let err = parse_overrides(&json!({"magic_link": "hi"})).unwrap_err();
        assert!(err.contains("magic_link must be an object"), "{err}");
        let err = parse_overrides(&json!({"phone_code": {"html": "<b>{{code}}</b>"}})).unwrap_err();
        assert!(err.contains("phone_code.html: not allowed"), "{err}");
        let err = parse_overrides(&json!({"magic_link": {"html": "{{foo}}"}})).unwrap_err();
        assert_eq!(
            err,
            "settings.email_templates.magic_link.html: unknown variable {{foo}}"
        );
        // serde itself refuses unknown fields too.
        assert!(serde_json::from_value::<TemplateOverride>(json!({"body": "x"})).is_err());
    }

    #[test]
    fn parse_overrides_round_trips_through_serde_json() {
        let input = json!({
            "magic_link": {"subject": "Your {{project_name}} link", "text": null},
            "phone_code": {"text": "{{ code }} - {{project_name}}"},
            "invitation": {"html": "<p>{{inviter}} → {{tenant_name}}: <a href=\"{{link}}\">join</a></p>"}
        });
        let parsed = parse_overrides(&input).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[&TemplateKind::MagicLink].text, None);

        let value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            value,
            json!({
                "magic_link": {"subject": "Your {{project_name}} link"},
                "invitation": {"html": "<p>{{inviter}} → {{tenant_name}}: <a href=\"{{link}}\">join</a></p>"},
                "phone_code": {"text": "{{ code }} - {{project_name}}"}
            })
        );
        assert_eq!(parse_overrides(&value).unwrap(), parsed);
        let via_serde: TemplateOverrides = serde_json::from_value(value).unwrap();
        assert_eq!(via_serde, parsed);
    }
}
