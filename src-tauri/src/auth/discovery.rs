//! Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0).
//!
//! Discovery happens the first time the endpoints are needed and is cached for the life of the process; a
//! failed attempt is not cached, so the next action tries again.
//!
//! The OpenID Connect document comes first. When it lacks an endpoint Gatehouse uses (revocation, userinfo),
//! the RFC 8414 document fills the gap: some servers list `revocation_endpoint` only there. Both must name the
//! issuer Gatehouse asked for (RFC 8414 §3.3); a second document that names another is ignored.

use serde::Deserialize;
use url::Url;

use crate::config::ProviderEndpoints;
use crate::error::{Error, Result};
use crate::http;

#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    device_authorization_endpoint: Option<String>,
    pushed_authorization_request_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    /// OpenID Connect Prompt Create §4.1; read leniently, since it only picks a prompt.
    #[serde(default)]
    prompt_values_supported: Option<serde_json::Value>,
    /// RFC 9449 §5.1; read leniently, since it only turns DPoP on.
    #[serde(default)]
    dpop_signing_alg_values_supported: Option<serde_json::Value>,
}

/// The well-known locations for `issuer`: OpenID Connect's, then RFC 8414's.
fn metadata_urls(issuer: &Url) -> Result<[Url; 2]> {
    let path = issuer.path().trim_end_matches('/');
    let at = |well_known: &str| -> Result<Url> {
        issuer.join(well_known).map_err(|e| Error::Internal(format!("metadata URL: {e}")))
    };
    Ok([
        // OIDC Discovery §4: the issuer, then /.well-known/openid-configuration.
        at(&format!("{path}/.well-known/openid-configuration"))?,
        // RFC 8414 §3.1: /.well-known/oauth-authorization-server inserted before the issuer's path.
        at(&format!("/.well-known/oauth-authorization-server{path}"))?,
    ])
}

/// Fetches and checks the provider's metadata.
///
/// # Errors
/// [`Error::Network`] when the provider is unreachable, [`Error::BadResponse`] when its metadata is missing,
/// malformed, or describes another issuer.
pub async fn discover(client: &reqwest::Client, issuer: &Url, tenant_issuer: bool) -> Result<ProviderEndpoints> {
    let [openid, oauth] = metadata_urls(issuer)?;
    let mut endpoints = match fetch(client, &openid).await? {
        Fetched::Document(metadata) => check(*metadata, issuer, tenant_issuer)?,
        Fetched::Missing(status) => {
            return match fetch(client, &oauth).await? {
                Fetched::Document(metadata) => {
                    tracing::debug!("endpoints from the RFC 8414 document");
                    check(*metadata, issuer, tenant_issuer)
                }
                Fetched::Missing(_) => Err(no_document(status)),
            };
        }
    };
    tracing::debug!("endpoints from the OpenID Connect discovery document");
    if endpoints.revocation.is_none() || endpoints.userinfo.is_none() || endpoints.jwks.is_none() {
        fill_gaps(&mut endpoints, client, &oauth, issuer, tenant_issuer).await;
    }
    Ok(endpoints)
}

/// Takes the endpoints `endpoints` lacks from the RFC 8414 document at `url`, if there is one for the same
/// issuer. Any failure here leaves `endpoints` as they were: they are complete enough to sign in.
async fn fill_gaps(
    endpoints: &mut ProviderEndpoints,
    client: &reqwest::Client,
    url: &Url,
    issuer: &Url,
    tenant_issuer: bool,
) {
    let extra = match fetch(client, url).await {
        Ok(Fetched::Document(metadata)) => check(*metadata, issuer, tenant_issuer),
        Ok(Fetched::Missing(_)) => return,
        Err(e) => Err(e),
    };
    match extra {
        Ok(extra) => {
            if endpoints.revocation.is_none() && extra.revocation.is_some() {
                tracing::debug!("revocation endpoint from the RFC 8414 document");
                endpoints.revocation = extra.revocation;
            }
            if endpoints.jwks.is_none() && extra.jwks.is_some() {
                tracing::debug!("JWK Set from the RFC 8414 document");
                endpoints.jwks = extra.jwks;
            }
            if endpoints.device_authorization.is_none() && extra.device_authorization.is_some() {
                tracing::debug!("device authorization endpoint from the RFC 8414 document");
                endpoints.device_authorization = extra.device_authorization;
            }
            if endpoints.pushed_authorization.is_none() && extra.pushed_authorization.is_some() {
                tracing::debug!("pushed authorization request endpoint from the RFC 8414 document");
                endpoints.pushed_authorization = extra.pushed_authorization;
            }
            if endpoints.userinfo.is_none() && extra.userinfo.is_some() {
                tracing::debug!("userinfo endpoint from the RFC 8414 document");
                endpoints.userinfo = extra.userinfo;
            }
            // RFC 9207 §3: if either document promises `iss`, a response without it is refused.
            endpoints.iss_parameter_supported |= extra.iss_parameter_supported;
        }
        Err(e) => tracing::warn!(kind = e.kind(), "ignoring the RFC 8414 document: {e}"),
    }
}

/// Fetches the provider's JWK Set (RFC 7517 §5), the keys its ID tokens are signed with.
///
/// # Errors
/// [`Error::Network`] when unreachable, [`Error::BadResponse`] when the answer is not a JWK Set.
pub async fn signing_keys(client: &reqwest::Client, url: &Url) -> Result<jsonwebtoken::jwk::JwkSet> {
    let response = get(client, url).await?;
    if !response.status().is_success() {
        return Err(Error::BadResponse(format!("its signing keys are missing (HTTP {})", response.status().as_u16())));
    }
    let body = http::read_body(response).await?;
    // A key of a type Gatehouse doesn't know is skipped, not fatal: only the key that signed a token matters.
    #[derive(serde::Deserialize)]
    struct Keys {
        keys: Vec<serde_json::Value>,
    }
    let keys: Keys = serde_json::from_slice(&body).map_err(|e| {
        Error::BadResponse(format!("its signing keys are not a JWK Set (line {}, column {})", e.line(), e.column()))
    })?;
    let keys = keys.keys.into_iter().filter_map(|key| serde_json::from_value(key).ok()).collect();
    Ok(jsonwebtoken::jwk::JwkSet { keys })
}

/// GETs a JSON document of the provider's.
async fn get(client: &reqwest::Client, url: &Url) -> Result<reqwest::Response> {
    client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Error::Network(http::describe_transport_error(&e)))
}

/// A metadata document, or the status that said there is none.
enum Fetched {
    Document(Box<Metadata>),
    Missing(reqwest::StatusCode),
}

async fn fetch(client: &reqwest::Client, url: &Url) -> Result<Fetched> {
    let response = get(client, url).await?;
    if !response.status().is_success() {
        return Ok(Fetched::Missing(response.status()));
    }
    Ok(Fetched::Document(Box::new(parse(&http::read_body(response).await?)?)))
}

fn no_document(status: reqwest::StatusCode) -> Error {
    Error::BadResponse(format!("it has no discovery document (HTTP {})", status.as_u16()))
}

/// Parses a metadata document. The error names the place, never the provider's text: serde's messages quote
/// the offending value, which could be anything, of any length.
fn parse(body: &[u8]) -> Result<Metadata> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "lacks a required field or has one of the wrong type",
            _ => "is not valid JSON",
        };
        Error::BadResponse(format!("its metadata {what} (line {}, column {})", e.line(), e.column()))
    })
}

fn check(metadata: Metadata, issuer: &Url, tenant_issuer: bool) -> Result<ProviderEndpoints> {
    // RFC 8414 §3.3 and OIDC Discovery §4.3: the metadata's issuer must be the one we asked, or an attacker's
    // metadata could redirect the whole flow (mix-up, RFC 9700 §4.4). Microsoft's one exception (a preset
    // quirk): its metadata names the tenant by GUID or as a `{tenantid}` template, on its own host.
    let same = metadata.issuer == issuer.as_str() || metadata.issuer == issuer.as_str().trim_end_matches('/');
    let (checked_issuer, issuer_template) = match (same, tenant_issuer) {
        (true, _) => (Some(issuer.clone()), None),
        (false, true) => match crate::presets::tenant_issuer(&metadata.issuer) {
            Some(template) if template.contains("{tenantid}") => (None, Some(template.to_owned())),
            Some(exact) => (Url::parse(exact).ok(), None),
            None => (None, None),
        },
        (false, false) => (None, None),
    };
    if checked_issuer.is_none() && issuer_template.is_none() {
        return Err(Error::BadResponse(format!(
            "its metadata names a different issuer ({})",
            crate::error::clean_for_display(&metadata.issuer, 100)
        )));
    }
    // RFC 9700 §2.1.1: PKCE with S256. A provider that lists its methods must list S256.
    if let Some(methods) = &metadata.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(Error::BadResponse("it does not support PKCE with S256".into()));
        }
    }
    let endpoint = |name: &str, value: &str| -> Result<Url> {
        let url = Url::parse(value).map_err(|_| Error::BadResponse(format!("its {name} is not a URL")))?;
        let secure = url.scheme() == "https"
            || (url.scheme() == "http" && issuer.scheme() == "http" && url.host() == issuer.host());
        if !secure {
            return Err(Error::BadResponse(format!("its {name} does not use https")));
        }
        Ok(url)
    };
    let optional = |name: &str, value: &Option<String>| value.as_deref().map(|v| endpoint(name, v)).transpose();
    Ok(ProviderEndpoints {
        issuer: checked_issuer,
        issuer_template,
        authorization: endpoint("authorization endpoint", &metadata.authorization_endpoint)?,
        token: endpoint("token endpoint", &metadata.token_endpoint)?,
        revocation: optional("revocation endpoint", &metadata.revocation_endpoint)?,
        userinfo: optional("userinfo endpoint", &metadata.userinfo_endpoint)?,
        jwks: optional("JWK Set", &metadata.jwks_uri)?,
        device_authorization: optional("device authorization endpoint", &metadata.device_authorization_endpoint)?,
        pushed_authorization: optional(
            "pushed authorization request endpoint",
            &metadata.pushed_authorization_request_endpoint,
        )?,
        iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
        select_account_supported: metadata
            .prompt_values_supported
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .is_some_and(|values| values.iter().any(|v| v == "select_account")),
        dpop_supported: crate::auth::dpop::advertised(metadata.dpop_signing_alg_values_supported.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(issuer: &str) -> Metadata {
        Metadata {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/auth"),
            token_endpoint: format!("{issuer}/token"),
            revocation_endpoint: Some(format!("{issuer}/token/revocation")),
            userinfo_endpoint: None,
            jwks_uri: None,
            device_authorization_endpoint: Some(format!("{issuer}/device/auth")),
            pushed_authorization_request_endpoint: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            authorization_response_iss_parameter_supported: true,
            prompt_values_supported: None,
            dpop_signing_alg_values_supported: None,
        }
    }

    #[test]
    fn select_account_is_used_only_where_the_metadata_lists_it() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let with = |value: serde_json::Value| {
            let mut doc = metadata("https://id.example.com");
            doc.prompt_values_supported = Some(value);
            check(doc, &issuer, false).unwrap().select_account_supported
        };
        assert!(with(serde_json::json!(["none", "login", "select_account"])));
        assert!(!with(serde_json::json!(["none", "login", "consent"])));
        // A malformed list only means "not listed": it never stops a sign-in.
        assert!(!with(serde_json::json!("select_account")));
        assert!(!check(metadata("https://id.example.com"), &issuer, false).unwrap().select_account_supported);
        let parsed = parse(br#"{"issuer":"https://id.example.com","authorization_endpoint":"https://id.example.com/a","token_endpoint":"https://id.example.com/t","prompt_values_supported":7}"#);
        assert!(!check(parsed.unwrap(), &issuer, false).unwrap().select_account_supported);
    }

    #[test]
    fn the_device_authorization_endpoint_is_read_and_must_use_tls() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let endpoints = check(metadata("https://id.example.com"), &issuer, false).unwrap();
        assert_eq!(endpoints.device_authorization.unwrap().path(), "/device/auth");
        let mut plain = metadata("https://id.example.com");
        plain.device_authorization_endpoint = Some("http://id.example.com/device/auth".into());
        assert!(check(plain, &issuer, false).is_err(), "RFC 8628 §3.1 with RFC 6749 §3.1: TLS");
    }

    #[test]
    fn well_known_urls_follow_both_specs() {
        let urls = metadata_urls(&Url::parse("https://id.example.com/tenant").unwrap()).unwrap();
        assert_eq!(urls[0].as_str(), "https://id.example.com/tenant/.well-known/openid-configuration");
        assert_eq!(urls[1].as_str(), "https://id.example.com/.well-known/oauth-authorization-server/tenant");
        let root = metadata_urls(&Url::parse("http://127.0.0.1:4470").unwrap()).unwrap();
        assert_eq!(root[0].as_str(), "http://127.0.0.1:4470/.well-known/openid-configuration");
    }

    #[test]
    fn accepts_matching_metadata() {
        let issuer = Url::parse("http://127.0.0.1:4470").unwrap();
        let endpoints = check(metadata("http://127.0.0.1:4470"), &issuer, false).unwrap();
        assert_eq!(endpoints.token.as_str(), "http://127.0.0.1:4470/token");
        assert!(endpoints.iss_parameter_supported);
    }

    #[test]
    fn parse_errors_quote_nothing_from_the_provider() {
        let hostile = format!(
            r#"{{"issuer":"https://id.example.com","authorization_endpoint":"https://id.example.com/a","token_endpoint":"https://id.example.com/t","authorization_response_iss_parameter_supported":"{}\u0007"}}"#,
            "x".repeat(10_000)
        );
        let Err(Error::BadResponse(message)) = parse(hostile.as_bytes()) else { panic!("expected an error") };
        assert!(!message.contains("xxx") && message.len() < 120, "{message}");
        assert!(message.contains("wrong type") && message.contains("line 1"), "{message}");
        let Err(Error::BadResponse(message)) = parse(b"<html>not json</html>") else { panic!("expected an error") };
        assert!(message.contains("not valid JSON") && !message.contains("html"), "{message}");
    }

    /// Microsoft's quirk, only for the Microsoft preset: its metadata names a `{tenantid}` template or the
    /// tenant's GUID on its own host, never another host.
    #[test]
    fn accepts_microsofts_tenant_issuers_only_when_told() {
        let common = Url::parse("https://login.microsoftonline.com/common/v2.0").unwrap();
        let template = metadata("https://login.microsoftonline.com/{tenantid}/v2.0");
        assert!(check(template, &common, false).is_err());
        let endpoints = check(metadata("https://login.microsoftonline.com/{tenantid}/v2.0"), &common, true).unwrap();
        assert_eq!(endpoints.issuer, None);
        assert_eq!(endpoints.issuer_template.as_deref(), Some("https://login.microsoftonline.com/{tenantid}/v2.0"));
        let guid = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        let by_domain = Url::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0").unwrap();
        let endpoints = check(metadata(guid), &by_domain, true).unwrap();
        assert_eq!(endpoints.issuer.as_ref().map(Url::as_str), Some(guid));
        assert!(check(metadata("https://evil.example/{tenantid}/v2.0"), &common, true).is_err());
    }

    #[test]
    fn rejects_another_issuer() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        assert!(matches!(check(metadata("https://evil.example"), &issuer, false), Err(Error::BadResponse(_))));
    }

    #[test]
    fn rejects_providers_without_s256_or_tls() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let mut plain_only = metadata("https://id.example.com");
        plain_only.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(check(plain_only, &issuer, false).is_err());
        let mut http_token = metadata("https://id.example.com");
        http_token.token_endpoint = "http://id.example.com/token".into();
        assert!(check(http_token, &issuer, false).is_err());
    }

    /// Generated metadata documents (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn endpoint() -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![
                24 => Just(serde_json::json!("https://id.example.com/x")),
                1 => Just(serde_json::json!("http://id.example.com/x")),
                1 => Just(serde_json::json!("https://elsewhere.example/x")),
                1 => Just(serde_json::json!("javascript:alert(1)")),
                1 => Just(serde_json::json!(42)),
                1 => Just(serde_json::Value::Null),
                1 => any::<String>().prop_map(serde_json::Value::from),
            ]
        }

        fn document() -> impl Strategy<Value = serde_json::Value> {
            let fields = crate::config::tests::ENDPOINT_FIELDS;
            let issuer = prop_oneof![
                4 => Just(serde_json::json!("https://id.example.com")),
                1 => Just(serde_json::json!("https://id.example.com/")),
                1 => Just(serde_json::json!("https://evil.example")),
                1 => any::<String>().prop_map(serde_json::Value::from),
            ];
            let methods = proptest::option::of(proptest::collection::vec(
                proptest::sample::select(vec!["S256", "plain", "s256"]),
                0..3,
            ));
            (issuer, proptest::collection::vec(proptest::option::weighted(0.9, endpoint()), 7), methods, any::<bool>())
                .prop_map(move |(issuer, endpoints, methods, iss)| {
                    let mut doc = serde_json::json!({ "issuer": issuer });
                    for (name, value) in fields.iter().zip(endpoints) {
                        if let Some(value) = value {
                            doc[*name] = value;
                        }
                    }
                    if let Some(methods) = methods {
                        doc["code_challenge_methods_supported"] = serde_json::json!(methods);
                    }
                    doc["authorization_response_iss_parameter_supported"] = serde_json::json!(iss);
                    doc
                })
        }

        proptest! {
            #![proptest_config(crate::proptest_config())]

            #[test]
            fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = parse(&body);
            }

            /// What it accepts is the issuer asked for (RFC 8414 §3.3), PKCE S256 where methods are listed
            /// (RFC 9700 §2.1.1), and TLS for every endpoint.
            #[test]
            fn accepted_metadata_keeps_the_rules(doc in document()) {
                let issuer = Url::parse("https://id.example.com").unwrap();
                let Ok(metadata) = parse(doc.to_string().as_bytes()) else { return Ok(()) };
                let Ok(endpoints) = check(metadata, &issuer, false) else { return Ok(()) };
                prop_assert_eq!(endpoints.issuer.as_ref(), Some(&issuer));
                prop_assert!(doc["issuer"] == "https://id.example.com" || doc["issuer"] == "https://id.example.com/");
                if let Some(methods) = doc["code_challenge_methods_supported"].as_array() {
                    prop_assert!(methods.iter().any(|m| m == "S256"));
                }
                let all = [Some(&endpoints.authorization), Some(&endpoints.token), endpoints.revocation.as_ref(),
                    endpoints.userinfo.as_ref(), endpoints.jwks.as_ref(), endpoints.device_authorization.as_ref(),
                    endpoints.pushed_authorization.as_ref()];
                for url in all.into_iter().flatten() {
                    prop_assert_eq!(url.scheme(), "https");
                }
                prop_assert_eq!(endpoints.iss_parameter_supported, doc["authorization_response_iss_parameter_supported"] == true);
            }
        }

        /// The property above means something only if many generated documents are accepted.
        #[test]
        fn the_generator_reaches_accepted_metadata() {
            use proptest::strategy::ValueTree;
            let issuer = Url::parse("https://id.example.com").unwrap();
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strategy = document();
            let accepted = (0..2000)
                .filter(|_| {
                    let doc = strategy.new_tree(&mut runner).unwrap().current();
                    parse(doc.to_string().as_bytes()).is_ok_and(|m| check(m, &issuer, false).is_ok())
                })
                .count();
            assert!(accepted >= 200, "only {accepted} of 2000 generated documents were accepted");
        }
    }
}
