//! A plugin's `network` grant: the hosts it may reach over wasi:http, parsed
//! once at load and matched against the authority of every request it sends.
//! The grammar is netra-config's [`HostPattern`], the same one netra.toml and
//! manifests are checked with.

use netra_config::HostPattern;

/// The hosts a plugin may reach. Empty (the default) allows none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowlist {
    patterns: Vec<HostPattern>,
}

impl Allowlist {
    /// Parses every pattern of a grant, or says which one is malformed.
    pub(crate) fn parse(patterns: &[String]) -> Result<Self, String> {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                pattern
                    .parse()
                    .map_err(|err| format!("network grant {err}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether a request to `host` on `port` is allowed. `host` is written as
    /// in a URL's authority: an IPv6 address in brackets.
    pub(crate) fn allows(&self, host: &str, port: u16) -> bool {
        self.patterns
            .iter()
            .any(|pattern| pattern.allows(host, port))
    }
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
