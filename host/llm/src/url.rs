//! A provider's base URL: the one parser for it, used for its chat endpoint
//! and for the health probe's model list.

use hyper::Uri;

/// An OpenAI-compatible base URL (`http://127.0.0.1:11434/v1`), checked:
/// `http` or `https`, a host, no user name or password, no query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`, lowercase.
    scheme: &'static str,
    /// `host[:port]` as written.
    authority: String,
    /// The path without its trailing slashes (`/v1`, or empty).
    path: String,
}

impl BaseUrl {
    /// Parses and checks `text` (surrounding whitespace is ignored). The
    /// error says what is wrong, to follow "base_url " or the URL itself.
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|e| format!("is not a valid URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => return Err("must start with http:// or https://".to_owned()),
        };
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not hold a user name or password; set api_key instead".to_owned());
        }
        if authority.host().is_empty() {
            return Err("has no host".to_owned());
        }
        if uri.query().is_some() {
            return Err("must not have a query".to_owned());
        }
        Ok(Self {
            scheme,
            authority: authority.as_str().to_owned(),
            path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `{base}/{path}`, with one slash between them.
    pub fn join(&self, path: &str) -> Result<Uri, String> {
        let path = path.trim_start_matches('/');
        format!("{}://{}{}/{path}", self.scheme, self.authority, self.path)
            .parse()
            .map_err(|e| format!("is not a valid URL: {e}"))
    }

    /// Whether it is an `https` URL.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(base: &str, path: &str) -> String {
        match BaseUrl::parse(base).and_then(|url| url.join(path)) {
            Ok(uri) => uri.to_string(),
            Err(err) => panic!("{base}: {err}"),
        }
    }

    #[test]
    fn a_path_is_joined_with_one_slash() {
        assert_eq!(
            joined("http://127.0.0.1:11434/v1", "chat/completions"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(
            joined(" http://h:8000/v1/ ", "models"),
            "http://h:8000/v1/models"
        );
        assert_eq!(
            joined("HTTPS://api.example.com/v1", "/models"),
            "https://api.example.com/v1/models"
        );
        assert_eq!(
            joined("http://[::1]:8080", "models"),
            "http://[::1]:8080/models"
        );
        assert_eq!(
            joined("http://llm.local/", "models"),
            "http://llm.local/models"
        );
        assert!(BaseUrl::parse("https://x/v1").is_ok_and(|u| u.is_https()));
    }

    #[test]
    fn bad_base_urls_say_why() {
        for (bad, why) in [
            ("", "not a valid URL"),
            ("not a url", "not a valid URL"),
            ("127.0.0.1:8080/v1", ""),
            ("ftp://h/v1", "must start with"),
            ("/v1", "must start with"),
            ("http://u:p@h/v1", "user name or password"),
            ("http://h/v1?x=1", "query"),
            ("http://:80/v1", ""),
        ] {
            let err = BaseUrl::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
