//! Facts about the caller: its IP (believing `X-Forwarded-For` only from
//! trusted proxies) and its user agent.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use identity_shared::error::ApiError;
use ipnet::IpNet;

use crate::DataState;

#[derive(Debug, Clone)]
pub struct Client {
    /// Canonical: an IPv4-mapped IPv6 address is the IPv4 address.
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn ip_text(&self) -> String {
        self.ip.to_string()
    }

    /// What rate limits and lockouts count under: the address for IPv4, the
    /// /64 for IPv6 (one subscriber usually holds a whole /64, so keying on
    /// single addresses would let one client rotate through 2^64 of them).
    pub fn ip_key(&self) -> String {
        ip_key(self.ip)
    }
}

pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`,
/// `[::1]` or `[::1]:5678`; IPv4-mapped IPv6 becomes IPv4.
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside.parse::<IpAddr>().ok()?
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = hop.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(canonical(ip))
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address: the peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
/// `forwarded_for` holds every header line in the order received; a proxy
/// that appends a line instead of extending the last one is read the same.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|line| line.rsplit(',')) {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A hop we cannot read ends what we can believe.
            None => break,
        }
    }
    client
}

/// A peer that is not a trusted proxy sent `X-Forwarded-For`: either a
/// client spoofing it (ignored, rightly) or a real proxy missing from
/// `IDENTITY_TRUSTED_PROXIES`, which makes every client look like the proxy
/// to rate limits and lockouts. Logged and recorded for `identity doctor`,
/// at most once a minute per node, off the request's path.
fn note_untrusted_forwarding(state: &DataState, peer: IpAddr) {
    let now = identity_shared::time::now_ms();
    let last = state.forwarded_noted_at.load(Ordering::Relaxed);
    if now - last < 60_000
        || state
            .forwarded_noted_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    tracing::warn!(%peer, "X-Forwarded-For from a peer that is not in IDENTITY_TRUSTED_PROXIES; ignored");
    let db = state.control_db.clone();
    tokio::spawn(async move {
        let detail = peer.to_string();
        if let Err(e) = identity_shared::observations::record(
            &db,
            identity_shared::observations::UNTRUSTED_FORWARDED_FOR,
            &detail,
        )
        .await
        {
            tracing::debug!(error = %e, "could not record an observation");
        }
    });
}

impl FromRequestParts<DataState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DataState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        // Every line, in order. Bytes that are not text spoil only the hop
        // they are in (the walk from the right stops there), never the
        // hops a proxy appended after them.
        let lines: Vec<std::borrow::Cow<'_, str>> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        let forwarded: Vec<&str> = lines.iter().map(|l| l.as_ref()).collect();
        let ip = client_ip(peer, &forwarded, &state.config.trusted_proxies);
        if !forwarded.is_empty() && ip == canonical(peer) {
            note_untrusted_forwarding(state, peer);
        }
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(512).collect());
        Ok(Client { ip, user_agent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["6.6.6.6, 1.2.3.4, 10.0.0.2"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["junk"], &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn every_forwarded_line_is_read_in_order() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The client claims 6.6.6.6 in its own header line; the proxy
        // appended a second line with the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["6.6.6.6", "1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["6.6.6.6", "1.2.3.4, 10.0.0.7"], &trusted),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn addresses_in_every_written_form() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_hop("1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop(" [2001:db8::1]:443 "), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop("[::ffff:1.2.3.4]:80"), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop("1.2.3.4:x"), None);
        assert_eq!(parse_hop("[2001:db8::1]x"), None);
        assert_eq!(parse_hop("unknown"), None);
        let trusted: Vec<IpNet> = vec![
            "::ffff:10.0.0.0/104".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        // A mapped peer is the IPv4 peer.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &["[::ffff:1.2.3.4]:9"], &trusted),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn garbage_spoils_only_its_own_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let line = String::from_utf8_lossy(b"1.1.1.1\xff, 192.0.2.7").to_string();
        assert_eq!(
            client_ip(ip("10.0.0.1"), &[line.as_str()], &trusted),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn ipv6_keys_on_the_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            ip_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(ip_key(ip("2001:db8:1:3::1")), ip_key(ip("2001:db8:1:2::1")));
        assert_eq!(ip_key(ip("1.2.3.4")), "1.2.3.4");
    }
}
