//! Where the server itself may send requests on a user's behalf: the
//! destinations of playbook `webhook` steps and of integration adapters
//! (which call out through the server's `http.request` host method).
//!
//! Anyone who may edit playbooks chooses those URLs, so by default the
//! server refuses destinations that resolve to the machine itself or to a
//! private network (loopback, RFC 1918, carrier-grade NAT, link-local —
//! which holds cloud metadata services — unique-local IPv6, multicast and
//! reserved ranges). Otherwise a playbook could reach internal services the
//! server can see and its editor cannot. Operators open exactly what they
//! need: `webhook_allowed_hosts` names hosts (or IP literals) that may be
//! called wherever they resolve, and `webhook_allow_private_networks`
//! lifts the rule entirely.
//!
//! The check resolves the name once and the request then connects to the
//! addresses that were checked, so a name that changes its answer between
//! the check and the call (DNS rebinding) cannot slip past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use crate::config::Config;

/// The destination rules, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed_hosts: Vec<String>,
    allow_private: bool,
}

impl Policy {
    /// The rules the configuration sets.
    pub fn from_config(config: &Config) -> Self {
        Policy {
            allowed_hosts: config
                .webhook_allowed_hosts
                .iter()
                .map(|h| normalise_host(h))
                .collect(),
            allow_private: config.webhook_allow_private_networks,
        }
    }

    /// Checks `url` and resolves its host: the addresses a request to it
    /// must connect to, or why it may not be called. Blocking (it may ask
    /// DNS).
    pub fn resolve(&self, url: &str) -> Result<Vec<SocketAddr>, String> {
        let parsed =
            url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{url}` is not an http or https URL"));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("`{url}` names no host")),
        };
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        if self.allow_private || self.allowed_hosts.contains(&normalise_host(&host)) {
            return Ok(addrs);
        }
        for addr in &addrs {
            if let Some(class) = non_public(addr.ip()) {
                // The address a name resolves to is not echoed: the error
                // must not map the internal network for a playbook editor.
                let named = if host == addr.ip().to_string() {
                    format!("{host} is")
                } else {
                    format!("{host} resolves to")
                };
                return Err(format!(
                    "{named} a {class} address; webhook steps and integrations may call it \
                     only if the server's operator lists `{host}` in `webhook_allowed_hosts` or \
                     sets `webhook_allow_private_networks`"
                ));
            }
        }
        Ok(addrs)
    }
}

fn normalise_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Why `ip` is not a public internet address, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (10, _) | (172, 16..=31) | (192, 168) => "private",
        (100, 64..=127) => "shared (carrier-grade NAT)",
        (169, 254) => "link-local",
        (192, 0) if c == 0 => "reserved",
        (198, 18..=19) => "reserved",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return non_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    Some(match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        s if s & 0xfe00 == 0xfc00 => "private (unique local)",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "private (site-local)",
        s if s & 0xff00 == 0xff00 => "multicast",
        // The rest of ::/8 (IPv4-compatible and other reserved forms).
        s if s & 0xff00 == 0 => "reserved",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_not_public() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(non_public(ip(addr)), Some(class), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert_eq!(non_public(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_default_refuses_internal_destinations_and_says_how_to_allow_them() {
        let policy = Policy::default();
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.0.0.7/",
        ] {
            let err = policy.resolve(url).unwrap_err();
            assert!(err.contains("webhook_allowed_hosts"), "{url}: {err}");
        }
        let err = policy.resolve("http://localhost:81/").unwrap_err();
        assert!(
            err.starts_with("localhost resolves to a loopback address"),
            "{err}"
        );
        assert!(!err.contains("127.0.0.1") && !err.contains("::1"), "{err}");
        assert!(policy
            .resolve("ftp://example.com/")
            .unwrap_err()
            .contains("not an http or https URL"));
        assert!(policy
            .resolve("http://")
            .unwrap_err()
            .contains("not a valid URL"));
    }

    #[test]
    fn operators_can_allow_hosts_or_private_networks() {
        let listed = Policy::from_config(&Config {
            webhook_allowed_hosts: vec!["LOCALHOST".into(), "[::1]".into()],
            ..Config::default()
        });
        let addrs = listed.resolve("http://localhost:9000/x").unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.port() == 9000 && a.ip().is_loopback()));
        assert!(listed.resolve("http://[::1]/x").is_ok());
        assert!(listed.resolve("http://127.0.0.1/x").is_err());
        let open = Policy::from_config(&Config {
            webhook_allow_private_networks: true,
            ..Config::default()
        });
        assert_eq!(
            open.resolve("https://10.0.0.7/x").unwrap(),
            vec!["10.0.0.7:443".parse::<SocketAddr>().unwrap()]
        );
    }
}
