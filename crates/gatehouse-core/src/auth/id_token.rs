//! The ID token: its signature, checked against the provider's published keys, and the claims that say who
//! signed in, checked against the request that asked (OIDC Core §3.1.3.7).
//!
//! - JOSE is `jsonwebtoken`'s: parsing, the signature, and the key a JWK describes.
//! - Only asymmetric algorithms are accepted ([`ALGORITHMS`]): never `none`, and never HS*, whose key would be
//!   the client secret, which a native app cannot keep (RFC 8252 §8.5).
//! - The key is the JWKS entry named by the header's `kid` (or the only usable one when there is no `kid`). The
//!   caller refetches the JWKS once when the `kid` is unknown (OIDC Core §10.1.1: keys rotate).
//! - Without a JWKS (a profile with explicit endpoints and no `jwks_uri`), §3.1.3.7 step 6 lets TLS to the token
//!   endpoint stand in for the signature; the claims are checked all the same.
//! - The claims are checked here, the same way on both paths: `iss`, `aud`, `azp`, `exp` and `iat` with
//!   [`CLOCK_SKEW_SECS`] of leeway, and `nonce` in constant time (step 11), which ties the token to this sign-in.

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::tokens::{deserialize_seconds, Account};

/// Allowed clock difference with the provider, either way.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The signature algorithms accepted: asymmetric only.
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    /// NumericDates (RFC 7519 §2): any JSON number, fractions included.
    #[serde(default, deserialize_with = "deserialize_seconds")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "deserialize_seconds")]
    iat: Option<u64>,
    azp: Option<String>,
    nonce: Option<String>,
    /// Microsoft's tenant ID, for its multi-tenant issuer template.
    tid: Option<String>,
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
    /// The issuer identifier, when known, exactly as the metadata spells it.
    pub issuer: Option<&'a str>,
    /// Microsoft's multi-tenant issuer, with `{tenantid}` for the token's `tid`, when `issuer` is not known.
    pub issuer_template: Option<&'a str>,
    /// Other spellings of the issuer the provider is documented to use in `iss` (a preset's; Google's
    /// `accounts.google.com`). Only these are accepted beside `issuer`.
    pub issuer_aliases: &'a [String],
    /// This client's identifier.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: Option<&'a str>,
    /// The current time, in Unix seconds.
    pub now: u64,
}

fn bad(what: &str) -> Error {
    Error::BadResponse(format!("its ID token {what}"))
}

/// The `kid` in the token's header, if any: the caller refetches the JWKS when it doesn't know it.
///
/// # Errors
/// [`Error::BadResponse`] when the token has no readable header.
pub fn key_id(id_token: &str) -> Result<Option<String>> {
    Ok(jsonwebtoken::decode_header(id_token).map_err(|_| bad("is not a JWT"))?.kid)
}

/// Whether `keys` has the key `id_token` names.
pub fn knows_key(keys: &JwkSet, id_token: &str) -> bool {
    match key_id(id_token) {
        Ok(Some(kid)) => keys.find(&kid).is_some(),
        _ => true,
    }
}

/// Checks an ID token's signature against `keys` (or, with `None`, relies on TLS) and its claims against
/// `expected`, and returns the account it names.
///
/// # Errors
/// [`Error::BadResponse`] when the token is malformed, its signature does not verify, or a claim does not match.
pub fn verify(id_token: &str, keys: Option<&JwkSet>, expected: &Expected<'_>) -> Result<Account> {
    let claims: Claims = match keys {
        Some(keys) => verify_signature(id_token, keys)?,
        None => unverified_claims(id_token)?,
    };
    check_claims(claims, expected)
}

fn verify_signature(id_token: &str, keys: &JwkSet) -> Result<Claims> {
    // Where the provider publishes keys, an unsigned token is refused by name, before any library sees it (OIDC
    // Core §3.1.3.7 step 6 lets only TLS stand in, and only where there are no keys to check against).
    if header_alg(id_token).is_some_and(|alg| alg.eq_ignore_ascii_case("none")) {
        return Err(bad("is not signed (alg none)"));
    }
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| bad("is not a JWT"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(bad(&format!("is signed with {:?}, which Gatehouse doesn't accept", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None => only_key_for(keys, header.alg),
    }
    .ok_or_else(|| bad("is signed with a key the provider doesn't publish"))?;
    // RFC 7517 §4.2 and §4.4: a key published for encryption only, or for another algorithm, doesn't verify
    // signatures with this one.
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature) {
        return Err(bad("is signed with a key the provider publishes for encryption, not signatures"));
    }
    if jwk.common.key_algorithm.is_some_and(|a| a.to_string().parse::<Algorithm>().ok() != Some(header.alg)) {
        return Err(bad("is signed with an algorithm its key is not published for"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| bad("names a key Gatehouse can't use"))?;
    // The signature, and the algorithm the header names, only: the claims are checked below, where `exp` may
    // be any NumericDate.
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(id_token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => bad("has a signature that doesn't verify"),
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => bad("is signed with the wrong kind of key"),
        jsonwebtoken::errors::ErrorKind::Json(_) => payload(id_token).map_or_else(|e| e, |json| claims_problem(&json)),
        _ => bad("is not a valid JWT"),
    })?;
    Ok(data.claims)
}

/// The `alg` a JWT's header names, read without trusting anything else in it.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    value["alg"].as_str().map(str::to_owned)
}

/// The one key in `keys` that can check `alg`, when the header names none.
fn only_key_for(keys: &JwkSet, alg: Algorithm) -> Option<&Jwk> {
    let mut usable = keys.keys.iter().filter(|jwk| {
        let family_matches = DecodingKey::from_jwk(jwk).is_ok_and(|key| key.family() == alg.family());
        let alg_matches = jwk.common.key_algorithm.is_none_or(|a| a.to_string().parse::<Algorithm>().ok() == Some(alg));
        family_matches && alg_matches
    });
    let first = usable.next();
    if usable.next().is_some() {
        None
    } else {
        first
    }
}

/// The claims, for a provider that publishes no keys: TLS to the token endpoint vouches for them.
fn unverified_claims(id_token: &str) -> Result<Claims> {
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a JWT"));
    };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("is not base64url"))?;
    serde_json::from_slice(&json).map_err(|_| claims_problem(&json))
}

/// The decoded payload of a JWT.
fn payload(id_token: &str) -> Result<Vec<u8>> {
    let payload = id_token.split('.').nth(1).ok_or_else(|| bad("is not a JWT"))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("is not base64url"))
}

/// Why claims can't be read, naming the claim at fault and what it should be (OIDC Core §2), never the
/// provider's value: a numeric `sub`, an `aud` that is neither a string nor a list of strings.
fn claims_problem(json: &[u8]) -> Error {
    let Err(e) = serde_path_to_error::deserialize::<_, Claims>(&mut serde_json::Deserializer::from_slice(json)) else {
        return bad("lacks required claims");
    };
    let message = e.inner().to_string();
    if let Some(claim) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        return bad(&format!("lacks the {claim:?} claim"));
    }
    if e.inner().classify() != serde_json::error::Category::Data {
        return bad("is not valid JSON");
    }
    let path = e.path().to_string();
    let claim = path.split(['.', '[']).find(|part| !part.is_empty()).unwrap_or("a");
    let wanted = match claim {
        "aud" => "a string or a list of strings",
        "exp" | "iat" => "a number of seconds",
        _ => "a string",
    };
    bad(&format!(
        "has a {:?} claim of the wrong type ({wanted} was expected)",
        crate::error::clean_for_display(claim, 40)
    ))
}

fn check_claims(claims: Claims, expected: &Expected<'_>) -> Result<Account> {
    // §3.1.3.7 step 2: iss must be the issuer. For Microsoft's multi-tenant issuer, Microsoft's guidance: the
    // template with the token's own `tid`.
    if let Some(issuer) = expected.issuer {
        // Exactly the identifier (a simple string comparison), or an alias the preset documents.
        let alias = expected.issuer_aliases.contains(&claims.iss);
        if claims.iss != issuer && !alias {
            return Err(bad("names another issuer"));
        }
    } else if let Some(template) = expected.issuer_template {
        let tenant_issuer = claims.tid.as_deref().and_then(|tid| crate::presets::issuer_for_tenant(template, tid));
        if tenant_issuer.as_deref() != Some(claims.iss.as_str()) {
            return Err(bad("names another issuer than its tenant's"));
        }
    }
    // Step 3: aud must contain this client, alone or beside other audiences. Steps 4 and 5 as amended by OIDC
    // Core 1.0 errata set 2: azp is no longer required when there are several audiences, but when it is present
    // it must name this client.
    let audiences = match &claims.aud {
        Audience::One(aud) => std::slice::from_ref(aud),
        Audience::Many(auds) => auds.as_slice(),
    };
    if !audiences.iter().any(|a| a == expected.client_id) {
        return Err(bad("is for another client"));
    }
    if claims.azp.as_deref().is_some_and(|azp| azp != expected.client_id) {
        return Err(bad("was issued to another party (azp)"));
    }
    // Step 9: not expired. The provider's `exp` can be anything up to u64::MAX, so the sum saturates.
    let exp = claims.exp.ok_or_else(|| bad("has no expiry"))?;
    if exp.saturating_add(CLOCK_SKEW_SECS) < expected.now {
        return Err(bad("has expired"));
    }
    // Step 10: issued at a time that has come. OIDC Core §2: `iat` is REQUIRED.
    let iat = claims.iat.ok_or_else(|| bad("has no issue time (iat)"))?;
    if iat > expected.now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(bad("was issued in the future (check this computer's clock)"));
    }
    // Step 11: the nonce sent must come back, unchanged (compared in constant time).
    if let Some(sent) = expected.nonce {
        let matches = claims.nonce.as_deref().is_some_and(|got| bool::from(got.as_bytes().ct_eq(sent.as_bytes())));
        if !matches {
            return Err(bad("does not carry this sign-in's nonce"));
        }
    }
    let login = claims.preferred_username.clone();
    let name = claims.name.or(claims.preferred_username).or(claims.email);
    Ok(Account { subject: Some(claims.sub), name, login })
}

#[cfg(test)]
mod tests;
