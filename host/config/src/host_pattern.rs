//! Host patterns: the one grammar of the hosts a plugin may reach over
//! wasi:http, used where netra.toml grants them, where a manifest asks for
//! them, and where the runtime matches a request against the grant.
//!
//! A pattern is `api.example.com` (that name, any port), `*.example.com` (any
//! name under it, not `example.com` itself), an IPv4 address, or an IPv6
//! address in brackets (`[::1]`); any of them may end with `:PORT`, and then
//! only that port matches. Names are compared without regard to case. A name
//! is matched as the plugin wrote it, before any DNS lookup: `localhost` is not
//! `127.0.0.1`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// One parsed host pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
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

/// A string that is not a host pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadHostPattern(pub String);

impl fmt::Display for BadHostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a host pattern (api.example.com, *.example.com, 127.0.0.1:8080 or [::1]:8080; no scheme or path)",
            self.0
        )
    }
}

impl std::error::Error for BadHostPattern {}

impl FromStr for HostPattern {
    type Err = BadHostPattern;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(pattern).ok_or_else(|| BadHostPattern(pattern.to_string()))
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

    /// Whether a request to `host` on `port` matches. `host` is written as
    /// in a URL's authority: an IPv6 address in brackets.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let ipv6 = host
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .map(|addr| addr.parse::<Ipv6Addr>());
        match (&self.host, ipv6) {
            (HostMatch::Ipv6(addr), Some(Ok(host))) => *addr == host,
            // Brackets around something that is not an IPv6 address, or an
            // address where a name is expected.
            (_, Some(_)) | (HostMatch::Ipv6(_), None) => false,
            (HostMatch::Exact(name), None) => name.eq_ignore_ascii_case(host),
            (HostMatch::Subdomains(suffix), None) => {
                let host = host.to_ascii_lowercase();
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }

    /// Whether this pattern (a grant) allows everything `need` (what a
    /// manifest asks for) names: `*.example.com` covers `api.example.com`
    /// and `*.api.example.com`; a pattern with a port covers only that port.
    pub fn covers(&self, need: &HostPattern) -> bool {
        if self.port.is_some() && self.port != need.port {
            return false;
        }
        match (&self.host, &need.host) {
            (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
            (HostMatch::Ipv6(a), HostMatch::Ipv6(b)) => a == b,
            (HostMatch::Subdomains(suffix), HostMatch::Exact(name)) => {
                name.len() > suffix.len() && name.ends_with(suffix.as_str())
            }
            (HostMatch::Subdomains(suffix), HostMatch::Subdomains(under)) => {
                under.ends_with(suffix.as_str())
            }
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Exact(name) => f.write_str(name)?,
            HostMatch::Subdomains(suffix) => write!(f, "*{suffix}")?,
            HostMatch::Ipv6(addr) => write!(f, "[{addr}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
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

    fn pattern(text: &str) -> HostPattern {
        match text.parse() {
            Ok(pattern) => pattern,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn an_exact_name_matches_itself_on_any_port() {
        let api = pattern("api.example.com");
        assert!(api.allows("api.example.com", 443));
        assert!(api.allows("API.example.com", 8080));
        assert!(!api.allows("example.com", 443));
        assert!(!api.allows("www.api.example.com", 443));
        assert!(!api.allows("api.example.com.evil.net", 443));
        assert!(!api.allows("[::1]", 443));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_apex() {
        let any = pattern("*.Example.com");
        assert!(any.allows("api.example.com", 443));
        assert!(any.allows("a.b.EXAMPLE.com", 80));
        assert!(!any.allows("example.com", 443));
        assert!(!any.allows("badexample.com", 443));
        assert!(!any.allows(".example.com", 443));
    }

    #[test]
    fn ipv6_literals_are_matched_as_addresses() {
        let v6 = pattern("[::1]:8080");
        assert!(v6.allows("[0:0:0:0:0:0:0:1]", 8080));
        assert!(!v6.allows("[::1]", 8081));
        assert!(!v6.allows("::1", 8080));
        assert!(!pattern("localhost").allows("[::1]", 80));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_grammar_in_the_message() {
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
            "[::1]:http",
            "[nope]:80",
            "[localhost]",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?} was accepted");
        }
        let err = "bad host".parse::<HostPattern>().unwrap_err().to_string();
        assert!(
            err.contains("\"bad host\"") && err.contains("*.example.com"),
            "{err}"
        );
    }

    #[test]
    fn patterns_print_as_they_parse() {
        for text in [
            "api.example.com",
            "*.example.com:443",
            "[::1]:8080",
            "127.0.0.1",
        ] {
            assert_eq!(pattern(text).to_string(), text);
        }
    }

    #[test]
    fn a_grant_covers_what_it_allows() {
        let covers = |grant: &str, need: &str| pattern(grant).covers(&pattern(need));
        assert!(covers("api.example.com", "api.example.com"));
        assert!(covers("*.example.com", "api.example.com"));
        assert!(covers("*.example.com", "*.api.example.com"));
        assert!(covers("*.example.com", "*.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("api.example.com", "*.example.com"));
        assert!(covers("api.example.com", "api.example.com:443"));
        assert!(!covers("api.example.com:80", "api.example.com:443"));
        assert!(!covers("api.example.com:80", "api.example.com"));
        assert!(!covers("*.example.com", "evilexample.com"));
        assert!(covers("[::1]", "[0::1]:8080"));
        assert!(!covers("[::1]", "localhost"));
    }
}
