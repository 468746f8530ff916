//! Tests of [`super`].

use oauth2::TokenResponse as _;

use super::*;

fn parse(json: &str) -> TokenResponse {
    serde_json::from_str(json).unwrap()
}

#[test]
fn basic_credentials_are_form_encoded_first() {
    // RFC 6749 §2.3.1 (and its errata): each part is form-urlencoded, then joined with ':' and base64ed.
    let (id, secret) = basic_credentials("my client:1", "s3cr+t/=%x");
    assert_eq!(id, "my+client%3A1");
    assert_eq!(secret, "s3cr%2Bt%2F%3D%25x");
    assert_eq!(basic_credentials("plain", "abcDEF123-._~").1, "abcDEF123-._%7E");
}

#[test]
fn reads_a_standard_token_response() {
    let tokens = parse(
        r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"openid profile","id_token":"a.b.c"}"#,
    );
    assert_eq!(tokens.access_token().secret(), "at");
    assert_eq!(tokens.token_type(), &BasicTokenType::Bearer);
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
    assert_eq!(tokens.refresh_token().map(|t| t.secret().as_str()), Some("rt"));
    assert_eq!(tokens.scopes().map(|s| s.len()), Some(2));
    assert_eq!(tokens.id_token(), Some("a.b.c"));
    let debug = format!("{tokens:?}");
    assert!(!debug.contains("a.b.c") && !debug.contains("\"at\"") && !debug.contains("\"rt\""), "{debug}");
}

#[test]
fn expires_in_may_be_any_json_number() {
    let with = |value: &str| {
        parse(&format!(r#"{{"access_token":"at","token_type":"bearer","expires_in":{value}}}"#)).expires_in()
    };
    assert_eq!(with("3599.7"), Some(Duration::from_secs(3599)));
    assert_eq!(with("\"3600\""), Some(Duration::from_secs(3600)));
    assert_eq!(with("1e300"), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(with("18446744073709551616"), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(with("null"), None);
}

/// GoToSocial and VK send 0 for "does not expire": 0, a negative number, or no number at all is read as no
/// stated lifetime, so that the token is used until the resource refuses it, never ended on arrival.
#[test]
fn a_lifetime_of_zero_or_nonsense_is_no_stated_lifetime() {
    for value in ["0", "-5", "0.4", "\"0\"", "\"soon\"", "true", "{}", "[]"] {
        let body = format!(r#"{{"access_token":"at","token_type":"bearer","expires_in":{value}}}"#);
        assert_eq!(parse(&body).expires_in(), None, "{value}");
    }
}

/// Twitch sends `scope` as a JSON array. `scope` is only shown: a string or an array is read, anything else
/// is "not stated" (RFC 6749 §5.1: as requested), and `""` is no scope at all.
#[test]
fn scope_is_read_from_a_string_an_array_or_not_at_all() {
    let scopes = |value: &str| {
        let body = format!(r#"{{"access_token":"at","token_type":"bearer","scope":{value}}}"#);
        parse(&body).scopes().map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(scopes(r#""openid  profile""#), Some(vec!["openid".into(), "profile".into()]));
    assert_eq!(scopes(r#"["user:read:email","chat:read"]"#), Some(vec!["user:read:email".into(), "chat:read".into()]));
    assert_eq!(scopes(r#"["a b", 7, null]"#), Some(vec!["a".into(), "b".into()]));
    assert_eq!(scopes(r#""""#), Some(vec![]));
    assert_eq!(scopes("42"), None);
    assert_eq!(scopes(r#"{"read":true}"#), None);
    assert_eq!(scopes("null"), None);
}

/// RFC 9449 §5: a Bearer answer to a proven request keeps the key when a refresh token came with it (bound to
/// the key for a public client), and sends the access token as Bearer.
#[test]
fn a_bearer_answer_to_a_proven_request_keeps_the_key_for_its_refresh_token() {
    let with = |body: &str, proven| parse(body).key_binding(proven);
    assert_eq!(with(r#"{"access_token":"a","token_type":"DPoP","refresh_token":"r"}"#, true), (true, false));
    assert_eq!(with(r#"{"access_token":"a","token_type":"Bearer","refresh_token":"r"}"#, true), (true, true));
    assert_eq!(with(r#"{"access_token":"a","token_type":"Bearer"}"#, true), (false, false));
    assert_eq!(with(r#"{"access_token":"a","refresh_token":"r"}"#, true), (true, false));
    assert_eq!(with(r#"{"access_token":"a","token_type":"Bearer","refresh_token":"r"}"#, false), (false, false));
}

/// Rancher and LinkedIn send no `token_type`: a Bearer token, unless the request proved a DPoP key (RFC 9449
/// §5), when it is taken as bound. Case never matters (RFC 6749 §5.1).
#[test]
fn a_missing_token_type_is_bearer_unless_the_request_was_proven() {
    let missing = parse(r#"{"access_token":"at"}"#);
    assert_eq!(missing.token_type(), &BasicTokenType::Bearer);
    assert!(missing.check_usable(false).is_ok() && missing.check_usable(true).is_ok());
    assert!(!missing.is_dpop_bound(false));
    assert!(missing.is_dpop_bound(true));
    let bearer = parse(r#"{"access_token":"at","token_type":"BEARER"}"#);
    assert!(!bearer.is_dpop_bound(true));
    let dpop = parse(r#"{"access_token":"at","token_type":"dpop"}"#);
    assert!(dpop.is_dpop_bound(true) && dpop.check_usable(true).is_ok());
    assert!(dpop.check_usable(false).is_err(), "a DPoP token for a request that proved no key is unusable");
    // RFC 6749 §7.1: a type Gatehouse doesn't understand is not used.
    let Err(Error::BadResponse(message)) = parse(r#"{"access_token":"at","token_type":"mac"}"#).check_usable(false)
    else {
        panic!("a MAC token must be refused")
    };
    assert!(message.contains("token_type") && message.contains("mac"), "{message}");
}

/// Every parse error names the field at fault, and quotes nothing the provider sent.
#[test]
fn parse_errors_name_the_field() {
    for (body, field) in [
        (r#"{"token_type":"bearer"}"#, "access_token is missing"),
        (r#"{"access_token":42,"token_type":"bearer"}"#, "access_token is not a string"),
        (r#"{"access_token":"","token_type":"bearer"}"#, "access_token is empty"),
        (r#"{"access_token":"at","refresh_token":["x"]}"#, "refresh_token is not a string"),
        (r#"{"access_token":"at","id_token":{"secret":"x"}}"#, "id_token is not a string"),
        (r#"["at"]"#, "not a JSON object"),
    ] {
        let error = serde_json::from_str::<TokenResponse>(body).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains(field), "{body}: {error}");
        assert!(!error.contains("secret"), "{body}: {error}");
    }
}

/// What an unreadable token response still issued is found, so that it can be revoked.
#[test]
fn the_tokens_of_an_unusable_answer_are_found_for_revocation() {
    let issued =
        |body: &str| issued_in(body.as_bytes()).map(|t| (t.type_hint().map(str::to_owned), t.secret().to_owned()));
    assert_eq!(
        issued(r#"{"access_token":"at","refresh_token":"rt","expires_in":"soon","token_type":7}"#),
        Some((Some("refresh_token".into()), "rt".into()))
    );
    assert_eq!(issued(r#"{"access_token":"at","refresh_token":42}"#), Some((Some("access_token".into()), "at".into())));
    assert_eq!(issued(r#"{"error":"invalid_grant"}"#), None);
    assert_eq!(issued("not json"), None);
}

/// RFC 8628 §3.5: never poll faster than the provider allows, not even after a network error, when
/// `oauth2` asks for a shorter wait; and an absurd interval or lifetime is clamped, not overflowed.
/// Poll errors outside RFC 8628's list that say the person refused end as a declined sign-in.
#[test]
fn a_refusal_in_other_words_is_a_declined_sign_in() {
    for code in ["authorization_declined", "user_denied", "Access_Denied_By_User", "request_rejected"] {
        assert!(matches!(device_poll_ending(code), Some(Error::AccessDenied)), "{code}");
    }
    assert!(matches!(device_poll_ending("code_expired"), Some(Error::SignInTimedOut)));
    assert!(device_poll_ending("invalid_client").is_none());
    assert!(device_poll_ending("unauthorized_client").is_none());
}

#[test]
fn device_polling_never_goes_faster_than_allowed() {
    let pace = Pace::default();
    assert_eq!(pace.next(Duration::from_secs(30)), Duration::from_secs(30));
    // oauth2's wait after a network error: at most 10 s.
    assert_eq!(pace.next(Duration::from_secs(10)), Duration::from_secs(30));
    assert_eq!(pace.next(Duration::from_secs(35)), Duration::from_secs(35), "slow_down");
    assert_eq!(pace.next(Duration::from_secs(u64::MAX / 2)), Duration::from_secs(MAX_POLL_INTERVAL + 60));

    let read = |interval: &str, expires_in: &str| {
        let body = format!(
            r#"{{"device_code":"d","user_code":"U","verification_uri":"https://id.example.com/device","expires_in":{expires_in},"interval":{interval}}}"#
        );
        let details = within_reason(serde_json::from_str::<DeviceAuthorization>(&body).unwrap());
        (details.interval().as_secs(), details.expires_in().as_secs())
    };
    assert_eq!(read("5", "600"), (5, 600));
    assert_eq!(read("18446744073709551615", "18446744073709551615"), (MAX_POLL_INTERVAL, MAX_DEVICE_CODE_LIFE));
    assert_eq!(read("0", "0"), (1, 1));
    // oauth2 adds five seconds on slow_down: with the clamped interval, that can't overflow.
    assert!(Duration::from_secs(read("18446744073709551615", "600").0).checked_add(Duration::from_secs(5)).is_some());
}

/// OIDC Core §11: `offline_access` goes with `prompt=consent` (the profile's default), and Add account's
/// prompt joins it.
#[test]
fn the_profiles_prompt_goes_with_the_authorization_request() {
    let config = Config::parse(
        r#"issuer = "https://id.example.com"
           client_id = "abc"
           scopes = ["openid", "offline_access"]
           redirect_uri = "com.example.gatehouse:/callback"
           resource_url = "https://api.example.com/me""#,
        "test",
    )
    .unwrap();
    let endpoints = ProviderEndpoints {
        issuer: None,
        authorization: Url::parse("https://id.example.com/authorize?tenant=x").unwrap(),
        token: Url::parse("https://id.example.com/token").unwrap(),
        revocation: None,
        userinfo: None,
        jwks: None,
        device_authorization: None,
        pushed_authorization: None,
        iss_parameter_supported: false,
        select_account_supported: false,
        dpop_supported: false,
        issuer_template: None,
        issuer_id: None,
        auth_methods: None,
        advertised: crate::config::Advertised::default(),
    };
    let oauth = client(&config, &endpoints, &config.redirect_uri).unwrap();
    let secrets = AttemptSecrets::generate(&config.scopes);
    let prompt = |extra| {
        let url = authorization_url(&oauth, &config, &secrets, extra);
        url.query_pairs().find(|(k, _)| k == "prompt").map(|(_, v)| v.into_owned())
    };
    assert_eq!(prompt(None).as_deref(), Some("consent"));
    assert_eq!(prompt(Some("select_account")).as_deref(), Some("consent select_account"));

    // A pushed request's front channel (RFC 9126 §4, OIDC Core §6.2): the endpoint's own query, the client,
    // what OpenID wants beside a request_uri, and nothing private.
    let front = front_channel(&config, &endpoints, "urn:ietf:params:oauth:request_uri:abc");
    let pairs: Vec<(String, String)> = front.query_pairs().into_owned().collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["tenant", "client_id", "response_type", "scope", "request_uri"]);
    assert!(pairs.contains(&("scope".into(), "openid".into())), "openid alone, not the other scopes: {pairs:?}");
    assert!(pairs.contains(&("response_type".into(), "code".into())));
    let oauth_only = Config { scopes: vec!["api".into()], ..config.clone() };
    let front = front_channel(&oauth_only, &endpoints, "urn:x");
    let names: Vec<String> = front.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, ["tenant", "client_id", "request_uri"], "OAuth alone: RFC 9126 §4's two");
}

/// Generated token responses (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// An `expires_in` as providers send it, and what it must be read as: `Some(Some(n))` seconds, `Some(None)`
    /// for absent, `None` for a value to refuse.
    fn expires_in() -> impl Strategy<Value = (serde_json::Value, Option<u64>)> {
        // Whole seconds; nothing positive means no stated lifetime.
        let read = |x: f64| Some(x.max(0.0) as u64).filter(|n| *n > 0);
        prop_oneof![
            any::<u64>().prop_map(|n| (serde_json::json!(n), Some(n).filter(|n| *n > 0))),
            any::<i64>().prop_map(move |n| (serde_json::json!(n), Some(n.max(0) as u64).filter(|n| *n > 0))),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
                .prop_map(move |x| (serde_json::json!(x), read(x))),
            (-1e6f64..1e12).prop_map(move |x| (serde_json::json!(x.to_string()), read(x))),
            "[a-z ]{1,10}".prop_map(|text| (serde_json::json!(text), None)),
            Just((serde_json::Value::Null, None)),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = serde_json::from_slice::<TokenResponse>(&body);
        }

        #[test]
        fn reads_any_expires_in_a_provider_sends((value, expected) in expires_in()) {
            let body = serde_json::json!({ "access_token": "at", "token_type": "Bearer", "expires_in": value });
            // `expires_in` only tunes when to renew: no value of it ever refuses a sign-in.
            let tokens = serde_json::from_value::<TokenResponse>(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(tokens.expires_in().map(|d| d.as_secs()), expected);
        }
    }
}
