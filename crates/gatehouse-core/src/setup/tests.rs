//! Tests of [`super`].

use super::registration::{about_metadata, trusted_management_uri};
use super::*;

fn draft(preset: &str) -> Draft {
    Draft { preset: preset.into(), ..Draft::default() }
}

/// A refusal about the metadata sent is retried once with less, whatever its 4xx status; one that refuses
/// any registration is not.
#[test]
fn a_refusal_of_the_metadata_is_told_from_a_refusal_of_registration() {
    assert!(about_metadata(400, None, None));
    assert!(about_metadata(
        403,
        Some("insufficient_scope"),
        Some("Policy 'Allowed Client Scopes' rejected request to client-registration service.")
    ));
    assert!(about_metadata(403, Some("invalid_client_metadata"), None));
    assert!(about_metadata(422, None, Some("grant_types not allowed")));
    assert!(!about_metadata(401, Some("invalid_token"), Some("An initial access token is required")));
    assert!(!about_metadata(
        403,
        Some("insufficient_scope"),
        Some("Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.")
    ));
}

/// Secrets never show in `Debug` output (a log line or a panic message).
#[test]
fn debug_output_leaves_secrets_out() {
    let typed = Draft { client_secret: "typed-s3cret".into(), ..draft("github") };
    let registered = Registered {
        client_id: "app".into(),
        client_secret: Some("issued-s3cret".into()),
        auth_method: Some("client_secret_basic".into()),
        management: Some(Registration {
            client_uri: Url::parse("https://id.example/reg/app").unwrap(),
            access_token: "rat-s3cret".into(),
        }),
    };
    let printed = format!("{typed:?} {registered:?}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(printed.contains("has_secret: true"), "{printed}");
}

/// The registration access token goes only to the registration endpoint's own origin, securely (RFC 7592).
#[test]
fn a_management_uri_elsewhere_is_not_trusted() {
    let endpoint = Url::parse("https://id.example/register").unwrap();
    let trusted = |uri: &str| trusted_management_uri(&Url::parse(uri).unwrap(), &[&endpoint]);
    assert!(trusted("https://id.example/register/app-1"));
    assert!(!trusted("https://other.example/register/app-1"), "another host");
    assert!(!trusted("https://id.example:8443/register/app-1"), "another port");
    assert!(!trusted("http://id.example/register/app-1"), "cleartext");
    assert!(!trusted("https://u:p@id.example/register/app-1"), "credentials in the URI");
    let local = Url::parse("http://127.0.0.1:4470/reg").unwrap();
    assert!(trusted_management_uri(&Url::parse("http://127.0.0.1:4470/reg/x").unwrap(), &[&local]));
    assert!(!trusted_management_uri(&Url::parse("http://reg.localhost:4470/x").unwrap(), &[&local]));
    // The issuer's origin is the provider's too.
    let issuer = Url::parse("https://login.example/").unwrap();
    assert!(trusted_management_uri(&Url::parse("https://login.example/reg/1").unwrap(), &[&endpoint, &issuer]));
}

#[test]
fn profile_names_come_from_the_preset_or_the_issuers_host_and_never_clash() {
    assert_eq!(profile_name(&draft("google"), &[]), "google");
    assert_eq!(profile_name(&draft("google"), &["google".into()]), "google-2");
    let other = Draft { issuer: "https://login.example.com/realms/x".into(), ..draft("other") };
    assert_eq!(profile_name(&other, &[]), "login");
    let ip = Draft { issuer: "http://127.0.0.1:4470".into(), ..draft("other") };
    assert_eq!(profile_name(&ip, &["provider".into()]), "provider-2");
    assert_eq!(profile_name(&Draft { issuer: "not a url".into(), ..draft("other") }, &[]), "provider");
}

#[test]
fn a_preset_draft_is_the_preset_and_what_the_person_gave() {
    let keycloak = Draft {
        client_id: " desktop ".into(),
        domain: "id.example.com".into(),
        realm: "staff".into(),
        ..draft("keycloak")
    };
    let text = profile_text("keycloak", &keycloak.fields("desktop", &[], None, None));
    let config = Config::parse(&text, "t").unwrap();
    assert_eq!(config.client_id.as_str(), "desktop");
    assert!(
        matches!(config.endpoints, Endpoints::Discover { ref issuer } if issuer.url.as_str() == "https://id.example.com/realms/staff")
    );
    assert!(!text.contains("tenant"), "{text}");
}

#[tokio::test]
async fn a_draft_the_config_would_refuse_is_a_problem_on_its_field() {
    let (http, provider) = crate::http::scripted::Scripted::new().start();
    let findings = check(&draft("keycloak"), "keycloak", &http, &[]).await;
    assert!(provider.requests().is_empty(), "refused before any request");
    assert!(!findings.usable);
    let at: Vec<_> = findings.items.iter().map(|i| i.field).collect();
    assert_eq!(at, [Some(field::DOMAIN), Some(field::REALM), Some(field::CLIENT_ID)], "{:?}", findings.items);
    let plain = Draft { issuer: "http://id.example.com".into(), ..draft("other") };
    let findings = check(&plain, "id", &http, &[]).await;
    assert!(!findings.usable);
    assert_eq!(findings.items[0].fix.as_deref(), Some("https://id.example.com"), "{:?}", findings.items);
    let unknown = check(&draft("facebook"), "x", &http, &[]).await;
    assert!(unknown.items[0].text.contains("not a provider Gatehouse knows"), "{:?}", unknown.items);
    let tenant = Draft { tenant: "a b".into(), client_id: "app".into(), ..draft("microsoft") };
    let findings = check(&tenant, "m", &http, &[]).await;
    assert_eq!(findings.items[0].field, Some(field::TENANT), "{:?}", findings.items);
    let scopes = Draft { issuer: "https://id.example.com".into(), scopes: "openid \"x\"".into(), ..draft("other") };
    let findings = check(&scopes, "s", &http, &[]).await;
    assert_eq!(findings.items[0].field, Some(field::SCOPES), "{:?}", findings.items);
}

#[test]
fn a_provider_by_issuer_is_named_by_its_host_and_port() {
    let name = |u: &str| default_name(Some(&Url::parse(u).unwrap()));
    assert_eq!(name("http://127.0.0.1:8000/o").as_deref(), Some("127.0.0.1:8000"));
    assert_eq!(name("https://id.example.com/realms/x").as_deref(), Some("id.example.com"));
}
