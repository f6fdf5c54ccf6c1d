//! Authentication at the upgrade: every bad token gets HTTP 401 with a reason
//! before any WebSocket exists. Real keys (host/auth/tests/keys), real JWTs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use netra_auth::{AuthConfig, PublicKey};
use netra_server::{RunLimits, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, http};

use netra_tests::inproc::TestServer;

const ISSUER: &str = "https://issuer.netra.test";
const AUDIENCE: &str = "netra-clients";

fn key(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../host/auth/tests/keys/");
    std::fs::read(format!("{path}{name}")).expect("test key")
}

async fn rs256_server() -> TestServer {
    let mut config = AuthConfig::new(ISSUER, AUDIENCE);
    config
        .public_keys
        .push(PublicKey::rsa_pem(&key("rsa-public.pem")).unwrap());
    config
        .public_keys
        .push(PublicKey::ec_pem(&key("ec-public.pem")).unwrap());
    TestServer::start_with(ServerConfig::default(), RunLimits::default(), Some(config)).await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({ "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now() })
}

fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&key("rsa-private.pem")).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&key("ec-private.pem")).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tries to upgrade with `authorization` (if any); returns the HTTP status
/// and the JSON body's reason, or 101 when the upgrade succeeded.
async fn attempt(server: &TestServer, authorization: Option<String>) -> (u16, String) {
    let mut request = server.url().into_client_request().unwrap();
    if let Some(value) = authorization {
        request.headers_mut().insert(
            "authorization",
            http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => (101, String::new()),
        Err(Error::Http(response)) => {
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON error body");
            assert_eq!(body["error"], "unauthorized");
            (
                response.status().as_u16(),
                body["reason"].as_str().unwrap_or_default().to_string(),
            )
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn rejected(server: &TestServer, token: Option<String>) -> String {
    let (status, reason) = attempt(server, token.map(|t| format!("Bearer {t}"))).await;
    assert_eq!(status, 401, "expected 401, got {status}");
    reason
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_are_accepted() {
    let server = rs256_server().await;
    assert_eq!(
        attempt(&server, Some(format!("Bearer {}", rs256(&claims()))))
            .await
            .0,
        101
    );
    assert_eq!(
        attempt(&server, Some(format!("Bearer {}", es256(&claims()))))
            .await
            .0,
        101
    );
}

#[tokio::test]
async fn a_missing_token_is_401() {
    let server = rs256_server().await;
    assert_eq!(rejected(&server, None).await, "missing token");
}

#[tokio::test]
async fn a_malformed_token_is_401() {
    let server = rs256_server().await;
    assert_eq!(
        rejected(&server, Some("not.a.jwt".into())).await,
        "malformed token"
    );
}

#[tokio::test]
async fn a_bad_signature_is_401() {
    let server = rs256_server().await;
    let other = EncodingKey::from_rsa_pem(&key("rsa2-private.pem")).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &other).unwrap();
    assert_eq!(rejected(&server, Some(token)).await, "invalid signature");
}

#[tokio::test]
async fn alg_none_is_401() {
    let server = rs256_server().await;
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims().to_string().as_bytes());
    let reason = rejected(&server, Some(format!("{header}.{payload}."))).await;
    assert_eq!(reason, "algorithm not allowed");
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_401() {
    let server = rs256_server().await;
    let key = EncodingKey::from_secret(&key("rsa-public.pem"));
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &key).unwrap();
    assert_eq!(
        rejected(&server, Some(token)).await,
        "algorithm not allowed"
    );
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let server = rs256_server().await;
    let mut c = claims();
    c["exp"] = json!(now() - 3600);
    assert_eq!(rejected(&server, Some(rs256(&c))).await, "token expired");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_401() {
    let server = rs256_server().await;
    let mut c = claims();
    c["nbf"] = json!(now() + 3600);
    assert_eq!(
        rejected(&server, Some(rs256(&c))).await,
        "token not yet valid"
    );
}

#[tokio::test]
async fn a_wrong_issuer_is_401() {
    let server = rs256_server().await;
    let mut c = claims();
    c["iss"] = json!("https://evil.test");
    assert_eq!(rejected(&server, Some(rs256(&c))).await, "wrong issuer");
}

#[tokio::test]
async fn a_wrong_audience_is_401() {
    let server = rs256_server().await;
    let mut c = claims();
    c["aud"] = json!("someone-else");
    assert_eq!(rejected(&server, Some(rs256(&c))).await, "wrong audience");
}

#[tokio::test]
async fn a_token_without_sub_is_401() {
    let server = rs256_server().await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    let reason = rejected(&server, Some(rs256(&c))).await;
    assert!(reason.contains("sub"), "{reason}");
}

#[tokio::test]
async fn the_health_endpoint_needs_no_token() {
    let server = rs256_server().await;
    let addr = server.addr.to_string();
    let response = tokio::task::spawn_blocking(move || {
        netra_tests::http::request(&addr, "GET", "/healthz", &[], b"")
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
}
