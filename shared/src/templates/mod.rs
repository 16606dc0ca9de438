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
    /// Notice that a provider's sign-in was linked to the account.
    IdentityLinked,
    /// SMS with a 6-digit code (text only).
    PhoneCode,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 10] = [
        TemplateKind::Verification,
        TemplateKind::PasswordReset,
        TemplateKind::EmailCode,
        TemplateKind::MagicLink,
        TemplateKind::EmailChange,
        TemplateKind::EmailChangeNotice,
        TemplateKind::Invitation,
        TemplateKind::NewSignIn,
        TemplateKind::IdentityLinked,
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
            TemplateKind::IdentityLinked => "identity_linked",
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
    "provider",
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
        TemplateKind::IdentityLinked => &["project_name", "email", "provider", "time"],
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
            "provider" => "google",
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

mod defaults;
use defaults::default_template;

#[cfg(test)]
mod tests;
