//! The OAuth 2.0 calls: the authorization URL, the code exchange, refresh and revocation, through the `oauth2`
//! crate over the shared `reqwest` client.
//!
//! Nothing here retries: a code is single-use (RFC 6749 §4.1.2), and re-sending it after an ambiguous failure
//! would only trigger the provider's replay defence and revoke the grant (RFC 9700 §4.2.4).

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, EndpointNotSet, EndpointSet, ErrorResponse, ExtraTokenFields, HttpClientError,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocableToken, Scope, StandardErrorResponse,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::pkce::AttemptSecrets;
use crate::config::{Config, ProviderEndpoints};
use crate::error::{clean_for_display, Error, Result};

/// The `id_token` that OpenID Connect adds to the token response (OIDC Core §3.1.3.3).
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    /// The compact-serialised ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenField").field("id_token", &self.id_token.as_ref().map(|_| "[redacted]")).finish()
    }
}

impl ExtraTokenFields for IdTokenField {}

/// A token response, with the ID token when there is one.
pub type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// The `oauth2` client with the endpoints Gatehouse needs set.
pub type OAuthClient = Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Builds the client for `config` at `endpoints`.
///
/// # Errors
/// [`Error::Internal`] if an already validated URL cannot be used, which should not happen.
pub fn client(config: &Config, endpoints: &ProviderEndpoints) -> Result<OAuthClient> {
    let bad = |e: oauth2::url::ParseError| Error::Internal(format!("endpoint URL: {e}"));
    let mut client = Client::new(config.client_id.clone())
        .set_auth_uri(AuthUrl::from_url(endpoints.authorization.clone()))
        .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
        .set_redirect_uri(RedirectUrl::new(config.redirect_uri.to_string()).map_err(bad)?);
    // RFC 8252 §8.5: a native app's secret is not a secret. Send it only when the provider insists.
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(secret.clone());
    }
    Ok(client)
}

/// The authorization request URL for one attempt: code flow, PKCE S256, `state`, and `nonce` with `openid`.
pub fn authorization_url(client: &OAuthClient, config: &Config, secrets: &AttemptSecrets) -> Url {
    let state = secrets.state.clone();
    let mut request = client
        .authorize_url(move || state)
        .add_scopes(config.scopes.iter().cloned().map(Scope::new))
        // RFC 7636 §4.3, RFC 9700 §2.1.1: S256, never plain.
        .set_pkce_challenge(secrets.challenge.clone());
    if let Some(nonce) = &secrets.nonce {
        request = request.add_extra_param("nonce", nonce.secret().clone());
    }
    request.url().0
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE verifier (RFC 7636 §4.5).
///
/// # Errors
/// See [`token_error`].
pub async fn exchange_code(
    client: &OAuthClient,
    http: &reqwest::Client,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
) -> Result<TokenResponse> {
    client.exchange_code(code).set_pkce_verifier(verifier).request_async(http).await.map_err(token_error)
}

/// Uses a refresh token (RFC 6749 §6).
///
/// # Errors
/// [`Error::SessionEnded`] on `invalid_grant`; otherwise see [`token_error`].
pub async fn refresh(
    client: &OAuthClient,
    http: &reqwest::Client,
    refresh_token: &RefreshToken,
) -> Result<TokenResponse> {
    client.exchange_refresh_token(refresh_token).request_async(http).await.map_err(|e| match token_error(e) {
        Error::TokenEndpoint { code, .. } if code == BasicErrorResponseType::InvalidGrant.as_ref() => {
            Error::SessionEnded
        }
        other => other,
    })
}

/// Revokes a token (RFC 7009 §2.1). Returns `Ok(false)` when the provider has no revocation endpoint.
///
/// This is a plain form POST rather than `oauth2`'s `revoke_token`, which refuses any `http:` endpoint and so
/// would silently skip revocation at a loopback provider such as the bundled demo.
///
/// # Errors
/// [`Error::Network`] when unreachable; [`Error::TokenEndpoint`] when the provider refuses.
pub async fn revoke(
    config: &Config,
    endpoints: &ProviderEndpoints,
    http: &reqwest::Client,
    token: StandardRevocableToken,
) -> Result<bool> {
    let Some(url) = &endpoints.revocation else {
        return Ok(false);
    };
    let mut form = vec![("token", token.secret())];
    // RFC 7009 §2.1: the hint helps the server find the token; the whole grant goes with a refresh token.
    if let Some(hint) = token.type_hint() {
        form.push(("token_type_hint", hint));
    }
    let mut request = http.post(url.clone());
    // RFC 7009 §2.1 with RFC 6749 §2.3: a client with a secret authenticates; a public client names itself.
    match &config.client_secret {
        Some(secret) => request = request.basic_auth(config.client_id.as_str(), Some(secret.secret())),
        None => form.push(("client_id", config.client_id.as_str())),
    }
    let response =
        request.form(&form).send().await.map_err(|e| Error::Network(crate::http::describe_transport_error(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(true);
    }
    // RFC 7009 §2.2.1: an error response uses the token endpoint's format.
    let body = crate::http::read_body(response).await.unwrap_or_default();
    let error: Option<BasicRevocationErrorResponse> = serde_json::from_slice(&body).ok();
    Err(match error {
        Some(e) => Error::TokenEndpoint {
            code: clean_for_display(e.error().as_ref(), 64),
            description: e.error_description().map(|d| clean_for_display(d, 200)),
        },
        None => Error::BadResponse(format!("the revocation endpoint answered HTTP {}", status.as_u16())),
    })
}

/// Turns a failed token-endpoint call into an error the user can act on, without echoing the response body.
fn token_error<T>(e: RequestTokenError<HttpClientError<reqwest::Error>, StandardErrorResponse<T>>) -> Error
where
    T: oauth2::ErrorResponseType + AsRef<str> + 'static,
    StandardErrorResponse<T>: ErrorResponse,
{
    match e {
        RequestTokenError::ServerResponse(response) => Error::TokenEndpoint {
            code: clean_for_display(response.error().as_ref(), 64),
            description: response.error_description().map(|d| clean_for_display(d, 200)),
        },
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
            Error::Network(crate::http::describe_transport_error(&e))
        }
        RequestTokenError::Request(e) => Error::Network(e.to_string()),
        RequestTokenError::Parse(e, _body) => {
            Error::BadResponse(format!("its token response is not valid: {}", e.path()))
        }
        RequestTokenError::Other(message) => Error::BadResponse(clean_for_display(&message, 200)),
    }
}
