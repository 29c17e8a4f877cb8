//! Which servers a user's connection may reach. A connection's address is a
//! user's input, and the server would connect wherever it points: without a
//! guard a user could make Kizuna probe its own network (a database on
//! 127.0.0.1, a cloud metadata address, a printer on 192.168.x.x). So the
//! addresses a host name *resolves to* are checked — the ones actually
//! connected to, so a name that resolves to a private address is refused as
//! well — unless the operator allowed private addresses.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Whether an address is on the public internet (not loopback, private,
/// link-local, shared, unspecified, broadcast or multicast; an IPv4 address
/// inside IPv6 counts as the IPv4 address it carries).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
            // (2002::/16) carry an IPv4 address too.
            let v4_at = |hi: u16, lo: u16| {
                Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            let compatible = s[0..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4];
            let embedded = if compatible || nat64 {
                Some(v4_at(s[6], s[7]))
            } else if s[0] == 0x2002 {
                Some(v4_at(s[1], s[2]))
            } else {
                None
            };
            if let Some(v4) = embedded {
                return is_public_v4(v4);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80) // link-local fe80::/10
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || o[0] >= 240) // reserved
}

/// Why a server cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The host resolves to (or is) an address that is not public.
    Private { host: String, address: IpAddr },
    /// The host name does not resolve.
    Unresolved { host: String, why: String },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Private { host, address } => write!(
                f,
                "{host} is {address}, a loopback or private address, which this server does not connect to"
            ),
            Refused::Unresolved { host, why } => write!(f, "{host} does not resolve: {why}"),
        }
    }
}

impl std::error::Error for Refused {}

/// Checks an address given literally in a URL.
pub fn check_literal(host: &str, allow_private: bool) -> Result<(), Refused> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) if !allow_private && !is_public(ip) => Err(Refused::Private {
            host: host.to_string(),
            address: ip,
        }),
        _ => Ok(()),
    }
}

/// Resolves a host name and keeps its addresses only if every one is public
/// (a name with one private address among public ones is refused: which one
/// is connected to is not ours to choose).
pub async fn resolve(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Refused> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| Refused::Unresolved {
            host: host.to_string(),
            why: e.to_string(),
        })?
        .collect();
    if found.is_empty() {
        return Err(Refused::Unresolved {
            host: host.to_string(),
            why: "no address".into(),
        });
    }
    if !allow_private && let Some(bad) = found.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused::Private {
            host: host.to_string(),
            address: bad.ip(),
        });
    }
    Ok(found)
}

/// A resolver for hyper's connector that applies the guard to every
/// connection it makes.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for GuardedResolver {
    type Response = Addrs;
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, Refused>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Refused>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move { resolve(name.as_str(), allow).await.map(Vec::into_iter) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_mapped_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            let ip: IpAddr = a.parse().expect(a);
            assert!(!is_public(ip), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = a.parse().expect(a);
            assert!(is_public(ip), "{a}");
        }
    }

    #[test]
    fn a_literal_private_address_is_refused_unless_allowed() {
        assert!(matches!(
            check_literal("[::ffff:127.0.0.1]", false),
            Err(Refused::Private { .. })
        ));
        assert!(check_literal("127.0.0.1", true).is_ok());
        assert!(check_literal("dav.example.jp", false).is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_by_what_it_resolves_to() {
        let e = resolve("localhost", false).await.expect_err("refused");
        assert!(matches!(e, Refused::Private { .. }), "{e:?}");
        assert!(
            !resolve("localhost", true)
                .await
                .expect("allowed")
                .is_empty()
        );
    }
}
