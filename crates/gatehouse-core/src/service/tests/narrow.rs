//! Narrowed tokens against a scripted provider: what is asked, what is kept, and what is refused, including from
//! providers that narrow badly (they refuse `resource`, ignore it, answer with more scope, or list token exchange
//! and then refuse it). Never the session's own token instead.

use base64::Engine as _;

use super::*;

const A: &str = "https://a.example.com/";

/// [`EXPLICIT`]'s provider, with resource A and scopes to narrow to.
fn narrowing_profile() -> String {
    EXPLICIT.replace(
        "scopes = [\"profile\"]",
        "scopes = [\"profile\", \"a:read\", \"a:write\"]\nresources = [\"https://a.example.com/\"]",
    )
}

/// A provider found by discovery that lists token exchange (RFC 8693) among its grant types.
fn discovered_profile() -> String {
    format!("{PROFILE}scopes = [\"profile\", \"a:read\"]\nresources = [\"https://a.example.com/\"]\n")
}

fn metadata() -> serde_json::Value {
    serde_json::json!({
        "issuer": "https://id.example.com",
        "authorization_endpoint": "https://id.example.com/authorize",
        "token_endpoint": "https://id.example.com/token",
        "revocation_endpoint": "https://id.example.com/revoke",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"],
    })
}

/// A JWT access token for `audience` with `scope` (never verified here: only its claims are read).
fn jwt(audience: &str, scope: &str) -> String {
    let part = |value: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let claims = serde_json::json!({"aud": audience, "scope": scope, "sub": "alice"});
    format!("{}.{}.c2ln", part(serde_json::json!({"alg": "RS256", "typ": "at+jwt"})), part(claims))
}

fn to_a(scopes: &str) -> Narrowing {
    Narrowing::new(Some(Url::parse(A).unwrap()), Some(scopes))
}

async fn stored(profile: &str, toml: &str) -> StoredSession {
    let session = session_for(profile, toml, 3600);
    keychain().save(profile, &session).await.unwrap();
    session
}

async fn refresh_token_of(profile: &str) -> Option<String> {
    keychain().load(profile).await.unwrap().and_then(|s| s.refresh_token).map(|t| t.secret().clone())
}

/// RFC 8707 §2.2: a refresh grant with `resource` and the narrower `scope`; the token is kept in the entry with
/// the rotated refresh token, and the next request for it is served from there without asking again.
#[tokio::test]
async fn a_token_for_a_resource_comes_from_a_refresh_grant_and_is_kept() {
    let token = jwt(A, "a:read");
    stored("nar-ok", &narrowing_profile()).await;
    let (http, provider) = Scripted::new()
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 300, "refresh_token": "r2", "scope": "a:read"}),
        )
        .start();
    let (service, _) = service_with("nar-ok", &narrowing_profile(), http, &MemoryLocks::default());
    let got = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await.unwrap();
    assert_eq!((got.token.secret(), got.expires_at, got.renewed), (&token, Some(NOW + 300), true));
    let sent = provider.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body,
        "grant_type=refresh_token&refresh_token=r1&scope=a%3Aread&client_id=abc&resource=https%3A%2F%2Fa.example.com%2F"
    );
    assert_eq!(refresh_token_of("nar-ok").await.as_deref(), Some("r2"));
    let kept = keychain().load("nar-ok").await.unwrap().unwrap();
    assert_eq!(kept.narrowed.len(), 1);
    assert_eq!(kept.access_token.as_ref().map(|t| t.secret().as_str()), Some("a1"), "the session's own token stays");
    let again = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await.unwrap();
    assert_eq!((again.token.secret(), again.renewed), (&token, false));
    assert_eq!(provider.requests().len(), 1, "served from the entry");

    // Signing out revokes the narrowed token as well as the grant (RFC 7009).
    let (http, provider) = Scripted::new()
        .on("POST /revoke", 200, serde_json::json!({}))
        .on("POST /revoke", 200, serde_json::json!({}))
        .start();
    let (service, _) = service_with("nar-ok", &narrowing_profile(), http, &MemoryLocks::default());
    service.restore().await;
    service.sign_out().await.unwrap();
    let revoked: Vec<String> =
        provider.requests().into_iter().filter(|r| r.path == "/revoke").map(|r| r.body).collect();
    assert!(revoked.iter().any(|b| b.contains(&format!("token={token}&token_type_hint=access_token"))), "{revoked:?}");
    assert!(revoked.iter().any(|b| b.contains("token=r2&token_type_hint=refresh_token")), "{revoked:?}");
    assert!(keychain().load("nar-ok").await.unwrap().is_none());
}

/// A resource the profile doesn't list is refused before any request, and so is a scope it doesn't sign in with.
#[tokio::test]
async fn what_the_profile_does_not_list_makes_no_request() {
    stored("nar-unlisted", &narrowing_profile()).await;
    let (http, provider) = Scripted::new().start();
    let (service, _) = service_with("nar-unlisted", &narrowing_profile(), http, &MemoryLocks::default());
    let other = Narrowing::new(Some(Url::parse("https://c.example.com/").unwrap()), None);
    let refused = service.narrowed_token(&other, Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(Error::NotNarrowed(NarrowError::NotListed { .. }))), "{refused:?}");
    let refused = service.narrowed_token(&to_a("admin"), Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(Error::NotNarrowed(NarrowError::ScopeNotAsked { .. }))), "{refused:?}");
    assert_eq!(provider.requests(), []);
}

/// A provider that ignores `resource` answers with a token that doesn't say it is for A: it isn't handed out
/// (and is revoked), but the refresh token that came with it is kept, since the one sent is spent.
#[tokio::test]
async fn a_provider_that_ignores_the_resource_gives_nothing_but_its_rotation_is_kept() {
    stored("nar-ignored", &narrowing_profile()).await;
    let (http, provider) = Scripted::new()
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": "broad", "token_type": "Bearer", "refresh_token": "r2"}),
        )
        .on("POST /revoke", 200, serde_json::json!({}))
        .start();
    let (service, _) = service_with("nar-ignored", &narrowing_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a(""), Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(Error::NotNarrowed(NarrowError::AudienceUnknown { .. }))), "{refused:?}");
    assert_eq!(refresh_token_of("nar-ignored").await.as_deref(), Some("r2"));
    let kept = keychain().load("nar-ignored").await.unwrap().unwrap();
    assert!(kept.narrowed.is_empty());
    assert!(provider.requests().iter().any(|r| r.path == "/revoke" && r.body.contains("token=broad")));
}

/// An answer with more scope than asked is not handed out; its rotated refresh token is kept.
#[tokio::test]
async fn an_answer_with_more_scope_than_asked_is_refused() {
    stored("nar-broad", &narrowing_profile()).await;
    let (http, _) = Scripted::new()
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": jwt(A, "a:read a:write"), "token_type": "Bearer", "refresh_token": "r2", "scope": "a:read a:write"}),
        )
        .on("POST /revoke", 200, serde_json::json!({}))
        .start();
    let (service, _) = service_with("nar-broad", &narrowing_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(Error::NotNarrowed(NarrowError::TooBroad { .. }))), "{refused:?}");
    assert_eq!(refresh_token_of("nar-broad").await.as_deref(), Some("r2"));
}

/// A provider that refuses `resource` and lists no token exchange: the error names the provider's refusal, and
/// the session is as it was.
#[tokio::test]
async fn a_refused_resource_with_no_exchange_says_what_the_provider_lacks() {
    let before = stored("nar-refused", &narrowing_profile()).await;
    let (http, provider) =
        Scripted::new().on("POST /token", 400, serde_json::json!({"error": "invalid_target"})).start();
    let (service, _) = service_with("nar-refused", &narrowing_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await;
    assert!(
        matches!(refused, Err(Error::NotNarrowed(NarrowError::Refused { ref code })) if code == "invalid_target"),
        "{refused:?}"
    );
    assert_eq!(provider.requests().len(), 1);
    assert!(decide::same_tokens(&keychain().load("nar-refused").await.unwrap().unwrap(), &before));
    assert_eq!(service.view().phase, Phase::SignedIn);
}

/// Where the refresh grant is refused and the provider lists token exchange, the session's access token is
/// exchanged (RFC 8693 §2.1) for one for A.
#[tokio::test]
async fn a_refused_refresh_falls_back_to_token_exchange() {
    let token = jwt(A, "a:read");
    stored("nar-exchange", &discovered_profile()).await;
    let (http, provider) = Scripted::new()
        .on("GET /.well-known/openid-configuration", 200, metadata())
        .on("POST /token", 400, serde_json::json!({"error": "invalid_target"}))
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 300}),
        )
        .start();
    let (service, _) = service_with("nar-exchange", &discovered_profile(), http, &MemoryLocks::default());
    let got = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(got.token.secret(), &token);
    let exchange = provider.requests().into_iter().filter(|r| r.path == "/token").nth(1).unwrap();
    assert!(
        exchange
            .body
            .starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a1&"),
        "{}",
        exchange.body
    );
}

/// A provider that lists token exchange and then refuses it, or issues something other than an access token.
#[tokio::test]
async fn a_listed_exchange_that_fails_says_so() {
    stored("nar-exchange-refused", &discovered_profile()).await;
    let (http, _) = Scripted::new()
        .on("GET /.well-known/openid-configuration", 200, metadata())
        .on("POST /token", 400, serde_json::json!({"error": "invalid_target"}))
        .on("POST /token", 400, serde_json::json!({"error": "unauthorized_client"}))
        .start();
    let (service, _) = service_with("nar-exchange-refused", &discovered_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await;
    assert!(
        matches!(refused, Err(Error::NotNarrowed(NarrowError::ExchangeRefused { ref code })) if code == "unauthorized_client"),
        "{refused:?}"
    );

    stored("nar-exchange-other", &discovered_profile()).await;
    let (http, _) = Scripted::new()
        .on("GET /.well-known/openid-configuration", 200, metadata())
        .on("POST /token", 400, serde_json::json!({"error": "invalid_target"}))
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": "x", "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token", "token_type": "N_A"}),
        )
        .start();
    let (service, _) = service_with("nar-exchange-other", &discovered_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a("a:read"), Duration::from_secs(60)).await;
    assert!(matches!(refused, Err(Error::NotNarrowed(NarrowError::NotAnAccessToken { .. }))), "{refused:?}");
}

/// A need longer than the provider's tokens live (the session's `lifetime`) is said at once: no renewal could
/// meet it, so no grant is spent on it.
#[tokio::test]
async fn a_need_the_provider_s_tokens_cannot_meet_spends_no_grant() {
    stored("nar-too-long", &narrowing_profile()).await;
    let (http, provider) = Scripted::new().start();
    let (service, _) = service_with("nar-too-long", &narrowing_profile(), http, &MemoryLocks::default());
    let refused = service.narrowed_token(&to_a("a:read"), Duration::from_secs(7200)).await;
    assert!(matches!(refused, Err(Error::LifetimeTooShort { lifetime: 3600, wanted: 7200 })), "{refused:?}");
    assert_eq!(provider.requests(), []);
}
