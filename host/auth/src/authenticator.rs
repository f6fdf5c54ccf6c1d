//! The [`Authenticator`]: verifies tokens into [`Principal`]s and issues HS256 tokens.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::keys::{Alg, PublicKey, Secret};
use crate::{AuthError, dev, headers};

/// The clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Tokens longer than this are refused before any parsing. Real tokens are well under
/// 8 KiB even with many roles; this bounds the work an anonymous client can cause.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The HS256 secret must be at least as long as the hash output (RFC 7518, 3.2).
const MIN_SECRET_LEN: usize = 32;

/// What an [`Authenticator`] accepts.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The HS256 shared secret; HS256 tokens are refused without one.
    pub hs256_secret: Option<Secret>,
    /// RS256 and ES256 public keys, from PEM files ([`PublicKey::rsa_pem`],
    /// [`PublicKey::ec_pem`]) or a JWKS file ([`crate::load_jwks`]).
    pub public_keys: Vec<PublicKey>,
    /// The required `iss` claim.
    pub issuer: String,
    /// The required `aud` claim (a token whose `aud` list contains it passes).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`; whole seconds count.
    pub leeway: Duration,
}

impl AuthConfig {
    /// A configuration for `issuer` and `audience` with no keys yet and
    /// [`DEFAULT_LEEWAY`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        AuthConfig {
            hs256_secret: None,
            public_keys: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
        }
    }
}

/// The authenticated user behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's `roles` claim; empty when absent.
    pub roles: Vec<String>,
    /// The token's `exp`. A connection outliving it is closed with 4401.
    pub expires_at: SystemTime,
}

impl Principal {
    /// Whether the `admin` role opens the admin API for this user.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|role| role == "admin")
    }
}

/// Why a request was refused: a short reason meant for the 401 body, such as
/// `"token expired"` or `"wrong audience"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    /// The reason, in a few lowercase words.
    pub reason: String,
}

impl Rejection {
    /// A rejection with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
        }
    }
}

/// Verifies JWTs and issues dev tokens. Cheap to clone: all clones share one set of keys.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<VerifyingKey>,
    /// One validation per enabled algorithm: `jsonwebtoken` insists that the validation's
    /// algorithms all belong to the key's family.
    validations: Vec<(Alg, Validation)>,
    signing: Option<EncodingKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

struct VerifyingKey {
    alg: Alg,
    kid: Option<String>,
    key: DecodingKey,
}

impl Authenticator {
    /// Builds an authenticator. Fails if no key is configured at all, if `issuer` or
    /// `audience` is empty, or if the HS256 secret is shorter than 32 bytes.
    pub fn new(config: AuthConfig) -> Result<Self, AuthError> {
        let AuthConfig {
            hs256_secret,
            public_keys,
            issuer,
            audience,
            leeway,
        } = config;
        if issuer.is_empty() {
            return Err(AuthError::EmptySetting("issuer"));
        }
        if audience.is_empty() {
            return Err(AuthError::EmptySetting("audience"));
        }

        let mut keys = Vec::with_capacity(public_keys.len() + 1);
        let mut signing = None;
        if let Some(secret) = &hs256_secret {
            let len = secret.as_bytes().len();
            if len < MIN_SECRET_LEN {
                return Err(AuthError::WeakSecret { len });
            }
            keys.push(VerifyingKey {
                alg: Alg::Hs256,
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
            signing = Some(EncodingKey::from_secret(secret.as_bytes()));
        }
        keys.extend(public_keys.iter().map(|key| VerifyingKey {
            alg: key.alg(),
            kid: key.kid().map(str::to_owned),
            key: key.decoding_key().clone(),
        }));
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }

        let validations = Alg::ALL
            .into_iter()
            .filter(|alg| keys.iter().any(|key| key.alg == *alg))
            .map(|alg| (alg, validation(alg, &issuer, &audience, leeway)))
            .collect();
        Ok(Authenticator {
            inner: Arc::new(Inner {
                keys,
                validations,
                signing,
                issuer,
                audience,
                leeway,
            }),
        })
    }

    /// Dev mode: loads `<data_dir>/dev-jwt-secret` or generates a 32-byte random secret
    /// into it once (file mode 0600), issuer `netra-dev`, audience `netra`.
    ///
    /// The file holds the secret as 43 base64url characters, and those characters are the
    /// HS256 key, so the same text works as a secret in any other JWT tool. Creating the
    /// directory and the file is race-free: concurrent first calls agree on one secret.
    pub fn dev(data_dir: &Path) -> Result<Self, AuthError> {
        let secret = dev::load_or_create_secret(data_dir)?;
        let mut config = AuthConfig::new(dev::DEV_ISSUER, dev::DEV_AUDIENCE);
        config.hs256_secret = Some(secret);
        Authenticator::new(config)
    }

    /// Signs a token for `sub` (HS256 with the dev/HS secret) valid for `ttl`, with
    /// iss/aud/exp/nbf/iat and `roles`.
    pub fn issue(&self, sub: &str, roles: &[&str], ttl: Duration) -> Result<String, AuthError> {
        let key = self.inner.signing.as_ref().ok_or(AuthError::NoSigningKey)?;
        if sub.is_empty() {
            return Err(AuthError::EmptySubject);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::Sign("the system clock is before 1970".to_owned()))?
            .as_secs();
        let claims = serde_json::json!({
            "iss": self.inner.issuer,
            "aud": self.inner.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "roles": roles,
        });
        jsonwebtoken::encode(&Header::new(Alg::Hs256.jwt()), &claims, key)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// The `iss` tokens must carry.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Authenticates an HTTP upgrade request: token from `Authorization: Bearer <t>` or,
    /// for browsers, a `bearer.<t>` entry in `Sec-WebSocket-Protocol` (comma-separated
    /// list).
    ///
    /// `Authorization` wins when both are present.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, Rejection> {
        self.verify(headers::bearer_token(headers)?)
    }

    /// Same, from a raw token string.
    ///
    /// Leading and trailing whitespace is ignored. The token's `alg` must be one a key is
    /// configured for; with several keys of that algorithm, the ones whose `kid` matches
    /// the token's are tried, or all of them when none matches or the token has no `kid`.
    pub fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Rejection::new("missing token"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::new("token too large"));
        }
        let header = read_header(token)?;
        let Some((alg, validation)) = Alg::from_name(&header.alg).and_then(|alg| {
            self.inner
                .validations
                .iter()
                .find(|(enabled, _)| *enabled == alg)
        }) else {
            return Err(Rejection::new("algorithm not allowed"));
        };

        let of_alg = || self.inner.keys.iter().filter(|key| key.alg == *alg);
        let by_kid = |key: &&VerifyingKey| {
            header.kid.is_some() && key.kid.as_deref() == header.kid.as_deref()
        };
        let candidates: Vec<&VerifyingKey> = if of_alg().any(|key| by_kid(&key)) {
            of_alg().filter(by_kid).collect()
        } else {
            of_alg().collect()
        };

        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, validation) {
                Ok(data) => return principal(data.claims),
                // Another key of the same algorithm may have signed it.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                // Anything else is about the token itself (its signature checked out
                // before the claims were looked at), so no other key can change it.
                Err(e) => return Err(rejection(e.kind())),
            }
        }
        Err(Rejection::new("invalid signature"))
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<&str> = self
            .inner
            .validations
            .iter()
            .map(|(alg, _)| alg.name())
            .collect();
        f.debug_struct("Authenticator")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway", &self.inner.leeway)
            .field("algorithms", &algorithms)
            .field("keys", &self.inner.keys.len())
            .finish()
    }
}

fn validation(alg: Alg, issuer: &str, audience: &str, leeway: Duration) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = leeway.as_secs();
    validation
}

/// The header fields netra looks at before trusting `jsonwebtoken` with the rest.
/// `alg` is read as a plain string so that `none` and unknown names are refused here as
/// "not allowed" rather than failing deep inside the decoder as "malformed".
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<RawHeader, Rejection> {
    let malformed = || Rejection::new("malformed token");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    // `jsonwebtoken` checks the signature before it decodes the payload, so garbage there
    // would surface as "invalid signature"; a shape check names it for what it is.
    let is_base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if payload.is_empty() || !is_base64url(payload) || !is_base64url(signature) {
        return Err(malformed());
    }
    let json = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed())?;
    serde_json::from_slice(&json).map_err(|_| malformed())
}

/// The claims netra reads, all optional here: `jsonwebtoken` deserializes them before it
/// validates, and a strict struct would turn "missing `sub`" into a generic JSON error.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    roles: Option<Value>,
}

fn principal(claims: Claims) -> Result<Principal, Rejection> {
    let user_id = match claims.sub {
        Some(Value::String(sub)) if !sub.is_empty() => sub,
        Some(Value::String(_)) => return Err(Rejection::new("empty claim `sub`")),
        _ => return Err(Rejection::new("missing claim `sub`")),
    };
    let exp = claims
        .exp
        .as_ref()
        .and_then(|exp| {
            exp.as_u64().or_else(|| {
                exp.as_f64()
                    .filter(|secs| secs.is_finite() && *secs >= 0.0)
                    .map(|secs| secs.round() as u64)
            })
        })
        .ok_or_else(|| Rejection::new("missing claim `exp`"))?;
    let expires_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(exp))
        .ok_or_else(|| Rejection::new("invalid claim `exp`"))?;
    let roles = match claims.roles {
        None => Vec::new(),
        Some(Value::String(role)) => vec![role],
        Some(Value::Array(roles)) => roles
            .into_iter()
            .map(|role| match role {
                Value::String(role) => Ok(role),
                _ => Err(Rejection::new("invalid claim `roles`")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Rejection::new("invalid claim `roles`")),
    };
    Ok(Principal {
        user_id,
        roles,
        expires_at,
    })
}

fn rejection(kind: &ErrorKind) -> Rejection {
    let reason = match kind {
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token",
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidSubject => "wrong subject",
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::MissingRequiredClaim(claim) => {
            return Rejection::new(format!("missing claim `{claim}`"));
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            return Rejection::new(format!("invalid claim `{claim}`"));
        }
        other => {
            // Keys are checked when the authenticator is built, so this is a host
            // problem, not the client's: say little to the client, more to the operator.
            tracing::warn!(error = ?other, "JWT verification failed unexpectedly");
            "invalid token"
        }
    };
    Rejection::new(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_three_parts() {
        assert!(read_header("a.b").is_err());
        assert!(read_header("a.b.c.d").is_err());
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#);
        let parsed = read_header(&format!("{header}.e30.")).expect("valid header");
        assert_eq!(parsed.alg, "none");
        assert_eq!(parsed.kid.as_deref(), Some("k"));
    }

    #[test]
    fn roles_may_be_a_single_string() {
        let claims = Claims {
            sub: Some(Value::from("u")),
            exp: Some(Value::from(10)),
            roles: Some(Value::from("admin")),
        };
        let principal = principal(claims).expect("valid claims");
        assert!(principal.is_admin());
        assert_eq!(principal.expires_at, UNIX_EPOCH + Duration::from_secs(10));
    }

    #[test]
    fn roles_must_be_strings() {
        let claims = Claims {
            sub: Some(Value::from("u")),
            exp: Some(Value::from(10)),
            roles: Some(serde_json::json!(["admin", 3])),
        };
        assert_eq!(
            principal(claims).unwrap_err().reason,
            "invalid claim `roles`"
        );
    }
}
