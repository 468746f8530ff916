use jsonwebtoken::{EncodingKey, Header};

use super::*;

const CLIENT: &str = "gatehouse-desktop";

/// A signing key of the test's own, and the JWKS that publishes it under `kid`.
struct Signer {
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pkcs8 = rcgen::KeyPair::generate().unwrap().serialize_der();
        let key = EncodingKey::from_ec_der(&pkcs8);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Signer { key, jwk }
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk.clone()] }
    }
}

fn unsigned(claims: &serde_json::Value) -> String {
    let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!("{}.{}.sig", enc(br#"{"alg":"RS256"}"#), enc(claims.to_string().as_bytes()))
}

fn claims() -> serde_json::Value {
    serde_json::json!({"iss": "http://127.0.0.1:4470", "sub": "alice", "aud": CLIENT, "exp": 2_000, "iat": 900,
                       "nonce": "n-1", "name": "Alice"})
}

fn issuer() -> String {
    "http://127.0.0.1:4470".to_owned()
}

fn expected(issuer: &str) -> Expected<'_> {
    Expected {
        issuer: Some(issuer),
        issuer_template: None,
        issuer_aliases: &[],
        client_id: CLIENT,
        nonce: Some("n-1"),
        now: 1_000,
    }
}

fn error_of(result: Result<Account>) -> String {
    match result {
        Err(Error::BadResponse(message)) => message,
        other => panic!("expected a refused ID token, got {other:?}"),
    }
}

#[test]
fn accepts_a_token_signed_with_a_published_key() {
    let signer = Signer::new("k1");
    let issuer = issuer();
    let account = verify(&signer.sign(&claims()), Some(&signer.jwks()), &expected(&issuer)).unwrap();
    assert_eq!(account.subject.as_deref(), Some("alice"));
    assert_eq!(account.name.as_deref(), Some("Alice"));
}

#[test]
fn refuses_a_tampered_token() {
    let signer = Signer::new("k1");
    let token = signer.sign(&claims());
    let mut forged = claims();
    forged["sub"] = "mallory".into();
    let forged_payload = unsigned(&forged).split('.').nth(1).unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let issuer = issuer();
    let message = error_of(verify(&tampered, Some(&signer.jwks()), &expected(&issuer)));
    assert!(message.contains("signature"), "{message}");
}

#[test]
fn refuses_a_key_the_provider_does_not_publish() {
    let published = Signer::new("k1");
    let other = Signer::new("k2");
    let issuer = issuer();
    let message = error_of(verify(&other.sign(&claims()), Some(&published.jwks()), &expected(&issuer)));
    assert!(message.contains("doesn't publish"), "{message}");
    assert!(!knows_key(&published.jwks(), &other.sign(&claims())));
    assert!(knows_key(&published.jwks(), &published.sign(&claims())));
    // The same kid with another key: the signature gives it away.
    let impostor = Signer::new("k1");
    let message = error_of(verify(&impostor.sign(&claims()), Some(&published.jwks()), &expected(&issuer)));
    assert!(message.contains("signature"), "{message}");
}

#[test]
fn refuses_none_and_hmac() {
    let issuer = issuer();
    let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    for alg in ["none", "None", "NONE"] {
        let none = format!("{}.{}.", enc(&format!(r#"{{"alg":"{alg}"}}"#)), enc(&claims().to_string()));
        let message = error_of(verify(&none, Some(&Signer::new("k1").jwks()), &expected(&issuer)));
        assert!(message.contains("not signed"), "Gatehouse's own check, not a parse failure: {message}");
    }
    // HS256 keyed with a secret the JWKS publishes as an "oct" key: the algorithm alone is refused.
    let secret = EncodingKey::from_secret(b"the client secret, which a native app cannot keep");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("h1".into());
    let token = jsonwebtoken::encode(&header, &claims(), &secret).unwrap();
    let mut jwk = Jwk::from_encoding_key(&secret, Algorithm::HS256).unwrap();
    jwk.common.key_id = Some("h1".into());
    let message = error_of(verify(&token, Some(&JwkSet { keys: vec![jwk] }), &expected(&issuer)));
    assert!(message.contains("doesn't accept"), "{message}");
}

#[test]
fn without_a_kid_only_a_single_usable_key_is_used() {
    let signer = Signer::new("k1");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims(), &signer.key).unwrap();
    let issuer = issuer();
    assert!(verify(&token, Some(&signer.jwks()), &expected(&issuer)).is_ok());
    let two = JwkSet { keys: vec![signer.jwk.clone(), Signer::new("k2").jwk] };
    assert!(error_of(verify(&token, Some(&two), &expected(&issuer))).contains("doesn't publish"));
}

/// A correctly signed token is still refused when a claim is not this sign-in's: the signature says who
/// made it, the claims say what it is for.
#[test]
fn signed_tokens_are_held_to_the_claims() {
    let signer = Signer::new("k1");
    let issuer = issuer();
    for (field, value, says) in [
        ("nonce", serde_json::json!("other"), "nonce"),
        ("nonce", serde_json::Value::Null, "nonce"),
        ("iss", serde_json::json!("https://evil.example"), "another issuer"),
        ("aud", serde_json::json!(["someone-else"]), "another client"),
        ("exp", serde_json::json!(1), "expired"),
        ("iat", serde_json::json!(5_000), "future"),
    ] {
        let mut c = claims();
        c[field] = value;
        let message = error_of(verify(&signer.sign(&c), Some(&signer.jwks()), &expected(&issuer)));
        assert!(message.contains(says), "{field}: {message}");
    }
}

#[test]
fn without_keys_the_claims_are_still_checked() {
    let issuer = issuer();
    assert!(verify(&unsigned(&claims()), None, &expected(&issuer)).is_ok());
    for (field, value) in [
        ("nonce", serde_json::json!("other")),
        ("iss", serde_json::json!("https://evil.example")),
        ("aud", serde_json::json!(["someone-else"])),
        ("exp", serde_json::json!(1)),
    ] {
        let mut c = claims();
        c[field] = value;
        assert!(verify(&unsigned(&c), None, &expected(&issuer)).is_err(), "{field}");
    }
    assert!(verify("not-a-jwt", None, &expected(&issuer)).is_err());
    assert!(verify("a.%%%.c", None, &expected(&issuer)).is_err());
}

#[test]
fn exp_is_any_numeric_date() {
    let issuer = issuer();
    for exp in [serde_json::json!(u64::MAX), serde_json::json!(2000.5), serde_json::json!(1e30)] {
        let mut c = claims();
        c["exp"] = exp.clone();
        assert!(verify(&unsigned(&c), None, &expected(&issuer)).is_ok(), "exp {exp}");
    }
    for exp in [serde_json::json!(600.9), serde_json::json!(-1), serde_json::Value::Null, serde_json::json!("x")] {
        let mut c = claims();
        c["exp"] = exp.clone();
        assert!(verify(&unsigned(&c), None, &expected(&issuer)).is_err(), "exp {exp}");
    }
}

/// Microsoft's multi-tenant issuer: the token's `iss` must be the template with its own `tid`.
#[test]
fn a_tenant_template_issuer_is_checked_with_the_tokens_tid() {
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let expected = Expected {
        issuer: None,
        issuer_template: Some(template),
        issuer_aliases: &[],
        client_id: CLIENT,
        nonce: None,
        now: 1_000,
    };
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let mut c = claims();
    c["tid"] = tid.into();
    c["iss"] = format!("https://login.microsoftonline.com/{tid}/v2.0").into();
    assert!(verify(&unsigned(&c), None, &expected).is_ok());
    // Another tenant's issuer, no tid, or a tid that would bend the URL: refused.
    c["iss"] = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0".into();
    assert!(error_of(verify(&unsigned(&c), None, &expected)).contains("tenant"));
    let mut no_tid = claims();
    no_tid["iss"] = format!("https://login.microsoftonline.com/{tid}/v2.0").into();
    assert!(verify(&unsigned(&no_tid), None, &expected).is_err());
    let mut bent = claims();
    bent["tid"] = "x/../evil".into();
    bent["iss"] = "https://login.microsoftonline.com/x/../evil/v2.0".into();
    assert!(verify(&unsigned(&bent), None, &expected).is_err());
}

/// OIDC Core 1.0 with errata set 2, §3.1.3.7 steps 3 to 5: several audiences are fine as long as this client is
/// one of them, with or without `azp`; an `azp` that is present must name this client.
#[test]
fn several_audiences_are_fine_and_azp_when_present_names_this_client() {
    let issuer = issuer();
    let mut c = claims();
    c["aud"] = serde_json::json!([CLIENT, "https://api.example"]);
    assert!(verify(&unsigned(&c), None, &expected(&issuer)).is_ok());
    c["azp"] = CLIENT.into();
    assert!(verify(&unsigned(&c), None, &expected(&issuer)).is_ok());
    c["azp"] = "https://api.example".into();
    assert!(error_of(verify(&unsigned(&c), None, &expected(&issuer))).contains("azp"));
    let mut others = claims();
    others["aud"] = serde_json::json!(["https://api.example", "another-client"]);
    assert!(error_of(verify(&unsigned(&others), None, &expected(&issuer))).contains("another client"));
}

/// Google documents `iss` as either `https://accounts.google.com` or `accounts.google.com`: the preset lists the
/// second as an alias, and only a listed alias is accepted beside the issuer.
#[test]
fn a_presets_issuer_alias_is_accepted_and_nothing_else() {
    let issuer = "https://accounts.google.com".to_owned();
    let aliases = ["accounts.google.com".to_owned()];
    let expected = Expected { issuer_aliases: &aliases, ..expected(&issuer) };
    let mut c = claims();
    for iss in ["https://accounts.google.com", "accounts.google.com"] {
        c["iss"] = iss.into();
        assert!(verify(&unsigned(&c), None, &expected).is_ok(), "{iss}");
    }
    for iss in [
        "http://accounts.google.com",
        "accounts.google.com.evil.example",
        "ACCOUNTS.GOOGLE.COM",
        "",
        "https://accounts.google.com/",
    ] {
        c["iss"] = iss.into();
        assert!(error_of(verify(&unsigned(&c), None, &expected)).contains("issuer"), "{iss}");
    }
    // Without the preset's alias, the bare host is another issuer.
    c["iss"] = "accounts.google.com".into();
    assert!(error_of(verify(&unsigned(&c), None, &Expected { issuer_aliases: &[], ..expected })).contains("issuer"));
}

/// OIDC Core §2: `iat` is required.
#[test]
fn an_id_token_without_iat_is_refused() {
    let issuer = issuer();
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iat");
    assert!(error_of(verify(&unsigned(&c), None, &expected(&issuer))).contains("iat"));
}

/// RFC 7517 §4.2 and §4.4: the key that verifies must be published for signatures, and for the algorithm the
/// token names.
#[test]
fn a_key_published_for_encryption_or_another_algorithm_is_refused() {
    let signer = Signer::new("k1");
    let issuer = issuer();
    let token = signer.sign(&claims());
    let mut keys = signer.jwks();
    keys.keys[0].common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    assert!(error_of(verify(&token, Some(&keys), &expected(&issuer))).contains("encryption"));
    let mut keys = signer.jwks();
    keys.keys[0].common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES384);
    assert!(error_of(verify(&token, Some(&keys), &expected(&issuer))).contains("algorithm"));
    let mut keys = signer.jwks();
    keys.keys[0].common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    keys.keys[0].common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES256);
    assert!(verify(&token, Some(&keys), &expected(&issuer)).is_ok());
}

/// Claims of the wrong type are refused, and the message names the claim and what it should be, never the
/// provider's value: signed or not.
#[test]
fn a_claim_of_the_wrong_type_is_named() {
    let signer = Signer::new("k1");
    let issuer = issuer();
    for (claim, value, said) in [
        ("sub", serde_json::json!(248_289_761_001_u64), "\"sub\" claim of the wrong type (a string was expected)"),
        (
            "aud",
            serde_json::json!({"client": CLIENT}),
            "\"aud\" claim of the wrong type (a string or a list of strings",
        ),
        ("aud", serde_json::json!([7]), "\"aud\" claim of the wrong type"),
        ("iss", serde_json::json!(["http://127.0.0.1:4470"]), "\"iss\" claim of the wrong type"),
    ] {
        let mut c = claims();
        c[claim] = value;
        for token in [signer.sign(&c), unsigned(&c)] {
            let keys = token.ends_with(".sig").then_some(()).map_or(Some(signer.jwks()), |()| None);
            let message = error_of(verify(&token, keys.as_ref(), &expected(&issuer)));
            assert!(message.contains(said), "{claim}: {message}");
            assert!(!message.contains("248289761001") && !message.contains("client"), "{message}");
        }
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    assert!(error_of(verify(&signer.sign(&c), Some(&signer.jwks()), &expected(&issuer)))
        .contains("lacks the \"sub\" claim"));
}
