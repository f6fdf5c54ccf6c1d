//! Key material: the HS256 [`Secret`], RS256/ES256 [`PublicKey`]s from PEM, and JWKS files.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::AuthError;

/// The algorithms netra accepts. Each is enabled only by a key of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Hs256,
    Rs256,
    Es256,
}

impl Alg {
    pub(crate) const ALL: [Alg; 3] = [Alg::Hs256, Alg::Rs256, Alg::Es256];

    /// Matches the `alg` header exactly (JOSE names are case-sensitive).
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Alg::Hs256 => Algorithm::HS256,
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
        }
    }
}

/// A shared secret for HS256.
///
/// Its bytes are wiped from memory on drop and never printed: `Debug` shows `Secret(***)`.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps raw secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// Reads a secret from a file.
    ///
    /// Trailing ASCII whitespace (the newline an editor or `echo` adds) is not part of the
    /// secret, so the file can be written by hand.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|source| AuthError::Read {
            path: path.to_owned(),
            source,
        })?);
        let len = bytes.trim_ascii_end().len();
        bytes.truncate(len);
        Ok(Secret(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A public key that verifies RS256 (RSA) or ES256 (EC P-256) tokens, with an optional
/// key id (`kid`).
#[derive(Clone)]
pub struct PublicKey {
    alg: Alg,
    kid: Option<String>,
    key: DecodingKey,
}

/// RSA keys below this size are refused; 2048 bits is the floor RFC 7518 sets for RS256.
const RSA_MIN_BITS: usize = 2048;
/// The verifier (the `rsa` crate) refuses larger moduli, so refuse them up front.
const RSA_MAX_BITS: usize = 4096;

impl PublicKey {
    /// Reads an RSA public key (RS256) from PEM: `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY`
    /// (PKCS#1). Private keys and certificates are refused with a hint.
    pub fn rsa_pem(pem: &[u8]) -> Result<Self, AuthError> {
        let invalid = |reason: String| AuthError::InvalidKey {
            kind: "RSA",
            reason,
        };
        check_pem_label(pem, &["PUBLIC KEY", "RSA PUBLIC KEY"]).map_err(invalid)?;
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|_| invalid("not an RSA public key".to_owned()))?;
        let jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(&key, Some(Algorithm::RS256))
            .map_err(|e| invalid(format!("cannot parse it: {e}")))?;
        match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(params) => {
                let n = b64url(&params.n).map_err(invalid)?;
                let e = b64url(&params.e).map_err(invalid)?;
                check_rsa(&n, &e).map_err(invalid)?;
            }
            _ => return Err(invalid("not an RSA public key".to_owned())),
        }
        Ok(PublicKey {
            alg: Alg::Rs256,
            kid: None,
            key,
        })
    }

    /// Reads an EC P-256 public key (ES256) from PEM (`PUBLIC KEY`, SPKI). Private keys,
    /// certificates and other curves are refused.
    pub fn ec_pem(pem: &[u8]) -> Result<Self, AuthError> {
        let invalid = |reason: String| AuthError::InvalidKey { kind: "EC", reason };
        check_pem_label(pem, &["PUBLIC KEY"]).map_err(invalid)?;
        let key = DecodingKey::from_ec_pem(pem)
            .map_err(|_| invalid("not an EC public key".to_owned()))?;
        check_p256(&key).map_err(invalid)?;
        Ok(PublicKey {
            alg: Alg::Es256,
            kid: None,
            key,
        })
    }

    /// Sets the key id that tokens name in their `kid` header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies: `"RS256"` or `"ES256"`.
    pub fn algorithm(&self) -> &'static str {
        self.alg.name()
    }

    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg.name())
            .field("kid", &self.kid)
            .finish()
    }
}

/// Reads a JWKS file (`{"keys": [...]}`) and returns its RS256 and ES256 keys.
///
/// See [`parse_jwks`] for which keys are used.
pub fn load_jwks(path: &Path) -> Result<Vec<PublicKey>, AuthError> {
    let json = std::fs::read(path).map_err(|source| AuthError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_jwks_from(&json, Some(path))
}

/// Parses a JWKS document (`{"keys": [...]}`) and returns its RS256 and ES256 keys.
///
/// RSA keys (`alg` absent or `RS256`) and EC P-256 keys (`alg` absent or `ES256`) are
/// used, with their `kid`. Keys that are not for signatures (`use` other than `sig`,
/// `key_ops` without `verify`) or of another type, curve or algorithm are skipped with a
/// warning, because identity providers publish such keys next to the signing ones. A key
/// that is malformed or carries private material is an error, and so is a document
/// without any usable key.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<PublicKey>, AuthError> {
    parse_jwks_from(json, None)
}

fn parse_jwks_from(json: &[u8], path: Option<&Path>) -> Result<Vec<PublicKey>, AuthError> {
    let invalid = |reason: String| AuthError::InvalidJwks {
        path: path.map(Path::to_owned),
        reason,
    };
    let doc: Value =
        serde_json::from_slice(json).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err(invalid("expected an object with a `keys` array".to_owned()));
    };
    let mut keys = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str);
        let name = match kid {
            Some(kid) => format!("key {index} (kid `{kid}`)"),
            None => format!("key {index}"),
        };
        match jwk_to_key(entry) {
            Ok(Jwk::Key(key)) => keys.push(key),
            Ok(Jwk::Skip(why)) => {
                tracing::warn!(jwks = ?path, "skipping JWKS {name}: {why}");
            }
            Err(why) => return Err(invalid(format!("{name}: {why}"))),
        }
    }
    if keys.is_empty() {
        return Err(invalid("no RS256 or ES256 signing key in it".to_owned()));
    }
    Ok(keys)
}

enum Jwk {
    Key(PublicKey),
    Skip(String),
}

fn jwk_to_key(jwk: &Value) -> Result<Jwk, String> {
    if !jwk.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let field = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    let required = |name: &str| -> Result<&str, String> {
        field(name)?.ok_or_else(|| format!("`{name}` is missing"))
    };
    // A published key set never needs the private parts; their presence means the wrong
    // file was deployed, which deserves a hard stop rather than a quiet success.
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|name| jwk.get(name).is_some())
    {
        return Err("it contains private or symmetric key material".to_owned());
    }
    if let Some(usage) = field("use")?
        && usage != "sig"
    {
        return Ok(Jwk::Skip(format!("`use` is `{usage}`, not `sig`")));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array().ok_or("`key_ops` is not an array")?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Ok(Jwk::Skip("`key_ops` does not include `verify`".to_owned()));
        }
    }
    let kty = required("kty")?;
    let alg = field("alg")?;
    let key = match kty {
        "RSA" => {
            if let Some(alg) = alg.filter(|alg| *alg != "RS256") {
                return Ok(Jwk::Skip(format!("algorithm `{alg}` is not supported")));
            }
            let n = b64url(required("n")?)?;
            let e = b64url(required("e")?)?;
            check_rsa(&n, &e)?;
            PublicKey {
                alg: Alg::Rs256,
                kid: None,
                key: DecodingKey::from_rsa_raw_components(&n, &e),
            }
        }
        "EC" => {
            let crv = required("crv")?;
            if crv != "P-256" {
                return Ok(Jwk::Skip(format!("curve `{crv}` is not supported")));
            }
            if let Some(alg) = alg.filter(|alg| *alg != "ES256") {
                return Ok(Jwk::Skip(format!("algorithm `{alg}` is not supported")));
            }
            let x = b64url(required("x")?)?;
            let y = b64url(required("y")?)?;
            if x.len() != 32 || y.len() != 32 {
                return Err("`x` and `y` must be 32 bytes each for P-256".to_owned());
            }
            // The EC decoding key holds the SEC1 point, whatever the constructor's name.
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            let key = DecodingKey::from_ec_der(&point);
            check_p256(&key)?;
            PublicKey {
                alg: Alg::Es256,
                kid: None,
                key,
            }
        }
        other => return Ok(Jwk::Skip(format!("key type `{other}` is not supported"))),
    };
    Ok(Jwk::Key(match field("kid")? {
        Some(kid) => key.with_kid(kid),
        None => key,
    }))
}

/// Checks the PEM armour so that a private key or a certificate gets a precise hint
/// instead of a parse error.
fn check_pem_label(pem: &[u8], accepted: &[&str]) -> Result<(), String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM document".to_owned())?;
    let label = text
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label)
        .ok_or("not a PEM document")?;
    if accepted.contains(&label) {
        Ok(())
    } else if label.contains("PRIVATE KEY") {
        Err("this is a private key; configure its public half \
             (`openssl pkey -in key.pem -pubout`)"
            .to_owned())
    } else if label == "CERTIFICATE" {
        Err("certificates are not read; extract the public key \
             (`openssl x509 -in cert.pem -pubkey -noout`)"
            .to_owned())
    } else {
        Err(format!("unexpected PEM block `{label}`"))
    }
}

fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let bits = bit_length(n);
    if bits < RSA_MIN_BITS {
        return Err(format!(
            "the RSA key is {bits} bits; at least {RSA_MIN_BITS} are required"
        ));
    }
    if bits > RSA_MAX_BITS {
        return Err(format!(
            "the RSA key is {bits} bits; at most {RSA_MAX_BITS} are supported"
        ));
    }
    // The verifier accepts odd exponents from 3 up to 2^33 - 1.
    let e_bits = bit_length(e);
    let odd = e.last().is_some_and(|byte| byte & 1 == 1);
    if !odd || !(2..=33).contains(&e_bits) {
        return Err("the RSA public exponent is invalid".to_owned());
    }
    Ok(())
}

fn bit_length(big_endian: &[u8]) -> usize {
    let digits: &[u8] = match big_endian.iter().position(|byte| *byte != 0) {
        Some(first) => &big_endian[first..],
        None => &[],
    };
    match digits.first() {
        Some(top) => digits.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// Checks that `key` holds an uncompressed point on P-256.
fn check_p256(key: &DecodingKey) -> Result<(), String> {
    let point = key.try_get_as_bytes().map_err(|e| e.to_string())?;
    if point.len() != 65 || point[0] != 4 {
        return Err("not an uncompressed P-256 key (only ES256 is supported)".to_owned());
    }
    // Building the verifier parses the point and fails if it is not on the curve; the
    // all-zero signature itself is simply reported as not matching.
    let zero_signature = "A".repeat(86);
    jsonwebtoken::crypto::verify(&zero_signature, b"probe", key, Algorithm::ES256)
        .map_err(|_| "the point is not on the P-256 curve".to_owned())?;
    Ok(())
}

/// Decodes base64url, with or without padding, as JWK members are written in the wild.
fn b64url(text: &str) -> Result<Vec<u8>, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(text)
        .map_err(|e| format!("bad base64url: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0x01, 0x00, 0x01]), 17);
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
    }

    #[test]
    fn alg_names_are_case_sensitive() {
        assert_eq!(Alg::from_name("RS256"), Some(Alg::Rs256));
        assert_eq!(Alg::from_name("rs256"), None);
        assert_eq!(Alg::from_name("none"), None);
    }
}
