//! One mailbox, one account: the canonical form of an email address that
//! uniqueness and lookups use. What the user typed is kept for display.

use unicode_normalization::UnicodeNormalization;

use crate::hostname::parse_hostname;

/// Why an address was refused (shown to the client).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(pub &'static str);

/// A validated email: `typed` as given (trimmed), `canonical` for matching:
/// Unicode NFKC, the local part case-folded, the domain as lowercase IDNA
/// ASCII without a trailing dot. `alice@example.com`, `Alice@Example.com.`
/// and `alice@ｅｘａｍｐｌｅ.com` are one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub typed: String,
    pub canonical: String,
}

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let typed = input.trim();
        if typed.is_empty() {
            return Err(EmailError("it is empty"));
        }
        if typed.chars().count() > 254 {
            return Err(EmailError("it is longer than 254 characters"));
        }
        if typed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(EmailError("it contains spaces or control characters"));
        }
        // Invisible characters (zero-width, soft hyphen, bidi controls,
        // variation selectors) would make a second account that looks like
        // the first.
        if typed.chars().any(invisible) {
            return Err(EmailError("it contains invisible characters"));
        }
        // NFKC first: a full-width ＠ or letters become their ASCII forms.
        let folded: String = typed.nfkc().collect();
        let (local, domain) = folded.rsplit_once('@').ok_or(EmailError("it has no @"))?;
        if local.is_empty() || local.chars().count() > 64 || local.contains('@') {
            return Err(EmailError(
                "the part before @ is empty, too long or has another @",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError("misplaced dot before @"));
        }
        if local
            .chars()
            .any(|c| "()<>[]\\,;:\"".contains(c) || c.is_whitespace())
        {
            return Err(EmailError(
                "the part before @ has characters that need quoting",
            ));
        }
        let domain = parse_hostname(domain).map_err(|_| EmailError("the domain is not valid"))?;
        let local: String = local.to_lowercase().nfkc().collect();
        Ok(Email {
            typed: typed.to_string(),
            canonical: format!("{local}@{domain}"),
        })
    }
}

/// Format and default-ignorable code points (Unicode `Cf` and friends).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The canonical form of a stored address, or `None` if it no longer
/// parses (rows from before validation tightened keep their old form).
pub fn canonical(stored: &str) -> Option<String> {
    Email::parse(stored).ok().map(|e| e.canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mailbox_one_form() {
        let forms = [
            "alice@example.com",
            "alice@example.com.",
            "alice@ｅｘａｍｐｌｅ.com",
            "ALICE@Example.COM",
            "ａｌｉｃｅ＠example.com",
            " Alice@EXAMPLE.com. ",
        ];
        for f in forms {
            assert_eq!(
                Email::parse(f).unwrap().canonical,
                "alice@example.com",
                "{f}"
            );
        }
        let e = Email::parse("José@Bücher.example").unwrap();
        assert_eq!(e.canonical, "josé@xn--bcher-kva.example");
        assert_eq!(e.typed, "José@Bücher.example");
        // Composed and decomposed accents are one mailbox.
        assert_eq!(
            Email::parse("jose\u{301}@x.com").unwrap().canonical,
            Email::parse("jos\u{e9}@x.com").unwrap().canonical
        );
        for bad in [
            "",
            "no-at",
            "@x.com",
            "a@",
            "a@b",
            "a b@x.com",
            "a@x.com\u{0}",
            "a..b@x.com",
            ".a@x.com",
            "a\"b@x.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@x.com", "a".repeat(65))).is_err());
        for invisible in [
            "ali\u{200B}ce@example.com",
            "alice\u{00AD}@example.com",
            "\u{202E}alice@example.com",
            "alice\u{FE0F}@example.com",
        ] {
            assert!(Email::parse(invisible).is_err(), "{invisible:?} accepted");
        }
    }
}
