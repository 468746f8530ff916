//! The claims Gatehouse takes from an ID token: who signed in, checked against the request that asked.
//!
//! The ID token comes straight from the token endpoint over TLS (or loopback), so OIDC Core §3.1.3.7 step 6
//! lets the client rely on TLS server authentication instead of the signature. The claim checks of §3.1.3.7
//! still apply, and the `nonce` check (step 11) is what ties the token to this sign-in.

use base64::Engine;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use crate::error::{Error, Result};
use crate::tokens::{deserialize_seconds, Account};

/// Allowed clock difference with the provider.
const CLOCK_SKEW_SECS: u64 = 300;

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    /// A NumericDate (RFC 7519 §2): any JSON number, fractions included.
    #[serde(default, deserialize_with = "deserialize_seconds")]
    exp: Option<u64>,
    nonce: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// What the ID token must match.
#[derive(Debug)]
pub struct Expected<'a> {
    /// The issuer, when known.
    pub issuer: Option<&'a Url>,
    /// This client's identifier.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: Option<&'a str>,
    /// The current time, in Unix seconds.
    pub now: u64,
}

/// Checks an ID token's claims and returns the account it names.
///
/// # Errors
/// [`Error::BadResponse`] when the token is malformed or any claim does not match.
pub fn verify(id_token: &str, expected: &Expected<'_>) -> Result<Account> {
    let bad = |what: &str| Error::BadResponse(format!("its ID token {what}"));
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a JWT"));
    };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| bad("lacks required claims"))?;

    // §3.1.3.7 step 2: iss must be the issuer.
    if let Some(issuer) = expected.issuer {
        if claims.iss != issuer.as_str() && claims.iss != issuer.as_str().trim_end_matches('/') {
            return Err(bad("names another issuer"));
        }
    }
    // Step 3: aud must contain this client.
    let audience_ok = match &claims.aud {
        Audience::One(aud) => aud == expected.client_id,
        Audience::Many(auds) => auds.iter().any(|a| a == expected.client_id),
    };
    if !audience_ok {
        return Err(bad("is for another client"));
    }
    // Step 9: not expired. The provider's `exp` can be anything up to u64::MAX, so the sum saturates.
    let exp = claims.exp.ok_or_else(|| bad("has no expiry"))?;
    if exp.saturating_add(CLOCK_SKEW_SECS) < expected.now {
        return Err(bad("has expired"));
    }
    // Step 11: the nonce sent must come back, unchanged (compared in constant time).
    if let Some(sent) = expected.nonce {
        let matches = claims.nonce.as_deref().is_some_and(|got| bool::from(got.as_bytes().ct_eq(sent.as_bytes())));
        if !matches {
            return Err(bad("does not carry this sign-in's nonce"));
        }
    }
    let name = claims.name.or(claims.preferred_username).or(claims.email);
    Ok(Account { subject: Some(claims.sub), name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value) -> String {
        let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.sig", enc(br#"{"alg":"RS256"}"#), enc(claims.to_string().as_bytes()))
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"iss": "http://127.0.0.1:4470", "sub": "alice", "aud": "gatehouse-desktop", "exp": 2_000, "nonce": "n-1", "name": "Alice"})
    }

    fn expected(issuer: &Url) -> Expected<'_> {
        Expected { issuer: Some(issuer), client_id: "gatehouse-desktop", nonce: Some("n-1"), now: 1_000 }
    }

    #[test]
    fn accepts_a_matching_token() {
        let issuer = Url::parse("http://127.0.0.1:4470").unwrap();
        let account = verify(&token(claims()), &expected(&issuer)).unwrap();
        assert_eq!(account.subject.as_deref(), Some("alice"));
        assert_eq!(account.name.as_deref(), Some("Alice"));
    }

    #[test]
    fn rejects_mismatches() {
        let issuer = Url::parse("http://127.0.0.1:4470").unwrap();
        for (field, value) in [
            ("nonce", serde_json::json!("other")),
            ("nonce", serde_json::Value::Null),
            ("iss", serde_json::json!("https://evil.example")),
            ("aud", serde_json::json!(["someone-else"])),
            ("exp", serde_json::json!(1)),
        ] {
            let mut c = claims();
            c[field] = value;
            assert!(verify(&token(c), &expected(&issuer)).is_err(), "{field}");
        }
        assert!(verify("not-a-jwt", &expected(&issuer)).is_err());
        assert!(verify("a.%%%.c", &expected(&issuer)).is_err());
    }

    #[test]
    fn exp_is_any_numeric_date() {
        let issuer = Url::parse("http://127.0.0.1:4470").unwrap();
        for exp in [serde_json::json!(u64::MAX), serde_json::json!(2000.5), serde_json::json!(1e30)] {
            let mut c = claims();
            c["exp"] = exp.clone();
            assert!(verify(&token(c), &expected(&issuer)).is_ok(), "exp {exp}");
        }
        for exp in [serde_json::json!(600.9), serde_json::json!(-1), serde_json::Value::Null, serde_json::json!("x")] {
            let mut c = claims();
            c["exp"] = exp.clone();
            assert!(verify(&token(c), &expected(&issuer)).is_err(), "exp {exp}");
        }
    }

    #[test]
    fn audience_may_be_a_list() {
        let issuer = Url::parse("http://127.0.0.1:4470").unwrap();
        let mut c = claims();
        c["aud"] = serde_json::json!(["api", "gatehouse-desktop"]);
        assert!(verify(&token(c), &expected(&issuer)).is_ok());
    }
}
