//! A plugin's `network` grant: the hosts it may reach over wasi:http, parsed
//! once at load and matched against the authority of every request it sends.
//!
//! A pattern is `api.example.com` (that name, any port), `*.example.com` (any
//! name under it, not `example.com` itself), an IPv4 address, or an IPv6
//! address in brackets (`[::1]`); any of them may end with `:PORT`, and then
//! only that port matches. Names are compared without regard to case. A name
//! is matched as the plugin wrote it, before any DNS lookup: `localhost` is not
//! `127.0.0.1`.

use std::net::Ipv6Addr;

/// The hosts a plugin may reach. Empty (the default) allows none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowlist {
    patterns: Vec<HostPattern>,
}

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostPattern {
    host: HostMatch,
    /// `None` matches every port.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// This name (lowercase) or IPv4 address only.
    Exact(String),
    /// Any name ending with this suffix, which starts with a dot
    /// (`.example.com` for `*.example.com`).
    Subdomains(String),
    /// This IPv6 address.
    Ipv6(Ipv6Addr),
}

impl Allowlist {
    /// Parses every pattern of a grant, or says which one is malformed.
    pub(crate) fn parse(patterns: &[String]) -> Result<Self, String> {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                HostPattern::parse(pattern).ok_or_else(|| {
                    format!(
                        "network grant {pattern:?} is not a host pattern \
                         (api.example.com, *.example.com, 127.0.0.1:8080 or [::1]:8080)"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether a request to `host` on `port` is allowed. `host` is written as
    /// in a URL's authority: an IPv6 address in brackets.
    pub(crate) fn allows(&self, host: &str, port: u16) -> bool {
        let ipv6 = host
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .map(|addr| addr.parse::<Ipv6Addr>());
        let host = match ipv6 {
            Some(Ok(addr)) => RequestHost::Ipv6(addr),
            // Brackets around something that is not an IPv6 address.
            Some(Err(_)) => return false,
            None => RequestHost::Name(host.to_ascii_lowercase()),
        };
        self.patterns
            .iter()
            .any(|pattern| pattern.port.is_none_or(|p| p == port) && pattern.host.matches(&host))
    }
}

/// The host of a request, normalized for comparison.
enum RequestHost {
    Name(String),
    Ipv6(Ipv6Addr),
}

impl HostMatch {
    fn matches(&self, host: &RequestHost) -> bool {
        match (self, host) {
            (HostMatch::Exact(name), RequestHost::Name(host)) => name == host,
            (HostMatch::Subdomains(suffix), RequestHost::Name(host)) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            (HostMatch::Ipv6(addr), RequestHost::Ipv6(host)) => addr == host,
            _ => false,
        }
    }
}

impl HostPattern {
    fn parse(pattern: &str) -> Option<Self> {
        let pattern = pattern.to_ascii_lowercase();
        if let Some(rest) = pattern.strip_prefix('[') {
            let (addr, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?.parse().ok()?),
            };
            return Some(Self {
                host: HostMatch::Ipv6(addr.parse().ok()?),
                port,
            });
        }
        let (host, port) = match pattern.split_once(':') {
            Some((host, port)) => (host, Some(port.parse().ok()?)),
            None => (pattern.as_str(), None),
        };
        let host = match host.strip_prefix("*.") {
            Some(parent) if is_dns_name(parent) => HostMatch::Subdomains(format!(".{parent}")),
            None if is_dns_name(host) => HostMatch::Exact(host.to_string()),
            _ => return None,
        };
        Some(Self { host, port })
    }
}

/// Dot-separated labels of letters, digits and inner hyphens (which also
/// covers IPv4 addresses).
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Allowlist {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        match Allowlist::parse(&patterns) {
            Ok(list) => list,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        let none = list(&[]);
        assert!(!none.allows("api.example.com", 443));
        assert!(!none.allows("127.0.0.1", 80));
    }

    #[test]
    fn an_exact_name_matches_itself_on_any_port() {
        let api = list(&["api.example.com"]);
        assert!(api.allows("api.example.com", 443));
        assert!(api.allows("api.example.com", 8080));
        assert!(!api.allows("example.com", 443));
        assert!(!api.allows("www.api.example.com", 443));
        assert!(!api.allows("api.example.com.evil.net", 443));
        assert!(!api.allows("evilapi.example.com", 443));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_apex() {
        let any = list(&["*.example.com"]);
        assert!(any.allows("api.example.com", 443));
        assert!(any.allows("a.b.example.com", 80));
        assert!(!any.allows("example.com", 443));
        assert!(!any.allows("badexample.com", 443));
        assert!(!any.allows(".example.com", 443));
        assert!(!any.allows("example.com.evil.net", 443));
    }

    #[test]
    fn a_port_restricts_the_pattern_to_that_port() {
        let local = list(&["127.0.0.1:8081", "*.example.com:443"]);
        assert!(local.allows("127.0.0.1", 8081));
        assert!(!local.allows("127.0.0.1", 8082));
        assert!(!local.allows("127.0.0.1", 80));
        assert!(!local.allows("localhost", 8081));
        assert!(local.allows("api.example.com", 443));
        assert!(!local.allows("api.example.com", 80));
    }

    #[test]
    fn names_are_compared_without_case() {
        assert!(list(&["API.Example.com"]).allows("api.EXAMPLE.com", 443));
        assert!(list(&["*.EXAMPLE.com"]).allows("Api.example.COM", 443));
    }

    #[test]
    fn ipv6_literals_are_matched_as_addresses() {
        let v6 = list(&["[::1]:8080", "[2001:DB8::1]"]);
        assert!(v6.allows("[::1]", 8080));
        assert!(v6.allows("[0:0:0:0:0:0:0:1]", 8080));
        assert!(!v6.allows("[::1]", 8081));
        assert!(!v6.allows("::1", 8080));
        assert!(v6.allows("[2001:db8::1]", 443));
        assert!(!v6.allows("[2001:db8::2]", 443));
        assert!(!v6.allows("[not-an-address]", 443));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.example.com",
            "example.*",
            "api.example.com:",
            "api.example.com:http",
            "api.example.com:70000",
            "http://api.example.com",
            "api.example.com/path",
            "user@api.example.com",
            "-api.example.com",
            "api..example.com",
            "::1",
            "[::1",
            "[::1]8080",
            "[localhost]",
        ] {
            let err = Allowlist::parse(&[bad.to_string()]);
            assert!(err.is_err(), "{bad:?} was accepted");
        }
        let err = Allowlist::parse(&["ok.example.com".into(), "bad host".into()]);
        assert!(matches!(err, Err(message) if message.contains("\"bad host\"")));
    }
}
