use super::*;

const PROFILE: &str = "profile = \"work\"\nissuer = \"https://id.example.com\"\nclient_id = \"abc\"\n\
    redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n\
    scopes = [\"openid\", \"a:read\", \"a:write\"]\nresources = [\"https://a.example.com/\", \"https://B.example.com:443/api/../x\"]\n";

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn to(resource: Option<&str>, scopes: &str) -> Narrowing {
    Narrowing::new(resource.map(url), Some(scopes))
}

/// A JWT access token claiming `claims` (its signature is never looked at here).
fn jwt(claims: serde_json::Value) -> String {
    let part = |value: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.c2ln", part(serde_json::json!({"alg": "RS256", "typ": "at+jwt"})), part(claims))
}

fn answer(access_token: &str, scope: Option<&str>) -> TokenResponse {
    let mut value = serde_json::json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 300});
    if let Some(scope) = scope {
        value["scope"] = scope.into();
    }
    TokenResponse::from_json(value).unwrap()
}

/// RFC 8707 §2 and RFC 6749 §6: only a listed resource, compared as a URI (RFC 3986 §6.2.2), and only scopes
/// the profile signs in with, before any request.
#[test]
fn only_what_the_profile_lists_may_be_asked_for() {
    let config = Config::parse(PROFILE, "test").unwrap();
    assert_eq!(allowed(&config, &to(Some("https://a.example.com/"), "a:read")), Ok(()));
    assert_eq!(allowed(&config, &to(Some("https://b.example.com/x"), "")), Ok(()), "the same URI spelled otherwise");
    assert_eq!(allowed(&config, &to(None, "a:write a:read")), Ok(()));
    assert!(matches!(
        allowed(&config, &to(Some("https://c.example.com/"), "")),
        Err(NarrowError::NotListed { ref resource, .. }) if resource == "https://c.example.com/"
    ));
    assert!(matches!(
        allowed(&config, &to(Some("https://a.example.com/"), "a:read admin")),
        Err(NarrowError::ScopeNotAsked { ref scope, .. }) if scope == "admin"
    ));
}

#[test]
fn a_token_for_the_resource_asked_is_taken() {
    let a = to(Some("https://a.example.com/"), "a:read");
    let token = jwt(serde_json::json!({"aud": "https://a.example.com/", "scope": "a:read"}));
    assert_eq!(check(&answer(&token, Some("a:read")), &a, None, &[]), Ok(()));
    let listed = jwt(serde_json::json!({"aud": ["https://other.example/", "https://a.example.com/"]}));
    assert_eq!(check(&answer(&listed, None), &a, None, &[]), Ok(()), "one of several audiences, scope as asked");
}

/// A token for A that is also for B, another of the profile's resources, is the grant's broad token.
#[test]
fn a_token_for_the_resource_and_another_listed_one_is_refused() {
    let a = to(Some("https://a.example.com/"), "");
    let both = jwt(serde_json::json!({"aud": ["https://a.example.com/", "https://b.example.com/x"]}));
    let listed = [url("https://a.example.com/"), url("https://b.example.com/x")];
    assert!(matches!(check(&answer(&both, None), &a, None, &listed), Err(NarrowError::WrongAudience { .. })));
    assert_eq!(check(&answer(&both, None), &a, None, &listed[..1]), Ok(()), "an audience the profile doesn't list");
}

/// A provider that ignores `resource` answers with a token for someone else, or one that doesn't say.
#[test]
fn a_token_for_another_audience_or_none_said_is_refused() {
    let a = to(Some("https://a.example.com/"), "");
    let other = jwt(serde_json::json!({"aud": "https://b.example.com/x"}));
    assert!(matches!(check(&answer(&other, None), &a, None, &[]), Err(NarrowError::WrongAudience { .. })));
    let no_aud = jwt(serde_json::json!({"sub": "alice"}));
    assert!(matches!(check(&answer(&no_aud, None), &a, None, &[]), Err(NarrowError::AudienceUnknown { .. })));
    assert!(matches!(check(&answer("opaque-token", None), &a, None, &[]), Err(NarrowError::AudienceUnknown { .. })));
    assert!(matches!(check(&answer("a.b.c.d", None), &a, None, &[]), Err(NarrowError::AudienceUnknown { .. })));
}

/// An answer that states more scope than asked, in the response or in the token, is refused; one that states
/// none was granted what was asked (RFC 6749 §5.1).
#[test]
fn a_token_with_more_scope_than_asked_is_refused() {
    let read = to(None, "a:read");
    assert!(matches!(
        check(&answer("t", Some("a:read a:write")), &read, None, &[]),
        Err(NarrowError::TooBroad { ref got, .. }) if got == "a:read a:write"
    ));
    let claims = jwt(serde_json::json!({"scope": "a:read a:write"}));
    assert!(matches!(check(&answer(&claims, Some("a:read")), &read, None, &[]), Err(NarrowError::TooBroad { .. })));
    assert_eq!(check(&answer("t", None), &read, None, &[]), Ok(()));
    assert_eq!(check(&answer("t", Some("a:read")), &read, None, &[]), Ok(()));
}

/// The session's own token given back is the broad token, whatever the answer says.
#[test]
fn the_sessions_own_token_is_never_the_narrowed_one() {
    let own = AccessToken::new("own".into());
    assert!(matches!(
        check(&answer("own", Some("a:read")), &to(None, "a:read"), Some(&own), &[]),
        Err(NarrowError::TooBroad { .. })
    ));
}
