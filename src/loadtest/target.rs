//! Where a load test's URL sends its load, read with the URI parser the load generator itself
//! uses (hyper's `Uri`), never by splitting text by hand: a hand split that forgot `#` once
//! let `http://2852039166#x.dev1.svc` pass as a Service of dev1 while the generator connected
//! to 2852039166, which the resolver reads as 169.254.169.254.
//!
//! Only a host that names a Service of the environment's namespace (`svc`, `svc.ns`,
//! `svc.ns.svc`, `svc.ns.svc.cluster.local`) is inside. Anything else is outside and needs
//! the approval the shipped spec asks for: userinfo and fragments (tricks, whatever their
//! host), IP literals, numeric hosts in any form the resolver accepts (`2852039166`,
//! `0xA9FEA9FE`, `0251.0376.0251.0376`), other namespaces and other names.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
};

/// Inside the environment, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Inside { service: String },
    Outside(Outside),
}

impl Reach {
    pub fn is_outside(&self) -> bool {
        matches!(self, Reach::Outside(_))
    }
}

/// Why a URL's load leaves the environment; written for the approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// `user@host`: what is before the `@` is not the host.
    Userinfo,
    /// `#...`: never sent, so it says nothing about where the load goes; the host does
    /// (with its address when it is numeric).
    Fragment {
        host: String,
        address: Option<IpAddr>,
    },
    /// An IP address, typed as one or as a number the resolver reads as one.
    Address {
        typed: String,
        address: IpAddr,
    },
    OtherNamespace {
        service: String,
        namespace: String,
    },
    NotAService(String),
}

impl fmt::Display for Outside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outside::Userinfo => write!(
                f,
                "the URL has a user@ part, so its host is not a Service of the environment"
            ),
            Outside::Fragment { host, address } => {
                write!(
                    f,
                    "the URL has a #fragment, which is never sent: the load goes to {host}"
                )?;
                match address {
                    Some(a) if a.to_string() != *host => write!(f, ", the IP address {a}"),
                    _ => Ok(()),
                }
            }
            Outside::Address { typed, address } if typed == &address.to_string() => {
                write!(f, "the host is the IP address {address}")
            }
            Outside::Address { typed, address } => write!(f, "the host {typed} is the IP address {address}"),
            Outside::OtherNamespace { service, namespace } => {
                write!(f, "the host is Service {service} of namespace {namespace}")
            }
            Outside::NotAService(host) => write!(f, "the host {host} is not a Service of the environment"),
        }
    }
}

/// Classifies an `http://` URL for a load test in namespace `env`. The URL must already have
/// been accepted by the load generator's `Target::new`; an unparsable one counts as outside.
pub fn classify(url: &str, env: &str) -> Reach {
    let uri: hyper::Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => return Reach::Outside(Outside::NotAService(url.to_owned())),
    };
    let Some(authority) = uri.authority() else {
        return Reach::Outside(Outside::NotAService(url.to_owned()));
    };
    if authority.as_str().contains('@') {
        return Reach::Outside(Outside::Userinfo);
    }
    // hyper drops the fragment; the text still has it.
    if url.contains('#') {
        let host = authority.host();
        return Reach::Outside(Outside::Fragment {
            host: host.to_owned(),
            address: ip_of(host),
        });
    }
    classify_host(authority.host(), env)
}

fn classify_host(host: &str, env: &str) -> Reach {
    if let Some(address) = ip_of(host) {
        return Reach::Outside(Outside::Address {
            typed: host.to_owned(),
            address,
        });
    }
    let lower = host.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    let (service, namespace) = match labels.as_slice() {
        // The pod's own loopback, from /etc/hosts, whatever the namespace holds.
        ["localhost"] => return Reach::Outside(Outside::NotAService(host.to_owned())),
        [svc] => (*svc, env),
        [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (*svc, *ns),
        _ => return Reach::Outside(Outside::NotAService(host.to_owned())),
    };
    if !is_service_name(service) || !is_namespace_name(namespace) {
        return Reach::Outside(Outside::NotAService(host.to_owned()));
    }
    if namespace != env {
        return Reach::Outside(Outside::OtherNamespace {
            service: service.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    Reach::Inside {
        service: service.to_owned(),
    }
}

/// The address a host stands for when it is one: an IPv6 literal, or an IPv4 address in any
/// form `inet_aton` (and so the pod's resolver) accepts.
fn ip_of(host: &str) -> Option<IpAddr> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // A zone or anything else unparsable is still a literal, not a name: unspecified.
        return Some(v6.parse().unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)));
    }
    inet_aton(host).map(IpAddr::V4)
}

/// `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part decimal, octal (leading 0) or hex (0x).
fn inet_aton(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = host.split('.').map(number).collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|p| *p > 255) {
        return None;
    }
    let last_bits = 8 * (4 - head.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let value = head
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, p)| acc | (p << (24 - 8 * i as u32)));
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn number(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() && radix == 16 {
        return Some(0);
    }
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A Service name: a DNS-1035 label (starts with a letter), as the API server requires.
fn is_service_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_namespace_name(s: &str) -> bool {
    crate::domain::Name::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(url: &str) -> Reach {
        classify(url, "dev1")
    }

    #[test]
    fn services_of_the_environment_are_inside() {
        for url in [
            "http://shop/",
            "http://shop:8080/x?y=1",
            "http://shop.dev1/",
            "http://shop.dev1.svc:8080/",
            "http://SHOP.Dev1.svc.cluster.local/a",
            "http://shop-2.dev1.svc/",
        ] {
            assert!(matches!(reach(url), Reach::Inside { .. }), "{url}");
        }
    }

    #[test]
    fn tricks_are_outside_whatever_their_host() {
        let trick = reach("http://2852039166#x.dev1.svc");
        assert!(matches!(trick, Reach::Outside(Outside::Fragment { .. })), "{trick:?}");
        let Reach::Outside(why) = trick else { unreachable!() };
        assert_eq!(
            why.to_string(),
            "the URL has a #fragment, which is never sent: the load goes to 2852039166, the IP address 169.254.169.254"
        );
        assert!(matches!(
            reach("http://shop.dev1.svc/#x"),
            Reach::Outside(Outside::Fragment { address: None, .. })
        ));
        assert_eq!(reach("http://u:p@shop.dev1.svc/"), Reach::Outside(Outside::Userinfo));
        assert_eq!(reach("http://shop:8080/"), Reach::Inside { service: "shop".into() });
        assert_eq!(
            reach("http://shop.dev1.svc@169.254.169.254/"),
            Reach::Outside(Outside::Userinfo)
        );
    }

    #[test]
    fn numeric_hosts_are_the_addresses_the_resolver_makes_of_them() {
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        for host in [
            "2852039166",
            "0xA9FEA9FE",
            "0xa9fea9fe",
            "0251.0376.0251.0376",
            "169.254.169.254",
            "169.254.43518",
            "0xa9.0xfe.0xa9.0xfe",
            "169.16689662",
        ] {
            match reach(&format!("http://{host}/")) {
                Reach::Outside(Outside::Address { address, .. }) => assert_eq!(address, metadata, "{host}"),
                other => panic!("{host}: {other:?}"),
            }
        }
        assert!(matches!(
            reach("http://[::1]:8080/"),
            Reach::Outside(Outside::Address { .. })
        ));
        assert!(matches!(
            reach("http://[::ffff:a9fe:a9fe]/"),
            Reach::Outside(Outside::Address { .. })
        ));
        let shown = match reach("http://2852039166/") {
            Reach::Outside(why) => why.to_string(),
            Reach::Inside { .. } => String::new(),
        };
        assert_eq!(shown, "the host 2852039166 is the IP address 169.254.169.254");
        // Not numbers the resolver accepts: names (and not Services), still outside.
        for host in ["4294967296", "256.1.1.1", "1.2.3.4.5", "0x", "09"] {
            assert!(reach(&format!("http://{host}/")).is_outside(), "{host}");
        }
    }

    #[test]
    fn other_namespaces_and_names_are_outside() {
        let other = Reach::Outside(Outside::OtherNamespace {
            service: "shop".into(),
            namespace: "other".into(),
        });
        for url in [
            "http://shop.other/",
            "http://shop.other.svc:8080/",
            "http://shop.other.svc.cluster.local/",
        ] {
            assert_eq!(reach(url), other, "{url}");
        }
        for url in [
            "http://a.shop.dev1.svc/",
            "http://shop.dev1.svc.other.svc/",
            "http://shop.dev1.svc.cluster.local./",
            "http://dev1.svc/",
            "http://example.com/",
            "http://1shop.dev1.svc/",
            "http://shop%2edev1.svc/",
            "http://localhost/",
        ] {
            assert!(reach(url).is_outside(), "{url}");
        }
    }
}
