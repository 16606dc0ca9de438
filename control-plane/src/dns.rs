//! DNS TXT lookups for domain verification, through hickory-resolver.
//!
//! The name servers come from `IDENTITY_DNS_NAMESERVERS` (tests point them at
//! a DNS server on loopback) or from the system's resolver configuration.
//! Answers are never cached here: an operator who fixes a record and retries
//! must be judged on what DNS says now.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

pub struct DnsVerifier {
    resolver: TokioResolver,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DnsError(String);

impl DnsVerifier {
    /// A resolver on the given servers (UDP, then TCP for truncated answers),
    /// or on the system configuration when the list is empty.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Self, DnsError> {
        let mut builder = if nameservers.is_empty() {
            Resolver::builder(TokioRuntimeProvider::default()).map_err(|e| {
                DnsError(format!(
                    "cannot read the system resolver configuration: {e}"
                ))
            })?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                        .into_iter()
                        .map(|mut c| {
                            c.port = addr.port();
                            c
                        })
                        .collect();
                    NameServerConfig::new(addr.ip(), true, connections)
                })
                .collect();
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        // Challenge names are absolute; no search-domain guessing.
        options.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsError(format!("cannot build the DNS resolver: {e}")))?;
        Ok(Self { resolver })
    }

    /// The TXT strings published at `name` (each record's character-strings
    /// joined, as RFC 7208 does). An empty list when the name has none.
    pub async fn txt_records(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(DnsError(e.to_string())),
        }
    }
}
