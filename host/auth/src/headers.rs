//! Finding the bearer token in an HTTP upgrade request.

use http::HeaderMap;
use http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

use crate::Rejection;

/// The `Sec-WebSocket-Protocol` entry prefix that carries a token from a browser, which
/// cannot set `Authorization` on a WebSocket.
const PROTOCOL_PREFIX: &str = "bearer.";

/// Returns the token from `Authorization: Bearer <t>`, else from a `bearer.<t>` entry of
/// `Sec-WebSocket-Protocol`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut other_scheme = false;
    for value in headers.get_all(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| Rejection::new("malformed token"))?
            .trim();
        let (scheme, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(token.trim());
        }
        other_scheme = true;
    }
    for value in headers.get_all(SEC_WEBSOCKET_PROTOCOL) {
        // A non-ASCII protocol list cannot hold a token, and the other entries are the
        // server's business, so it is skipped rather than refused.
        let Ok(list) = value.to_str() else { continue };
        if let Some(token) = list
            .split(',')
            .find_map(|entry| entry.trim().strip_prefix(PROTOCOL_PREFIX))
        {
            return Ok(token);
        }
    }
    Err(Rejection::new(if other_scheme {
        "unsupported authorization scheme"
    } else {
        "missing token"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn authorization_scheme_is_case_insensitive() {
        let map = headers(&[(AUTHORIZATION, "bearer  abc ")]);
        assert_eq!(bearer_token(&map), Ok("abc"));
    }

    #[test]
    fn authorization_wins_over_protocol() {
        let map = headers(&[
            (SEC_WEBSOCKET_PROTOCOL, "netra.v1, bearer.fromproto"),
            (AUTHORIZATION, "Bearer fromheader"),
        ]);
        assert_eq!(bearer_token(&map), Ok("fromheader"));
    }

    #[test]
    fn protocol_entries_may_span_several_headers() {
        let map = headers(&[
            (SEC_WEBSOCKET_PROTOCOL, "netra.v1"),
            (SEC_WEBSOCKET_PROTOCOL, "chat ,bearer.tok"),
        ]);
        assert_eq!(bearer_token(&map), Ok("tok"));
    }

    #[test]
    fn other_schemes_are_named() {
        let map = headers(&[(AUTHORIZATION, "Basic dXNlcjpwdw==")]);
        assert_eq!(
            bearer_token(&map).unwrap_err().reason,
            "unsupported authorization scheme"
        );
        assert_eq!(
            bearer_token(&HeaderMap::new()).unwrap_err().reason,
            "missing token"
        );
    }

    #[test]
    fn empty_bearer_is_an_empty_token() {
        let map = headers(&[(AUTHORIZATION, "Bearer")]);
        assert_eq!(bearer_token(&map), Ok(""));
    }
}
