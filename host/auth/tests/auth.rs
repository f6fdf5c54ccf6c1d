//! `netra-auth` against real tokens signed with the real keys in `tests/keys/`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use netra_auth::{
    AuthConfig, AuthError, Authenticator, DEV_SECRET_FILE, PublicKey, Rejection, Secret, dev_token,
    load_jwks, parse_jwks,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "netra";
const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa-private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa-public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("keys/rsa2-private.pem");
const RSA2_PUBLIC: &[u8] = include_bytes!("keys/rsa2-public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec-private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("keys/ec-public.pem");

fn jwks_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys/jwks.json")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Valid claims for `alice`, with `changes` merged in (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now(),
        "exp": now() + 300,
    });
    let map = claims.as_object_mut().expect("object");
    for (name, value) in changes.as_object().expect("object") {
        if value.is_null() {
            map.remove(name);
        } else {
            map.insert(name.clone(), value.clone());
        }
    }
    claims
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(HS_SECRET),
        None,
        claims,
    )
}

fn rs256(private_pem: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem).expect("RSA private key");
    sign(Algorithm::RS256, &key, kid, claims)
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE).expect("EC private key");
    sign(Algorithm::ES256, &key, kid, claims)
}

fn config() -> AuthConfig {
    AuthConfig::new(ISSUER, AUDIENCE)
}

fn hs_auth() -> Authenticator {
    let mut config = config();
    config.hs256_secret = Some(Secret::new(HS_SECRET));
    Authenticator::new(config).expect("authenticator")
}

fn rsa_auth() -> Authenticator {
    let mut config = config();
    config.public_keys = vec![PublicKey::rsa_pem(RSA_PUBLIC).expect("RSA public key")];
    Authenticator::new(config).expect("authenticator")
}

/// HS256, RS256 (PEM) and ES256 (PEM) all enabled.
fn all_auth() -> Authenticator {
    let mut config = config();
    config.hs256_secret = Some(Secret::new(HS_SECRET));
    config.public_keys = vec![
        PublicKey::rsa_pem(RSA_PUBLIC).expect("RSA public key"),
        PublicKey::ec_pem(EC_PUBLIC).expect("EC public key"),
    ];
    Authenticator::new(config).expect("authenticator")
}

fn jwks_auth() -> Authenticator {
    let mut config = config();
    config.public_keys = load_jwks(&jwks_path()).expect("JWKS");
    Authenticator::new(config).expect("authenticator")
}

fn reason(result: Result<netra_auth::Principal, Rejection>) -> String {
    result.expect_err("token should be rejected").reason
}

// --- Rejections -------------------------------------------------------------------------

#[test]
fn missing_token() {
    let auth = all_auth();
    assert_eq!(
        reason(auth.authenticate(&HeaderMap::new())),
        "missing token"
    );
    assert_eq!(reason(auth.verify("  \n")), "missing token");
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
    assert_eq!(reason(auth.authenticate(&headers)), "missing token");
}

#[test]
fn malformed_token() {
    let auth = all_auth();
    assert_eq!(reason(auth.verify("not-a-jwt")), "malformed token");
    assert_eq!(reason(auth.verify("a.b.c")), "malformed token");
    let token = hs256(&claims(json!({})));
    let (header, _) = token.split_once('.').expect("dots");
    assert_eq!(
        reason(auth.verify(&format!("{header}.!!!.sig"))),
        "malformed token"
    );
}

#[test]
fn bad_signature() {
    // Signed by a different RSA key than the one configured.
    let token = rs256(RSA2_PRIVATE, None, &claims(json!({})));
    assert_eq!(reason(rsa_auth().verify(&token)), "invalid signature");

    // Signed by the right key, then the payload is swapped for another user's.
    let token = rs256(RSA_PRIVATE, None, &claims(json!({})));
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims(json!({"sub": "mallory"})).to_string());
    parts[1] = &forged;
    assert_eq!(
        reason(rsa_auth().verify(&parts.join("."))),
        "invalid signature"
    );
}

#[test]
fn alg_none_is_rejected() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let token = format!("{header}.{payload}.");
    assert_eq!(reason(all_auth().verify(&token)), "algorithm not allowed");
    assert_eq!(reason(hs_auth().verify(&token)), "algorithm not allowed");
}

#[test]
fn hs256_signed_with_rsa_public_key_is_rejected() {
    // The classic key-confusion attack: the public key is public, so an attacker can
    // compute this HMAC; a verifier that lets the token pick the algorithm would use the
    // RSA key bytes as an HMAC secret and accept it.
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC),
        None,
        &claims(json!({"roles": ["admin"]})),
    );
    assert_eq!(reason(rsa_auth().verify(&token)), "algorithm not allowed");
    // With HS256 enabled too, only the configured HS secret is ever used for HS256.
    assert_eq!(reason(all_auth().verify(&token)), "invalid signature");
}

#[test]
fn algorithm_without_a_key_is_rejected() {
    let token = es256(None, &claims(json!({})));
    assert_eq!(reason(rsa_auth().verify(&token)), "algorithm not allowed");
    let token = rs256(RSA_PRIVATE, None, &claims(json!({})));
    assert_eq!(reason(hs_auth().verify(&token)), "algorithm not allowed");
}

#[test]
fn expired() {
    let token = rs256(RSA_PRIVATE, None, &claims(json!({"exp": now() - 120})));
    assert_eq!(reason(rsa_auth().verify(&token)), "token expired");
}

#[test]
fn not_yet_valid() {
    let token = rs256(RSA_PRIVATE, None, &claims(json!({"nbf": now() + 300})));
    assert_eq!(reason(rsa_auth().verify(&token)), "token not yet valid");
}

#[test]
fn wrong_issuer() {
    let token = hs256(&claims(json!({"iss": "https://evil.test"})));
    assert_eq!(reason(hs_auth().verify(&token)), "wrong issuer");
    let token = hs256(&claims(json!({"iss": null})));
    assert_eq!(reason(hs_auth().verify(&token)), "missing claim `iss`");
}

#[test]
fn wrong_audience() {
    let token = hs256(&claims(json!({"aud": "someone-else"})));
    assert_eq!(reason(hs_auth().verify(&token)), "wrong audience");
    let token = hs256(&claims(json!({"aud": null})));
    assert_eq!(reason(hs_auth().verify(&token)), "missing claim `aud`");
}

#[test]
fn missing_sub() {
    let token = es256(None, &claims(json!({"sub": null})));
    let mut config = config();
    config.public_keys = vec![PublicKey::ec_pem(EC_PUBLIC).expect("EC key")];
    let auth = Authenticator::new(config).expect("authenticator");
    assert_eq!(reason(auth.verify(&token)), "missing claim `sub`");
    let token = es256(None, &claims(json!({"sub": ""})));
    assert_eq!(reason(auth.verify(&token)), "empty claim `sub`");
}

#[test]
fn missing_exp() {
    let token = hs256(&claims(json!({"exp": null})));
    assert_eq!(reason(hs_auth().verify(&token)), "missing claim `exp`");
}

#[test]
fn bad_roles_claim() {
    let token = hs256(&claims(json!({"roles": {"admin": true}})));
    assert_eq!(reason(hs_auth().verify(&token)), "invalid claim `roles`");
}

// --- Accepted tokens --------------------------------------------------------------------

#[test]
fn accepts_hs256() {
    let exp = now() + 300;
    let token = hs256(&claims(json!({"exp": exp})));
    let principal = hs_auth().verify(&token).expect("valid token");
    assert_eq!(principal.user_id, "alice");
    assert!(principal.roles.is_empty());
    assert!(!principal.is_admin());
    assert_eq!(principal.expires_at, UNIX_EPOCH + Duration::from_secs(exp));
}

#[test]
fn accepts_rs256_pem() {
    let token = rs256(RSA_PRIVATE, None, &claims(json!({})));
    assert_eq!(rsa_auth().verify(&token).expect("valid").user_id, "alice");
    assert_eq!(all_auth().verify(&token).expect("valid").user_id, "alice");
}

#[test]
fn accepts_es256_pem() {
    let token = es256(None, &claims(json!({})));
    assert_eq!(all_auth().verify(&token).expect("valid").user_id, "alice");
}

#[test]
fn accepts_rs256_via_jwks() {
    let auth = jwks_auth();
    let token = rs256(RSA_PRIVATE, Some("rsa-1"), &claims(json!({})));
    assert_eq!(auth.verify(&token).expect("valid").user_id, "alice");
    // Without a `kid`, every key of the algorithm is tried.
    let token = rs256(RSA_PRIVATE, None, &claims(json!({})));
    assert_eq!(auth.verify(&token).expect("valid").user_id, "alice");
}

#[test]
fn accepts_es256_via_jwks() {
    let token = es256(Some("ec-1"), &claims(json!({})));
    assert_eq!(jwks_auth().verify(&token).expect("valid").user_id, "alice");
}

#[test]
fn jwks_keys_keep_their_kid() {
    let keys = load_jwks(&jwks_path()).expect("JWKS");
    let described: Vec<(&str, Option<&str>)> = keys
        .iter()
        .map(|key| (key.algorithm(), key.kid()))
        .collect();
    assert_eq!(
        described,
        [("RS256", Some("rsa-1")), ("ES256", Some("ec-1"))]
    );
}

#[test]
fn kid_picks_the_key() {
    let mut config = config();
    config.public_keys = vec![
        PublicKey::rsa_pem(RSA2_PUBLIC)
            .expect("RSA key")
            .with_kid("rsa-2"),
    ];
    config
        .public_keys
        .extend(load_jwks(&jwks_path()).expect("JWKS"));
    let auth = Authenticator::new(config).expect("authenticator");

    let token = rs256(RSA_PRIVATE, Some("rsa-1"), &claims(json!({})));
    assert!(auth.verify(&token).is_ok());
    let token = rs256(RSA2_PRIVATE, Some("rsa-2"), &claims(json!({})));
    assert!(auth.verify(&token).is_ok());
    // An unknown `kid` falls back to trying every RS256 key.
    let token = rs256(RSA2_PRIVATE, Some("unknown"), &claims(json!({})));
    assert!(auth.verify(&token).is_ok());
    // A known `kid` is trusted to name the key: rsa-1 did not sign this.
    let token = rs256(RSA2_PRIVATE, Some("rsa-1"), &claims(json!({})));
    assert_eq!(reason(auth.verify(&token)), "invalid signature");
}

#[test]
fn token_from_authorization_header() {
    let token = rs256(RSA_PRIVATE, None, &claims(json!({})));
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    assert_eq!(
        all_auth().authenticate(&headers).expect("valid").user_id,
        "alice"
    );
}

#[test]
fn token_from_websocket_protocol() {
    let token = es256(None, &claims(json!({})));
    let mut headers = HeaderMap::new();
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(&format!("netra.v1, bearer.{token}")).expect("header"),
    );
    assert_eq!(
        all_auth().authenticate(&headers).expect("valid").user_id,
        "alice"
    );
}

#[test]
fn unsupported_authorization_scheme() {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_static("Basic YWxpY2U6cHc="),
    );
    assert_eq!(
        reason(all_auth().authenticate(&headers)),
        "unsupported authorization scheme"
    );
}

#[test]
fn surrounding_whitespace_is_ignored() {
    let token = hs256(&claims(json!({})));
    assert!(hs_auth().verify(&format!("  {token}\r\n")).is_ok());
}

#[test]
fn audience_list_containing_ours_is_accepted() {
    let token = hs256(&claims(json!({"aud": ["other", AUDIENCE]})));
    assert!(hs_auth().verify(&token).is_ok());
}

#[test]
fn leeway_accepts_recently_expired_token() {
    let token = rs256(RSA_PRIVATE, None, &claims(json!({"exp": now() - 5})));
    let mut config = config();
    config.public_keys = vec![PublicKey::rsa_pem(RSA_PUBLIC).expect("RSA key")];
    config.leeway = Duration::from_secs(30);
    let auth = Authenticator::new(config.clone()).expect("authenticator");
    assert!(auth.verify(&token).is_ok());

    config.leeway = Duration::ZERO;
    let strict = Authenticator::new(config).expect("authenticator");
    assert_eq!(reason(strict.verify(&token)), "token expired");
}

#[test]
fn roles_and_admin() {
    let token = hs256(&claims(json!({"roles": ["reader", "admin"]})));
    let principal = hs_auth().verify(&token).expect("valid");
    assert_eq!(principal.roles, ["reader", "admin"]);
    assert!(principal.is_admin());

    let token = hs256(&claims(json!({"roles": ["reader"]})));
    assert!(!hs_auth().verify(&token).expect("valid").is_admin());
}

// --- Dev mode and issuing -----------------------------------------------------------------

#[test]
fn dev_mode_generates_the_secret_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("netra-data");
    let first = Authenticator::dev(&data_dir).expect("dev authenticator");
    let secret_path = data_dir.join(DEV_SECRET_FILE);
    let secret = std::fs::read(&secret_path).expect("secret file");
    // 32 random bytes as unpadded base64url, plus a newline.
    assert_eq!(secret.len(), 44);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let token = first
        .issue("bob", &["admin"], Duration::from_secs(60))
        .expect("issue");
    let second = Authenticator::dev(&data_dir).expect("dev authenticator");
    assert_eq!(std::fs::read(&secret_path).expect("secret file"), secret);
    let principal = second.verify(&token).expect("valid");
    assert_eq!(principal.user_id, "bob");
    assert!(principal.is_admin());

    let token = dev_token(&data_dir, "carol", &[], Duration::from_secs(60)).expect("token");
    assert_eq!(first.verify(&token).expect("valid").user_id, "carol");

    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(&data_dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, [DEV_SECRET_FILE]);
}

#[test]
fn concurrent_dev_starts_agree_on_one_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_owned();
    let auths: Vec<Authenticator> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| Authenticator::dev(&data_dir).expect("dev")))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let token = auths[0]
        .issue("dave", &[], Duration::from_secs(60))
        .expect("issue");
    for auth in &auths {
        assert!(auth.verify(&token).is_ok());
    }
}

#[test]
fn issued_tokens_carry_the_standard_claims() {
    let token = hs_auth()
        .issue("erin", &["a", "b"], Duration::from_secs(600))
        .expect("issue");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], "erin");
    assert_eq!(claims["roles"], json!(["a", "b"]));
    let iat = claims["iat"].as_u64().expect("iat");
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 600));
}

#[test]
fn issuing_needs_an_hs256_secret() {
    assert!(matches!(
        rsa_auth().issue("x", &[], Duration::from_secs(60)),
        Err(AuthError::NoSigningKey)
    ));
}

// --- Configuration errors -----------------------------------------------------------------

#[test]
fn secret_debug_hides_the_bytes() {
    let secret = Secret::new(HS_SECRET);
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    let mut config = config();
    config.hs256_secret = Some(secret);
    let shown = format!("{config:?} {:?}", Authenticator::new(config.clone()));
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
}

#[test]
fn config_needs_a_key() {
    assert!(matches!(
        Authenticator::new(config()),
        Err(AuthError::NoKeys)
    ));
}

#[test]
fn short_hs256_secret_is_refused() {
    let mut config = config();
    config.hs256_secret = Some(Secret::new("short"));
    assert!(matches!(
        Authenticator::new(config),
        Err(AuthError::WeakSecret { len: 5 })
    ));
}

#[test]
fn secret_file_drops_trailing_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    std::fs::write(&path, [HS_SECRET, b"\n"].concat()).expect("write");
    let mut config = config();
    config.hs256_secret = Some(Secret::from_file(&path).expect("secret"));
    let auth = Authenticator::new(config).expect("authenticator");
    assert!(auth.verify(&hs256(&claims(json!({})))).is_ok());
}

#[test]
fn pem_keys_of_the_wrong_kind_are_refused() {
    let err = PublicKey::rsa_pem(RSA_PRIVATE).expect_err("private key");
    assert!(err.to_string().contains("private key"), "{err}");
    assert!(PublicKey::rsa_pem(EC_PUBLIC).is_err());
    assert!(PublicKey::ec_pem(RSA_PUBLIC).is_err());
    assert!(PublicKey::ec_pem(EC_PRIVATE).is_err());
    assert!(PublicKey::rsa_pem(b"not a pem").is_err());
}

#[test]
fn jwks_skips_keys_it_cannot_use() {
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(jwks_path()).expect("read")).expect("json");
    let rsa = jwks["keys"][0].clone();
    let mut encryption = rsa.clone();
    encryption["use"] = json!("enc");
    encryption["kid"] = json!("enc-1");
    let mut ps256 = rsa.clone();
    ps256["alg"] = json!("PS256");
    let p384 = json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
    let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"});
    let doc = json!({"keys": [encryption, ps256, p384, okp, rsa]});
    let keys = parse_jwks(doc.to_string().as_bytes()).expect("JWKS");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid(), Some("rsa-1"));

    let only_unusable = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]});
    assert!(parse_jwks(only_unusable.to_string().as_bytes()).is_err());
}

#[test]
fn jwks_with_private_or_broken_keys_is_refused() {
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(jwks_path()).expect("read")).expect("json");
    let mut private = jwks["keys"][0].clone();
    private["d"] = json!("AQAB");
    let doc = json!({"keys": [private]});
    assert!(parse_jwks(doc.to_string().as_bytes()).is_err());

    let mut off_curve = jwks["keys"][1].clone();
    off_curve["y"] = off_curve["x"].clone();
    let doc = json!({"keys": [off_curve]});
    let err = parse_jwks(doc.to_string().as_bytes()).expect_err("off-curve point");
    assert!(err.to_string().contains("curve"), "{err}");

    let mut small = jwks["keys"][0].clone();
    small["n"] = json!(URL_SAFE_NO_PAD.encode([0xc5u8; 128]));
    let doc = json!({"keys": [small]});
    assert!(parse_jwks(doc.to_string().as_bytes()).is_err());

    assert!(parse_jwks(b"{\"not\": []}").is_err());
    assert!(load_jwks(&jwks_path().with_file_name("missing.json")).is_err());
}
