//! DPoP (RFC 9449): tokens bound to a key that never leaves the keychain, so that a copied token is useless.
//!
//! - Each session has its own ES256 key ([`DpopKey`]), made at sign-in and kept, private part included, in the
//!   session's keychain entry; it goes when the session goes.
//! - Every request that carries or obtains a token (token, refresh, revocation, resource, userinfo) carries a
//!   fresh proof: a JWT signed with the key, naming the request's method and URL, with a unique `jti`, and with
//!   `ath`, the access token's hash, where the access token is sent (§4.2).
//! - A server may require a nonce it chose (§8, §9). Its latest `DPoP-Nonce` is remembered per server (the
//!   authorization server or the resource server, at their origin: the two may share one origin and still keep
//!   nonces of their own) and put in the next proof to it; when a request is refused with `use_dpop_nonce`, it is
//!   sent again once with the new nonce.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::AccessToken;
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::os::unix_now;

/// The proof's media type (RFC 9449 §4.2).
const PROOF_TYPE: &str = "dpop+jwt";

/// The one algorithm Gatehouse signs proofs with; a provider must list it in
/// `dpop_signing_alg_values_supported` for DPoP to be used.
pub const ALGORITHM: &str = "ES256";

/// The header that carries a proof, and the one that carries a server's nonce.
pub const DPOP_HEADER: &str = "DPoP";
/// The header in which a server gives the nonce to use (§8.1, §9).
pub const NONCE_HEADER: &str = "DPoP-Nonce";

/// A session's key. The private part is kept only here and in the keychain; `Debug` shows neither.
#[derive(Clone)]
pub struct DpopKey {
    secret: p256::SecretKey,
    /// The public key as a JWK, for every proof's header: made once, with the key.
    public: Jwk,
    /// The private key as the signer takes it (PKCS #8): made once, with the key.
    signing: EncodingKey,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopKey([redacted])")
    }
}

/// A key as the keychain entry keeps it: a JWK with its private part (`d`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredKey(String);

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredKey([redacted])")
    }
}

impl DpopKey {
    /// A new key from the OS's CSPRNG.
    ///
    /// # Errors
    /// [`Error::Internal`] if it can't be encoded, which should not happen.
    pub fn generate() -> Result<DpopKey> {
        DpopKey::with_secret(p256::SecretKey::random(&mut rand_core::OsRng))
    }

    fn with_secret(secret: p256::SecretKey) -> Result<DpopKey> {
        let public = public_jwk(&secret)?;
        let der = secret.to_pkcs8_der().map_err(|_| Error::Internal("DPoP key encoding".into()))?;
        Ok(DpopKey { signing: EncodingKey::from_ec_der(der.as_bytes()), public, secret })
    }

    /// The key kept in a keychain entry.
    ///
    /// # Errors
    /// [`Error::Internal`] when it is not a P-256 private JWK.
    pub fn from_stored(stored: &StoredKey) -> Result<DpopKey> {
        let secret = p256::SecretKey::from_jwk_str(&stored.0)
            .map_err(|_| Error::Internal("the session's DPoP key can't be read".into()))?;
        DpopKey::with_secret(secret)
    }

    /// The key as the keychain entry keeps it.
    pub fn to_stored(&self) -> StoredKey {
        StoredKey(self.secret.to_jwk_string().to_string())
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), base64url-encoded: `dpop_jkt` (RFC 9449 §10).
    ///
    /// # Errors
    /// [`Error::Internal`] if the public key can't be read.
    pub fn thumbprint(&self) -> Result<String> {
        let AlgorithmParameters::EllipticCurve(key) = &self.public.algorithm else {
            return Err(Error::Internal("DPoP key is not an EC key".into()));
        };
        // RFC 7638 §3.2: the required members only, in lexicographic order, with no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, key.x, key.y);
        Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// A proof for a `method` request to `url` (RFC 9449 §4.2), with the server's latest nonce if it gave one,
    /// and `ath` when `access_token` is sent with it.
    ///
    /// # Errors
    /// [`Error::Internal`] if it can't be signed.
    pub fn proof(&self, method: &str, url: &Url, access_token: Option<&AccessToken>, server: Server) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(PROOF_TYPE.to_owned());
        header.jwk = Some(self.public.clone());
        let claims = Claims {
            // §4.2: a unique identifier, so that the server can refuse a replayed proof.
            jti: URL_SAFE_NO_PAD.encode(rand_bytes()),
            htm: method.to_owned(),
            htu: target_uri(url),
            iat: unix_now(),
            nonce: nonce_for(url, server),
            // §4.2: the access token's SHA-256, base64url-encoded, ties the proof to the token it comes with.
            ath: access_token.map(|token| URL_SAFE_NO_PAD.encode(Sha256::digest(token.secret().as_bytes()))),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| Error::Internal(format!("DPoP proof: {e}")))
    }
}

/// `secret`'s public key as a JWK.
fn public_jwk(secret: &p256::SecretKey) -> Result<Jwk> {
    let jwk = serde_json::to_value(secret.public_key().to_jwk()).unwrap_or_default();
    let coordinate = |name: &str| -> Result<String> {
        jwk[name].as_str().map(str::to_owned).ok_or_else(|| Error::Internal(format!("DPoP key without {name}")))
    };
    Ok(Jwk {
        common: Default::default(),
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: coordinate("x")?,
            y: coordinate("y")?,
        }),
    })
}

#[derive(Serialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

/// 128 random bits, base64url: a name nobody can guess or repeat (a proof's `jti`, a grant's name).
pub(crate) fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand_bytes())
}

fn rand_bytes() -> [u8; 16] {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// `htu`: the request's URI without query and fragment (RFC 9449 §4.2, §4.3 step 9).
pub fn target_uri(url: &Url) -> String {
    let mut target = url.clone();
    target.set_query(None);
    target.set_fragment(None);
    target.to_string()
}

/// Which server a request goes to: each keeps nonces of its own (§8 for the authorization server, §9 for the
/// resource server), even on one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Server {
    /// The authorization server: token, revocation and pushed authorization endpoints, userinfo.
    Authorization,
    /// The protected resource.
    Resource,
}

/// The latest nonce each server asked for. Nonces are not secret; they only prove freshness.
static NONCES: Mutex<BTreeMap<(Server, String), String>> = Mutex::new(BTreeMap::new());

fn nonce_for(url: &Url, server: Server) -> Option<String> {
    NONCES.lock().ok()?.get(&(server, url.origin().ascii_serialization())).cloned()
}

/// Keeps the nonce in a response from `server` at `url`, if it has one (§8.2: a server may send a new one at any
/// time). Returns whether it had one.
pub fn remember_nonce(url: &Url, server: Server, headers: &oauth2::http::HeaderMap) -> bool {
    let Some(nonce) = headers.get(NONCE_HEADER).and_then(|v| v.to_str().ok()) else { return false };
    // §8.1: NQCHAR, at least one; anything else is not a nonce to echo.
    if nonce.is_empty() || nonce.len() > 512 || !nonce.bytes().all(|b| b == b'!' || (0x23..=0x7e).contains(&b)) {
        return false;
    }
    if let Ok(mut nonces) = NONCES.lock() {
        nonces.insert((server, url.origin().ascii_serialization()), nonce.to_owned());
    }
    true
}

/// Whether the provider's metadata says it takes DPoP proofs signed with [`ALGORITHM`].
pub fn advertised(algorithms: Option<&serde_json::Value>) -> bool {
    algorithms.and_then(serde_json::Value::as_array).is_some_and(|algs| algs.iter().any(|a| a == ALGORITHM))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn a_proof_is_an_es256_jwt_with_its_public_key_and_the_request() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://api.example.com/me?page=2#top").unwrap();
        let token = AccessToken::new("the-token".into());
        let proof = key.proof("GET", &url, Some(&token), Server::Resource).unwrap();
        let header = jsonwebtoken::decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk = header.jwk.unwrap();
        let text = serde_json::to_string(&jwk).unwrap();
        assert!(!text.contains("\"d\""), "the proof must carry the public key only: {text}");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(&proof, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
                .unwrap()
                .claims;
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example.com/me");
        assert_eq!(claims["ath"], URL_SAFE_NO_PAD.encode(Sha256::digest(b"the-token")));
        assert!(claims["iat"].as_u64().unwrap().abs_diff(unix_now()) < 5);
        let again = key.proof("GET", &url, Some(&token), Server::Resource).unwrap();
        let jti =
            |p: &str| jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(p).unwrap().claims["jti"].clone();
        assert_ne!(jti(&proof), jti(&again), "every proof has its own jti");
        assert!(key.proof("POST", &url, None, Server::Authorization).unwrap() != proof);
    }

    #[test]
    fn the_stored_key_is_the_same_key_and_never_shows_in_debug() {
        let key = DpopKey::generate().unwrap();
        let stored = key.to_stored();
        let back = DpopKey::from_stored(&stored).unwrap();
        assert_eq!(back.public, key.public);
        assert_eq!(format!("{stored:?} {key:?}"), "StoredKey([redacted]) DpopKey([redacted])");
        assert!(DpopKey::from_stored(&StoredKey("{}".into())).is_err());
    }

    #[test]
    fn a_servers_nonce_goes_into_its_next_proofs_only() {
        let url = Url::parse("https://nonce.example.com/token").unwrap();
        let other = Url::parse("https://other.example.com/token").unwrap();
        let mut headers = oauth2::http::HeaderMap::new();
        headers.insert(NONCE_HEADER, "eyJ7S_zG.eyJH0-Z.HX4w-7v".parse().unwrap());
        assert!(remember_nonce(&url, Server::Authorization, &headers));
        let claims = |p: &str| jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(p).unwrap().claims;
        let key = DpopKey::generate().unwrap();
        assert_eq!(
            claims(&key.proof("POST", &url, None, Server::Authorization).unwrap())["nonce"],
            "eyJ7S_zG.eyJH0-Z.HX4w-7v"
        );
        assert!(claims(&key.proof("POST", &other, None, Server::Authorization).unwrap()).get("nonce").is_none());
        // The resource on the same origin keeps its own nonce, and neither overwrites the other.
        let resource = Url::parse("https://nonce.example.com/api/resource").unwrap();
        assert!(claims(&key.proof("GET", &resource, None, Server::Resource).unwrap()).get("nonce").is_none());
        headers.insert(NONCE_HEADER, "resource-nonce".parse().unwrap());
        assert!(remember_nonce(&resource, Server::Resource, &headers));
        assert_eq!(claims(&key.proof("GET", &resource, None, Server::Resource).unwrap())["nonce"], "resource-nonce");
        assert_eq!(
            claims(&key.proof("POST", &url, None, Server::Authorization).unwrap())["nonce"],
            "eyJ7S_zG.eyJH0-Z.HX4w-7v"
        );
        headers.insert(NONCE_HEADER, "has space".parse().unwrap());
        assert!(!remember_nonce(&url, Server::Authorization, &headers), "not an NQCHAR nonce");
    }

    #[test]
    fn dpop_is_used_only_where_es256_is_listed() {
        assert!(advertised(Some(&serde_json::json!(["ES256", "EdDSA"]))));
        assert!(!advertised(Some(&serde_json::json!(["EdDSA"]))));
        assert!(!advertised(Some(&serde_json::json!("ES256"))));
        assert!(!advertised(None));
    }
}
