//! `--url`: where the admin API is, and the request target of a call.

use std::fmt::Write as _;

use anyhow::{anyhow, bail};
use hyper::Uri;

/// Where the admin API is: what `--url` names.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Base {
    /// The URL as given, for messages.
    pub(super) url: String,
    /// The host to connect to, without IPv6 brackets.
    pub(super) host: String,
    pub(super) port: u16,
    /// The `Host` header: the URL's authority.
    pub(super) authority: String,
    /// The URL's path without a trailing `/` (usually empty).
    prefix: String,
}

impl Base {
    pub(super) fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().map_err(|e| anyhow!("bad URL {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!(
                "{url}: netra admin speaks plain http:// only (loopback or an admin network); \
                 reach a remote host through a local TLS-terminating proxy or tunnel"
            ),
            _ => bail!("bad URL {url:?}: expected http://HOST[:PORT]"),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("bad URL {url:?}: no host"))?;
        if authority.as_str().contains('@') {
            bail!("bad URL {url:?}: credentials go in --token, not in the URL");
        }
        if uri.query().is_some() {
            bail!("bad URL {url:?}: a base URL has no query");
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Self {
            url: url.to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The origin-form target (path and query) of an admin route.
    pub(super) fn target(&self, segments: &[String], query: Option<&str>) -> String {
        let mut target = format!("{}/v1/admin", self.prefix);
        for segment in segments {
            target.push('/');
            target.push_str(&encode_segment(segment));
        }
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        target
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved
/// characters and `:`, so a name or version can never add a segment (`/`),
/// start a query (`?`) or be read as `.`/`..`.
fn encode_segment(segment: &str) -> String {
    let dots_only = segment.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'~' | b':')
            || (byte == b'.' && !dots_only);
        if keep {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_and_without_a_prefix() {
        let base = Base::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (base.host.as_str(), base.port, base.authority.as_str()),
            ("127.0.0.1", 8080, "127.0.0.1:8080")
        );
        let segments = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            base.target(&segments(&["plugins"]), None),
            "/v1/admin/plugins"
        );
        assert_eq!(
            base.target(&segments(&["audit"]), Some("limit=50")),
            "/v1/admin/audit?limit=50"
        );
        for url in ["http://admin.local/netra/", "http://admin.local/netra"] {
            let base = Base::parse(url).unwrap();
            assert_eq!(base.port, 80);
            assert_eq!(
                base.target(&segments(&["plugins", "helper", "versions"]), None),
                "/netra/v1/admin/plugins/helper/versions"
            );
        }
        let base = Base::parse("http://[::1]:9000/").unwrap();
        assert_eq!((base.host.as_str(), base.port), ("::1", 9000));
        assert_eq!(base.authority, "[::1]:9000");
        assert_eq!(
            base.target(&segments(&["plugins"]), None),
            "/v1/admin/plugins"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        let base = Base::parse("http://h:1").unwrap();
        let target = base.target(
            &[
                "plugins".into(),
                "a/b?c".into(),
                "versions".into(),
                "sha256:3f9c2a7d".into(),
            ],
            None,
        );
        assert_eq!(
            target,
            "/v1/admin/plugins/a%2Fb%3Fc/versions/sha256:3f9c2a7d"
        );
        assert_eq!(encode_segment("0.2.0"), "0.2.0");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("a b%"), "a%20b%25");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        let https = Base::parse("https://host").unwrap_err().to_string();
        assert!(https.contains("plain http://"), "{https}");
        assert!(Base::parse("ws://host/v1/ws").is_err());
        assert!(Base::parse("127.0.0.1:8080").is_err());
        assert!(Base::parse("http://user:pw@host").is_err());
        assert!(Base::parse("not a url").is_err());
    }
}
