//! Registering Gatehouse at a provider (RFC 7591) when the form gives no client ID, and deleting a registration
//! a save replaced or a removal ended (RFC 7592).

use super::*;
use crate::http::{self, header, Http, Method};

/// Registers Gatehouse at `endpoint` as a native public client (RFC 7591 §2, §3.1): no secret
/// (`token_endpoint_auth_method` none, RFC 8252 §8.4), its redirect URI, and the grants it uses.
///
/// # Errors
/// [`Error::Setup`] when the provider refuses (with its `error` and description, §3.2.2), or answers without a
/// client ID; [`Error::Network`] when unreachable.
pub async fn register(
    http: &Http,
    endpoint: &Url,
    config: &Config,
    endpoints: &ProviderEndpoints,
) -> Result<Registered> {
    // RFC 8414 §2 `grant_types_supported`: only grants the provider lists (all three, when it lists none).
    let listed = |grant: &str| endpoints.advertised.grant_types.as_ref().is_none_or(|g| g.iter().any(|l| l == grant));
    let mut grant_types: Vec<&str> = vec!["authorization_code"];
    if listed("refresh_token") {
        grant_types.push("refresh_token");
    }
    if endpoints.device_authorization.is_some() && listed("urn:ietf:params:oauth:grant-type:device_code") {
        grant_types.push("urn:ietf:params:oauth:grant-type:device_code");
    }
    let full = serde_json::json!({
        "client_name": "Gatehouse",
        "application_type": "native",
        "redirect_uris": [config.redirect_uri.as_str()],
        "token_endpoint_auth_method": "none",
        "grant_types": grant_types,
        "response_types": ["code"],
        "scope": config.scopes.join(" "),
    });
    let trusted: Vec<&Url> = std::iter::once(endpoint).chain(endpoints.issuer.as_ref()).collect();
    match register_with(http, endpoint, &trusted, &full).await {
        // RFC 7591 §3.2.2: a server may refuse metadata it won't take (a grant type, a scope, a name); the least
        // a native sign-in needs (a native app, RFC 8252 §8.4, its redirect URI and no secret) is asked for once
        // more, and the server's defaults (RFC 7591 §2: the authorization code grant) fill in the rest. §3.2.2
        // says 400; Keycloak's client registration policies answer 403, so any 4xx whose answer is about the
        // request's metadata gets the same one retry.
        Err(Refused { status: Some(status), metadata: true, .. }) if (400..500).contains(&status) => {
            let least = serde_json::json!({
                "application_type": "native",
                "redirect_uris": [config.redirect_uri.as_str()],
                "token_endpoint_auth_method": "none",
            });
            register_with(http, endpoint, &trusted, &least).await.map_err(Error::from)
        }
        result => result.map_err(Error::from),
    }
}

/// Why a registration failed: the HTTP status of a refusal, whether its answer is about the metadata sent, and
/// the error to show.
struct Refused {
    status: Option<u16>,
    metadata: bool,
    error: Error,
}

/// Whether a refusal with `status`, error `code` and `description` is about the metadata the request sent, so
/// that one with less might pass: a 400 always (RFC 7591 §3.2.2's status for `invalid_client_metadata` and
/// `invalid_redirect_uri`), and another status when its error or description names metadata (Keycloak's
/// policies: 403 `insufficient_scope`, "Policy 'Allowed Client Scopes' rejected request").
pub(super) fn about_metadata(status: u16, code: Option<&str>, description: Option<&str>) -> bool {
    const METADATA: [&str; 8] =
        ["metadata", "scope", "grant", "redirect", "client_name", "application_type", "response_type", "auth_method"];
    let said = |text: Option<&str>| text.is_some_and(|t| METADATA.iter().any(|m| t.to_ascii_lowercase().contains(m)));
    // `insufficient_scope` is about the registration's own access token, not the metadata: its description says
    // which (Keycloak uses it for every policy).
    status == 400
        || matches!(code, Some("invalid_client_metadata" | "invalid_redirect_uri" | "invalid_software_statement"))
        || said(description)
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Error {
        refused.error
    }
}

impl From<Error> for Refused {
    fn from(error: Error) -> Refused {
        Refused { status: None, metadata: false, error }
    }
}

async fn register_with(
    client: &Http,
    endpoint: &Url,
    trusted: &[&Url],
    body: &serde_json::Value,
) -> std::result::Result<Registered, Refused> {
    let request = http::request(Method::POST, endpoint).header(header::CONTENT_TYPE, "application/json");
    let answer = client.send(http::with_body(request, body.to_string().into_bytes())?).await?;
    let status = answer.status;
    let body = answer.body?;
    // A refusal may come as an error object (RFC 7591 §3.2.2) or as anything else (a 401 page where an initial
    // access token is required): either way, the way on is a client made in the provider's console.
    let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let text =
        |name: &str| answer.as_ref().and_then(|a| a[name].as_str()).map(|s| crate::error::clean_for_display(s, 200));
    if !status.is_success() || answer.as_ref().is_some_and(|a| a.get("error").is_some()) {
        let metadata = about_metadata(status.as_u16(), text("error").as_deref(), text("error_description").as_deref());
        let code = text("error").unwrap_or_else(|| status.to_string());
        let description = text("error_description").map(|d| format!(": {d}")).unwrap_or_default();
        let error = Error::Setup(format!(
            "the provider refused to register Gatehouse ({code}{description}); create a client in its console \
             (a native or desktop app with the redirect URI shown) and enter its client ID instead"
        ));
        return Err(Refused { status: Some(status.as_u16()), metadata, error });
    }
    let answer =
        answer.ok_or_else(|| Error::Setup(format!("the provider's registration answer ({status}) is not JSON")))?;
    let client_id = answer["client_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::Setup("the provider registered Gatehouse but sent no client_id".into()))?
        .to_owned();
    // RFC 7592 §3: the management URI is where the registration access token will be sent (as a bearer token,
    // with a DELETE). Only a URI of the registration endpoint's own origin, over https or a loopback IP literal,
    // is trusted with it; any other is not kept, and the registration is then left to expire at the provider.
    let management = match (answer["registration_client_uri"].as_str(), answer["registration_access_token"].as_str()) {
        (Some(uri), Some(token)) => Url::parse(uri)
            .ok()
            .filter(|u| trusted_management_uri(u, trusted))
            .map(|client_uri| Registration { client_uri, access_token: token.to_owned() }),
        _ => None,
    };
    // RFC 7591 §3.2.1: the server says how the client it registered must authenticate; a secret it issued all
    // the same is used only with a method that sends one.
    let auth_method = answer["token_endpoint_auth_method"]
        .as_str()
        .filter(|m| matches!(*m, "none" | "client_secret_basic" | "client_secret_post"))
        .map(str::to_owned);
    let client_secret = answer["client_secret"]
        .as_str()
        .filter(|s| !s.is_empty() && auth_method.as_deref() != Some("none"))
        .map(str::to_owned);
    let auth_method = auth_method.filter(|m| m == "none" || client_secret.is_some());
    Ok(Registered { client_id, client_secret, auth_method, management })
}

/// Whether a registration's management URI may be sent its access token: the origin (scheme, host and port) of
/// the registration endpoint or of the issuer, over https, or http to a loopback IP literal.
pub(super) fn trusted_management_uri(uri: &Url, trusted: &[&Url]) -> bool {
    let secure = uri.scheme() == "https" || (uri.scheme() == "http" && crate::http::is_loopback(uri));
    secure
        && uri.username().is_empty()
        && uri.password().is_none()
        && trusted.iter().any(|origin| uri.origin() == origin.origin())
}

/// Deletes a registration (RFC 7592 §2.3). A provider that has already forgotten it is fine.
///
/// # Errors
/// [`Error::Network`] when unreachable; [`Error::BadResponse`] when the provider refuses.
pub async fn unregister(client: &Http, registration: &Registration) -> Result<()> {
    let request = http::request(Method::DELETE, &registration.client_uri)
        .header(header::AUTHORIZATION, http::credential("Bearer", &registration.access_token)?);
    let answer = client.send(http::with_body(request, Vec::new())?).await?;
    match answer.status.as_u16() {
        200..=299 | 401 | 404 => Ok(()),
        status => Err(Error::BadResponse(format!("deleting the client registration was refused ({status})"))),
    }
}
