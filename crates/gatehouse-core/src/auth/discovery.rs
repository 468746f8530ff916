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

use crate::config::{Advertised, Issuer, ProviderEndpoints};
use crate::error::{Error, Result};
use crate::http::{self, header, Answer, HeaderMap, Http, Method, StatusCode};

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
    /// RFC 8414 §2; read leniently, since it only picks how the client authenticates.
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<serde_json::Value>,
    /// RFC 8414 §2; read leniently, as the rest below, since they only inform setting a provider up.
    #[serde(default)]
    registration_endpoint: Option<serde_json::Value>,
    #[serde(default)]
    grant_types_supported: Option<serde_json::Value>,
    #[serde(default)]
    scopes_supported: Option<serde_json::Value>,
}

/// The strings of a JSON array, when `value` is one.
fn strings(value: Option<&serde_json::Value>) -> Option<Vec<String>> {
    let list = value?.as_array()?;
    Some(list.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).collect())
}

/// Where providers publish their metadata for `issuer`, in the order Gatehouse asks: the OpenID Connect
/// document, then the RFC 8414 one, each first where its own specification puts it and then where real servers
/// also put it. For an issuer without a path, each pair is one URL.
///
/// 1. OIDC Discovery §4.1: the issuer, then `/.well-known/openid-configuration` (Keycloak, Auth0, Google,
///    Microsoft, Okta, GitLab).
/// 2. RFC 8414 §5's form of the same document: `/.well-known/openid-configuration` inserted before the
///    issuer's path (servers built on RFC 8414 that publish the OpenID document there).
/// 3. RFC 8414 §3.1: `/.well-known/oauth-authorization-server` inserted before the issuer's path.
/// 4. The issuer, then `/.well-known/oauth-authorization-server` (Okta's custom authorization servers, and
///    other servers that append it as OIDC Discovery appends its own).
fn metadata_urls(issuer: &Url) -> Result<MetadataUrls> {
    let path = issuer.path().trim_end_matches('/');
    let at = |well_known: &str| -> Result<Url> {
        issuer.join(well_known).map_err(|e| Error::Internal(format!("metadata URL: {e}")))
    };
    let pair = |name: &str| -> Result<Vec<Url>> {
        let appended = at(&format!("{path}/.well-known/{name}"))?;
        let inserted = at(&format!("/.well-known/{name}{path}"))?;
        Ok(if appended == inserted { vec![appended] } else { vec![appended, inserted] })
    };
    let mut oauth = pair("oauth-authorization-server")?;
    // RFC 8414's own place first.
    oauth.reverse();
    Ok(MetadataUrls { openid: pair("openid-configuration")?, oauth })
}

/// The places [`metadata_urls`] lists.
#[derive(Debug)]
struct MetadataUrls {
    /// The OpenID Connect document's.
    openid: Vec<Url>,
    /// The RFC 8414 document's.
    oauth: Vec<Url>,
}

/// Fetches and checks the provider's metadata.
///
/// # Errors
/// [`Error::Network`] when the provider is unreachable, [`Error::BadResponse`] when its metadata is missing,
/// malformed, or describes another issuer.
pub async fn discover(http: &Http, issuer: &Issuer, tenant_issuer: bool) -> Result<ProviderEndpoints> {
    let urls = metadata_urls(&issuer.url)?;
    let mut endpoints = match first_document(http, &urls.openid, issuer, tenant_issuer).await? {
        Ok(endpoints) => {
            tracing::debug!("endpoints from the OpenID Connect discovery document");
            endpoints
        }
        Err(openid_error) => {
            return match first_document(http, &urls.oauth, issuer, tenant_issuer).await? {
                Ok(endpoints) => {
                    tracing::debug!("endpoints from the RFC 8414 document");
                    Ok(endpoints)
                }
                // What a document that was there said beats "not found".
                Err(oauth_error) => Err(if openid_error.found { openid_error } else { oauth_error }.error),
            };
        }
    };
    if endpoints.revocation.is_none() || endpoints.userinfo.is_none() || endpoints.jwks.is_none() {
        match first_document(http, &urls.oauth, issuer, tenant_issuer).await {
            Ok(Ok(extra)) => fill_gaps(&mut endpoints, extra),
            Ok(Err(_)) => {}
            Err(e) => tracing::warn!(kind = e.kind(), "ignoring the RFC 8414 document: {e}"),
        }
    }
    Ok(endpoints)
}

/// Why no usable document was found at a list of places.
struct NotFound {
    error: Error,
    /// Whether some place had a document (that was unusable), rather than none.
    found: bool,
}

/// The first usable metadata document among `urls`. A place with no document, or with something that is not
/// metadata (an HTML page, as single-page apps serve for any path), is skipped; the outer error is a network
/// failure, which no other place on the same host would escape.
async fn first_document(
    http: &Http,
    urls: &[Url],
    issuer: &Issuer,
    tenant_issuer: bool,
) -> Result<std::result::Result<ProviderEndpoints, NotFound>> {
    let mut why: Option<NotFound> = None;
    for url in urls {
        let failure = match fetch(http, url).await? {
            Fetched::Document(metadata) => match check(*metadata, issuer, tenant_issuer) {
                Ok(endpoints) => return Ok(Ok(endpoints)),
                Err(e) => NotFound { error: e, found: true },
            },
            Fetched::Unreadable(e) => NotFound { error: e, found: true },
            Fetched::Missing(status) => NotFound { error: no_document(status), found: false },
        };
        if why.as_ref().is_none_or(|w| !w.found) {
            why = Some(failure);
        }
    }
    Ok(Err(why.unwrap_or(NotFound { error: no_document(StatusCode::NOT_FOUND), found: false })))
}

/// Takes the endpoints `endpoints` lacks from `extra`, the RFC 8414 document for the same issuer: some servers
/// list revocation or userinfo only there.
fn fill_gaps(endpoints: &mut ProviderEndpoints, extra: ProviderEndpoints) {
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
    if endpoints.advertised.registration.is_none() {
        endpoints.advertised.registration = extra.advertised.registration;
    }
    // RFC 9207 §3: if either document promises `iss`, a response without it is refused.
    endpoints.iss_parameter_supported |= extra.iss_parameter_supported;
}

/// Fetches the provider's JWK Set (RFC 7517 §5), the keys its ID tokens are signed with.
///
/// # Errors
/// [`Error::Network`] when unreachable, [`Error::BadResponse`] when the answer is not a JWK Set.
pub async fn signing_keys(http: &Http, url: &Url) -> Result<jsonwebtoken::jwk::JwkSet> {
    let answer = get(http, url).await?;
    if !answer.status.is_success() {
        return Err(Error::BadResponse(format!("its signing keys are missing (HTTP {})", answer.status.as_u16())));
    }
    let body = answer.body?;
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
async fn get(http: &Http, url: &Url) -> Result<Answer> {
    http.send(http::with_body(http::request(Method::GET, url), Vec::new())?).await
}

/// A metadata document, or the status that said there is none.
enum Fetched {
    Document(Box<Metadata>),
    /// Something that is not a metadata document.
    Unreadable(Error),
    Missing(StatusCode),
}

/// How many redirects a metadata request follows (a provider that moved its well-known documents, or a
/// load balancer that adds a slash): a few, never a loop.
const MAX_METADATA_REDIRECTS: usize = 5;

/// Fetches `url`, following a few HTTP redirects. Only metadata is fetched this way: what decides whether the
/// document is the provider's is its `issuer` (RFC 8414 §3.3, OIDC Discovery §4.3), checked afterwards as for a
/// document fetched directly. A redirect never leaves https for http (the document chooses every endpoint), nor
/// goes anywhere the config itself would refuse (http other than to a loopback IP).
async fn fetch(http: &Http, url: &Url) -> Result<Fetched> {
    let mut url = url.clone();
    let mut answer = get(http, &url).await?;
    for _ in 0..MAX_METADATA_REDIRECTS {
        if !answer.status.is_redirection() {
            break;
        }
        let Some(next) = redirect_target(&url, &answer.headers) else { break };
        let next = next?;
        url = next;
        answer = get(http, &url).await?;
    }
    if answer.status.is_redirection() {
        return Err(Error::BadResponse(format!(
            "its metadata is behind more than {MAX_METADATA_REDIRECTS} redirects, or a redirect with no address"
        )));
    }
    if !answer.status.is_success() {
        return Ok(Fetched::Missing(answer.status));
    }
    Ok(match parse(&answer.body?) {
        Ok(metadata) => Fetched::Document(Box::new(metadata)),
        Err(e) => Fetched::Unreadable(e),
    })
}

/// Where a redirect answer to a request for `from` points, if it says: `Some(Err)` for a place metadata may not
/// come from.
fn redirect_target(from: &Url, headers: &HeaderMap) -> Option<Result<Url>> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let refused = |why: &str| Some(Err(Error::BadResponse(format!("its metadata redirects {why}"))));
    let Ok(next) = from.join(location) else { return refused("to an address that is not a URL") };
    let secure = next.scheme() == "https";
    let loopback = next.scheme() == "http" && http::is_loopback(&next);
    if from.scheme() == "https" && !secure {
        return refused("from https to an insecure address");
    }
    if !(secure || loopback) || !next.username().is_empty() || next.password().is_some() {
        return refused("to an address Gatehouse won't use (only https, or http to a loopback address)");
    }
    Some(Ok(next))
}

fn no_document(status: StatusCode) -> Error {
    Error::BadResponse(format!("it has no discovery document (HTTP {})", status.as_u16()))
}

/// Parses a metadata document. The error names the field at fault and the place, never the provider's text:
/// serde's messages quote the offending value, which could be anything, of any length.
fn parse(body: &[u8]) -> Result<Metadata> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
        let inner = e.inner();
        let what = match inner.classify() {
            serde_json::error::Category::Data => {
                // The path names one of our fields (or an index), never the provider's text; a missing field is
                // named by serde's message, which quotes only our own field name.
                let path = e.path().to_string();
                let field = if path == "." {
                    inner.to_string().split('`').nth(1).unwrap_or("a field").to_owned()
                } else {
                    path
                };
                format!(
                    "lacks a required field or has one of the wrong type: {}",
                    crate::error::clean_for_display(&field, 60)
                )
            }
            _ => "is not valid JSON".to_owned(),
        };
        Error::BadResponse(format!("its metadata {what} (line {}, column {})", inner.line(), inner.column()))
    })
}

fn check(metadata: Metadata, issuer: &Issuer, tenant_issuer: bool) -> Result<ProviderEndpoints> {
    // RFC 8414 §3.3 and OIDC Discovery §4.3: the metadata's issuer must be the one we asked, or an attacker's
    // metadata could redirect the whole flow (mix-up, RFC 9700 §4.4). Compared with the issuer as the profile
    // writes it, never as a URL library re-serializes it (which drops a default port and adds a `/`); a trailing
    // slash written in the profile and not in the metadata (or the other way round) is the one difference
    // allowed, and from then on the metadata's spelling is the issuer (`iss`, the ID token). Microsoft's one
    // exception (a preset quirk): its metadata names the tenant by GUID or as a `{tenantid}` template, on its
    // own host.
    let same = metadata.issuer == issuer.written
        || metadata.issuer.trim_end_matches('/') == issuer.written.trim_end_matches('/');
    let (checked_issuer, issuer_template) = match (same, tenant_issuer) {
        (true, _) => (Some(issuer.url.clone()), None),
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
            || (url.scheme() == "http" && issuer.url.scheme() == "http" && url.host() == issuer.url.host());
        if !secure {
            return Err(Error::BadResponse(format!("its {name} does not use https")));
        }
        Ok(url)
    };
    let optional = |name: &str, value: &Option<String>| value.as_deref().map(|v| endpoint(name, v)).transpose();
    Ok(ProviderEndpoints {
        issuer_id: checked_issuer.as_ref().map(|_| metadata.issuer.clone()),
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
        dpop_supported: crate::dpop::advertised(metadata.dpop_signing_alg_values_supported.as_ref()),
        auth_methods: strings(metadata.token_endpoint_auth_methods_supported.as_ref()),
        advertised: Advertised {
            // RFC 7591 §3: registration sends the client's metadata, and gets its identifier, over TLS.
            registration: match metadata.registration_endpoint.as_ref().and_then(serde_json::Value::as_str) {
                Some(url) => Some(endpoint("registration endpoint", url)?),
                None => None,
            },
            grant_types: strings(metadata.grant_types_supported.as_ref()),
            scopes: strings(metadata.scopes_supported.as_ref()),
            pkce_methods: metadata.code_challenge_methods_supported.clone(),
        },
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
            token_endpoint_auth_methods_supported: None,
            registration_endpoint: None,
            grant_types_supported: None,
            scopes_supported: None,
        }
    }

    #[test]
    fn select_account_is_used_only_where_the_metadata_lists_it() {
        let issuer = Issuer::new("https://id.example.com").unwrap();
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
        let issuer = Issuer::new("https://id.example.com").unwrap();
        let endpoints = check(metadata("https://id.example.com"), &issuer, false).unwrap();
        assert_eq!(endpoints.device_authorization.unwrap().path(), "/device/auth");
        let mut plain = metadata("https://id.example.com");
        plain.device_authorization_endpoint = Some("http://id.example.com/device/auth".into());
        assert!(check(plain, &issuer, false).is_err(), "RFC 8628 §3.1 with RFC 6749 §3.1: TLS");
    }

    #[test]
    fn well_known_urls_are_where_servers_publish_them() {
        let strings = |urls: &[Url]| urls.iter().map(Url::to_string).collect::<Vec<_>>();
        let urls = metadata_urls(&Url::parse("https://id.example.com/tenant").unwrap()).unwrap();
        assert_eq!(
            strings(&urls.openid),
            [
                "https://id.example.com/tenant/.well-known/openid-configuration",
                "https://id.example.com/.well-known/openid-configuration/tenant",
            ]
        );
        assert_eq!(
            strings(&urls.oauth),
            [
                "https://id.example.com/.well-known/oauth-authorization-server/tenant",
                "https://id.example.com/tenant/.well-known/oauth-authorization-server",
            ]
        );
        // A trailing slash on the issuer changes nothing; without a path, each document has one place.
        let slash = metadata_urls(&Url::parse("https://id.example.com/tenant/").unwrap()).unwrap();
        assert_eq!(strings(&slash.openid), strings(&urls.openid));
        let root = metadata_urls(&Url::parse("http://127.0.0.1:4470").unwrap()).unwrap();
        assert_eq!(strings(&root.openid), ["http://127.0.0.1:4470/.well-known/openid-configuration"]);
        assert_eq!(strings(&root.oauth), ["http://127.0.0.1:4470/.well-known/oauth-authorization-server"]);
    }

    #[test]
    fn accepts_matching_metadata() {
        let issuer = Issuer::new("http://127.0.0.1:4470").unwrap();
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
        assert!(!message.contains("xxx") && message.len() < 200, "{message}");
        assert!(message.contains("wrong type") && message.contains("line 1"), "{message}");
        assert!(message.contains("authorization_response_iss_parameter_supported"), "{message}");
        let Err(Error::BadResponse(message)) =
            parse(br#"{"issuer":"https://id.example.com","authorization_endpoint":"https://a"}"#)
        else {
            panic!("expected an error")
        };
        assert!(message.contains("token_endpoint"), "the missing field is named: {message}");
        let Err(Error::BadResponse(message)) = parse(b"<html>not json</html>") else { panic!("expected an error") };
        assert!(message.contains("not valid JSON") && !message.contains("html"), "{message}");
    }

    /// Microsoft's quirk, only for the Microsoft preset: its metadata names a `{tenantid}` template or the
    /// tenant's GUID on its own host, never another host.
    #[test]
    fn accepts_microsofts_tenant_issuers_only_when_told() {
        let common = Issuer::new("https://login.microsoftonline.com/common/v2.0").unwrap();
        let template = metadata("https://login.microsoftonline.com/{tenantid}/v2.0");
        assert!(check(template, &common, false).is_err());
        let endpoints = check(metadata("https://login.microsoftonline.com/{tenantid}/v2.0"), &common, true).unwrap();
        assert_eq!(endpoints.issuer, None);
        assert_eq!(endpoints.issuer_template.as_deref(), Some("https://login.microsoftonline.com/{tenantid}/v2.0"));
        let guid = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        let by_domain = Issuer::new("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0").unwrap();
        let endpoints = check(metadata(guid), &by_domain, true).unwrap();
        assert_eq!(endpoints.issuer.as_ref().map(Url::as_str), Some(guid));
        assert!(check(metadata("https://evil.example/{tenantid}/v2.0"), &common, true).is_err());
    }

    #[test]
    fn rejects_another_issuer() {
        let issuer = Issuer::new("https://id.example.com").unwrap();
        assert!(matches!(check(metadata("https://evil.example"), &issuer, false), Err(Error::BadResponse(_))));
    }

    /// The issuer is compared as the profile writes it and the metadata spells it, never as a URL library
    /// re-spells it: an explicit port, the default one included, works when written as the provider names it.
    #[test]
    fn an_issuer_with_a_port_is_compared_as_written() {
        for written in
            ["https://id.example.com:443", "https://id.example.com:8443", "https://id.example.com:8443/realms/x"]
        {
            let issuer = Issuer::new(written).unwrap();
            let endpoints = check(metadata(written), &issuer, false).unwrap();
            assert_eq!(endpoints.issuer_id.as_deref(), Some(written), "the metadata's spelling is the issuer");
        }
        // Another port, or the default one dropped, is another issuer.
        let explicit = Issuer::new("https://id.example.com:443").unwrap();
        assert!(check(metadata("https://id.example.com"), &explicit, false).is_err());
        let other_port = Issuer::new("https://id.example.com:8443").unwrap();
        assert!(check(metadata("https://id.example.com:9443"), &other_port, false).is_err());
    }

    /// Metadata behind a redirect is followed to https, or to http on a loopback address, never from https to
    /// http; the issuer check decides afterwards, as for any document.
    #[test]
    fn metadata_redirects_never_leave_tls() {
        let headers = |location: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, location.parse().unwrap());
            headers
        };
        let from = Url::parse("https://id.example.com/.well-known/openid-configuration").unwrap();
        let next = |location: &str| redirect_target(&from, &headers(location)).map(|r| r.map(|u| u.to_string()));
        assert_eq!(
            next("/v2/.well-known/openid-configuration").unwrap().unwrap(),
            "https://id.example.com/v2/.well-known/openid-configuration"
        );
        assert_eq!(next("https://login.example.com/x").unwrap().unwrap(), "https://login.example.com/x");
        assert!(next("http://id.example.com/.well-known/openid-configuration").unwrap().is_err(), "https to http");
        assert!(next("http://127.0.0.1/x").unwrap().is_err(), "https to http, even loopback");
        assert!(next("ftp://id.example.com/x").unwrap().is_err());
        assert!(redirect_target(&from, &HeaderMap::new()).is_none());
        let local = Url::parse("http://127.0.0.1:4470/.well-known/openid-configuration").unwrap();
        assert!(redirect_target(&local, &headers("http://127.0.0.1:4470/a")).unwrap().is_ok());
        assert!(redirect_target(&local, &headers("http://evil.example/a")).unwrap().is_err(), "http off loopback");
    }

    #[test]
    fn rejects_providers_without_s256_or_tls() {
        let issuer = Issuer::new("https://id.example.com").unwrap();
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
                let issuer = Issuer::new("https://id.example.com").unwrap();
                let Ok(metadata) = parse(doc.to_string().as_bytes()) else { return Ok(()) };
                let Ok(endpoints) = check(metadata, &issuer, false) else { return Ok(()) };
                // Only the issuer asked for, as the document spells it, with or without the root path's slash.
                prop_assert!(doc["issuer"] == "https://id.example.com" || doc["issuer"] == "https://id.example.com/");
                // The endpoints are the document's own, unchanged.
                for (field, url) in [("authorization_endpoint", &endpoints.authorization), ("token_endpoint", &endpoints.token)] {
                    let listed = doc[field].as_str().map(|u| Url::parse(u).unwrap().to_string());
                    prop_assert_eq!(Some(url.as_str()), listed.as_deref());
                }
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
            let issuer = Issuer::new("https://id.example.com").unwrap();
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
