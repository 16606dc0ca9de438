//! Where this node's requests to providers may go: names that resolve to
//! public addresses only (SSRF). IP-literal URLs never reach a resolver;
//! `provider::OauthClients::check_url` refuses them.

use std::net::{IpAddr, SocketAddr};

/// Resolves names to public addresses only: a provider's URLs (and the
/// `jwks_uri` its discovery names) cannot reach this network's services.
pub struct PublicOnly;

impl openidconnect::reqwest::dns::Resolve for PublicOnly {
    fn resolve(
        &self,
        name: openidconnect::reqwest::dns::Name,
    ) -> openidconnect::reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: openidconnect::reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Not loopback, private, link-local, unspecified, multicast, shared
/// (100.64/10) or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                // Benchmarking (198.18/15), IETF protocol assignments
                // (192.0.0/24), reserved (240/4) and "this network" (0/8).
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
                || o[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4 reached through IPv6: NAT64 (64:ff9b::/96), 6to4
            // (2002::/16) and the deprecated compatible form (::a.b.c.d).
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return is_public(IpAddr::V4([o[12], o[13], o[14], o[15]].into()));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(
                    [(s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8].into(),
                ));
            }
            if s[..6] == [0, 0, 0, 0, 0, 0] {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn public_addresses() {
        for private in [
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::10.0.0.1",
            "fec0::1",
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}

/// The most any provider answer may hold: discovery documents, key sets,
/// token responses and API answers are all far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// A provider request failed, or its answer was too large.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Http(String),
    #[error("the answer is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// One request through `http` (which follows no redirect), its answer read
/// up to [`MAX_BODY`] and no further: what the OAuth libraries call to
/// reach a provider.
pub async fn send_capped(
    http: &openidconnect::reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OutboundError> {
    let (parts, body) = request.into_parts();
    let mut response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| OutboundError::Http(e.without_url().to_string()))?;
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(OutboundError::TooLarge);
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OutboundError::Http(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(OutboundError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let mut answer = openidconnect::HttpResponse::new(bytes);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// A GET for JSON (with a bearer token, for APIs): the body, capped, of a
/// successful answer.
pub async fn get_json(
    http: &openidconnect::reqwest::Client,
    url: &str,
    accept: &str,
    bearer: Option<&str>,
) -> Result<serde_json::Value, OutboundError> {
    let mut request = openidconnect::http::Request::get(url)
        .header("accept", accept)
        .header("user-agent", "identity");
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Vec::new())
        .map_err(|e| OutboundError::Http(e.to_string()))?;
    let answer = send_capped(http, request).await?;
    if !answer.status().is_success() {
        return Err(OutboundError::Http(format!("status {}", answer.status())));
    }
    serde_json::from_slice(answer.body()).map_err(|e| OutboundError::Http(e.to_string()))
}

/// The HTTP client the OAuth libraries are given: [`send_capped`] through
/// the node's provider client.
pub struct Capped<'a>(pub &'a openidconnect::reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Capped<'_> {
    type Error = OutboundError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, OutboundError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send_capped(self.0, request))
    }
}
