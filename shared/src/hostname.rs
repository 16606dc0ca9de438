//! Hostnames: validation of what operators register, normalisation of what
//! arrives in `Host`.

/// Domains of public mail providers: anyone can hold an address there, so
/// they can never identify a tenant.
const PUBLIC_EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "tuta.io",
    "qq.com",
    "163.com",
    "126.com",
    "naver.com",
    "rediffmail.com",
    "libero.it",
    "orange.fr",
    "free.fr",
    "t-online.de",
    "comcast.net",
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostnameError(pub &'static str);

/// Validates and normalises an operator-supplied hostname to its ASCII
/// (punycode) lowercase form. No scheme, port, path, wildcard or IP address.
pub fn parse_hostname(input: &str) -> Result<String, HostnameError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(HostnameError("hostname is empty"));
    }
    if s.contains("://") {
        return Err(HostnameError("hostname must not include a scheme"));
    }
    if s.contains('*') {
        return Err(HostnameError("wildcard hostnames are not allowed"));
    }
    if s.contains('/') || s.contains('?') || s.contains('#') || s.contains('@') {
        return Err(HostnameError(
            "hostname must not include a path, query or user",
        ));
    }
    if s.contains(':') {
        return Err(HostnameError("hostname must not include a port"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HostnameError(
            "hostname must not contain spaces or control characters",
        ));
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Err(HostnameError("an IP address is not a hostname"));
    }
    let ascii = idna::domain_to_ascii_strict(s)
        .map_err(|_| HostnameError("hostname is not a valid domain name"))?;
    if ascii.len() > 253 {
        return Err(HostnameError("hostname is longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(HostnameError("hostname must have at least two labels"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(HostnameError("hostname has an invalid label"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(HostnameError("hostname has a numeric top-level label"));
    }
    Ok(ascii)
}

/// Normalises a `Host` header value for lookup: lowercase, port and trailing
/// dot removed. Returns `None` for values that cannot name an auth domain.
pub fn normalize_host_header(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.starts_with('[') {
        return None;
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => value,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty()
        || host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    Some(host)
}

/// Whether a URL's host is, or may become, an IP address: a literal
/// (`10.0.0.1`, `[::1]`), any host whose last label is a number
/// (`2130706433`, `0x7f000001`, `10.1`), which URL parsers turn into an
/// IPv4 address that is then connected to without a DNS lookup, and any
/// host a parser would rewrite first (percent-escapes such as
/// `127.0.0.%31`, non-ASCII such as full-width digits). A name outside
/// ASCII must be given in its punycode form.
pub fn is_ip_host(host: &str) -> bool {
    if !host.is_ascii() || host.contains('%') {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return true;
    }
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
    }
}

pub fn is_public_email_domain(domain: &str) -> bool {
    PUBLIC_EMAIL_DOMAINS.contains(&domain)
}

/// The DNS name whose TXT record proves control of `hostname`.
pub fn challenge_name(hostname: &str) -> String {
    format!("_identity-challenge.{hostname}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_address_is_an_address() {
        for host in [
            "10.0.0.1",
            "[::1]",
            "::1",
            "2130706433",
            "0x7f000001",
            "0X7F.1",
            "10.1",
            "127.1.",
            "example.0x10",
            "127.0.0.%31",
            "\u{FF11}\u{FF12}\u{FF17}\u{FF0E}\u{FF10}\u{FF0E}\u{FF10}\u{FF0E}\u{FF11}",
            "m\u{FC}nchen.example",
        ] {
            assert!(is_ip_host(host), "{host}");
        }
        for host in [
            "example.com",
            "login.microsoftonline.com",
            "10x.example",
            "a1.b2c",
        ] {
            assert!(!is_ip_host(host), "{host}");
        }
    }

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            parse_hostname("Auth.Example.COM").unwrap(),
            "auth.example.com"
        );
        assert_eq!(
            parse_hostname("auth.example.com.").unwrap(),
            "auth.example.com"
        );
        assert_eq!(
            parse_hostname("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn rejects_bad_hostnames() {
        for bad in [
            "",
            "https://a.com",
            "a.com:443",
            "*.a.com",
            "a.com/x",
            "localhost",
            "1.2.3.4",
            "a..com",
            "-a.com",
            "a b.com",
            "a.123",
            "[::1]",
            &format!("{}.com", "a".repeat(64)),
            "a\u{0}.com",
            "user@a.com",
        ] {
            assert!(parse_hostname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn host_header() {
        assert_eq!(
            normalize_host_header("Auth.Example.com:8443").as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(
            normalize_host_header("auth.example.com.").as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(normalize_host_header("[::1]:80"), None);
        assert_eq!(normalize_host_header("a.com:x"), None);
        assert_eq!(normalize_host_header("a_b.com"), None);
    }

    #[test]
    fn public_domains() {
        assert!(is_public_email_domain("gmail.com"));
        assert!(!is_public_email_domain("acme.com"));
    }
}
