//! The OAuth 2.0 calls: the authorization URL, the code exchange, refresh and revocation, through the `oauth2`
//! crate over the shared [`Http`] client.
//!
//! Nothing here retries: a code is single-use (RFC 6749 §4.1.2), and re-sending it after an ambiguous failure
//! would only trigger the provider's replay defence and revoke the grant (RFC 9700 §4.2.4).

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, Client, DeviceAuthorizationUrl, DeviceCodeErrorResponseType,
    EndpointNotSet, EndpointSet, ErrorResponse, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    RevocableToken, Scope, StandardDeviceAuthorizationResponse, StandardErrorResponse, StandardRevocableToken,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::form_urlencoded;
use url::Url;

use super::pkce::AttemptSecrets;
use crate::config::{ClientAuth, Config, ProviderEndpoints};
use crate::dpop::DpopKey;
use crate::error::{clean_for_display, Error, Result};
use crate::http::{self, header, Answer, Http, Method, NonceRefusal, OAuthHttp, OAuthHttpError, Proven, StatusCode};
use crate::tokens::Narrowing;

/// A successful token response (RFC 6749 §5.1), with the `id_token` OpenID Connect adds (OIDC Core §3.1.3.3).
///
/// Gatehouse's own type rather than `oauth2`'s `StandardTokenResponse`, read by [`TokenResponse::from_json`]:
/// strict where a field carries what protects the user (the tokens themselves), lenient where a field is only
/// shown or only tunes behaviour, as providers in the wild send them:
/// - `scope`: a space-delimited string (RFC 6749 §3.3), or an array of strings (Twitch); anything else is "not
///   stated", which §5.1 reads as "as requested". `""` is no scope at all.
/// - `token_type`: case-insensitive (§5.1); absent (Rancher, LinkedIn) means Bearer, or DPoP when the request
///   carried a proof ([`TokenResponse::is_dpop_bound`]). A type Gatehouse can't use makes the answer unusable
///   (§7.1), which [`TokenResponse::check_usable`] says.
/// - `expires_in`: any JSON number or numeric string; `0`, a negative number (GoToSocial and VK send 0 for
///   "does not expire") or a value that is no number at all is read as absent: the token is used until the
///   resource refuses it.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    access_token: AccessToken,
    token_type: BasicTokenType,
    /// Whether the provider named a `token_type` at all.
    #[serde(skip)]
    token_type_stated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope", skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "oauth2::helpers::serialize_space_delimited_vec")]
    scopes: Option<Vec<Scope>>,
    /// The compact-serialised ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl<'de> Deserialize<'de> for TokenResponse {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        TokenResponse::from_json(value).map_err(serde::de::Error::custom)
    }
}

impl TokenResponse {
    /// Reads a token response leniently (see the type's docs).
    ///
    /// # Errors
    /// What makes it unusable, naming the field at fault and never quoting the provider's text: not a JSON
    /// object, or no usable `access_token`, `refresh_token` or `id_token`.
    pub fn from_json(value: serde_json::Value) -> std::result::Result<TokenResponse, String> {
        use serde_json::Value;
        let serde_json::Value::Object(mut fields) = value else {
            return Err("it is not a JSON object".into());
        };
        // A field a provider sent as `null` is a field it didn't send.
        fields.retain(|_, value| !value.is_null());
        let text =
            |fields: &serde_json::Map<String, Value>, name: &str| -> std::result::Result<Option<String>, String> {
                match fields.get(name) {
                    None => Ok(None),
                    Some(Value::String(text)) if text.is_empty() => Err(format!("{name} is empty")),
                    Some(Value::String(text)) => Ok(Some(text.clone())),
                    Some(_) => Err(format!("{name} is not a string")),
                }
            };
        let access_token = text(&fields, "access_token")?.ok_or("access_token is missing")?;
        let refresh_token = text(&fields, "refresh_token")?;
        let id_token = text(&fields, "id_token")?;
        // RFC 6749 §5.1: "The access token type … is case insensitive." Anything but a string is not stated.
        let (token_type, token_type_stated) = match fields.get("token_type") {
            Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => (BasicTokenType::Bearer, true),
            Some(Value::String(kind)) if kind.eq_ignore_ascii_case("dpop") => {
                (BasicTokenType::Extension("DPoP".into()), true)
            }
            Some(Value::String(kind)) => (BasicTokenType::Extension(kind.clone()), true),
            _ => (BasicTokenType::Bearer, false),
        };
        let expires_in = fields
            .get("expires_in")
            .and_then(|value| crate::tokens::deserialize_seconds(value).ok().flatten())
            .filter(|seconds| *seconds > 0);
        let scopes = match fields.get("scope") {
            Some(Value::String(text)) => Some(text.split_whitespace().map(|s| Scope::new(s.to_owned())).collect()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .flat_map(str::split_whitespace)
                    .map(|s| Scope::new(s.to_owned()))
                    .collect(),
            ),
            _ => None,
        };
        Ok(TokenResponse {
            access_token: AccessToken::new(access_token),
            token_type,
            token_type_stated,
            expires_in,
            refresh_token: refresh_token.map(RefreshToken::new),
            scopes,
            id_token,
        })
    }

    /// The ID token, when the provider sent one.
    pub fn id_token(&self) -> Option<&str> {
        self.id_token.as_deref()
    }

    /// Whether the tokens are bound to the DPoP key the request was proven with, if `proven` (RFC 9449 §5:
    /// `token_type` `DPoP`). A provider that names no type after a proven request is taken to have bound them:
    /// the key is then kept, and the token sent with a proof.
    pub fn is_dpop_bound(&self, proven: bool) -> bool {
        match &self.token_type {
            BasicTokenType::Extension(kind) => kind == "DPoP",
            _ => proven && !self.token_type_stated,
        }
    }

    /// What a session keeps of the DPoP key a request was `proven` with, given this answer: `(keep the key, the
    /// access token is Bearer)`. RFC 9449 §5: `token_type` DPoP (or none, after a proof) binds the tokens; a
    /// Bearer answer with a refresh token still binds that refresh token to the key for a public client, so the
    /// key is kept for refreshes and revocation while the access token goes as Bearer; a Bearer answer without
    /// one needs no key.
    pub fn key_binding(&self, proven: bool) -> (bool, bool) {
        if !proven {
            return (false, false);
        }
        if self.is_dpop_bound(true) {
            return (true, false);
        }
        (self.refresh_token.is_some(), self.refresh_token.is_some())
    }

    /// Whether Gatehouse can use these tokens, given whether the request was `proven` with a DPoP key.
    ///
    /// # Errors
    /// [`Error::BadResponse`] for a `token_type` Gatehouse can't send (RFC 6749 §7.1: "The client MUST NOT use
    /// an access token if it does not understand the token type"), or DPoP-bound tokens for a request that
    /// proved no key.
    pub fn check_usable(&self, proven: bool) -> Result<()> {
        match &self.token_type {
            BasicTokenType::Bearer => Ok(()),
            BasicTokenType::Extension(kind) if kind == "DPoP" && proven => Ok(()),
            BasicTokenType::Extension(kind) if kind == "DPoP" => {
                Err(Error::BadResponse("its token response binds the tokens to a DPoP key that was never sent".into()))
            }
            BasicTokenType::Extension(kind) => Err(Error::BadResponse(format!(
                "its token_type {:?} is not one Gatehouse can use (it sends Bearer and DPoP tokens)",
                clean_for_display(kind, 32)
            ))),
            _ => Err(Error::BadResponse("its token_type is not one Gatehouse can use".into())),
        }
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token)
            .field("scopes", &self.scopes)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl oauth2::TokenResponse for TokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

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

/// Builds the client for `config` at `endpoints`, redirecting to `redirect_uri`: the profile's, or for a
/// loopback redirect the attempt's, with its port (RFC 8252 §7.3: the same in both requests).
///
/// # Errors
/// [`Error::Internal`] if an already validated URL cannot be used, which should not happen.
pub fn client(config: &Config, endpoints: &ProviderEndpoints, redirect_uri: &Url) -> Result<OAuthClient> {
    let bad = |e: oauth2::url::ParseError| Error::Internal(format!("endpoint URL: {e}"));
    let mut client = Client::new(config.client_id.clone())
        .set_auth_uri(AuthUrl::from_url(endpoints.authorization.clone()))
        .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(bad)?);
    // RFC 8252 §8.5: a native app's secret is not a secret. Send it only when the provider insists, the way the
    // provider takes it.
    let auth = client_auth(config, endpoints)?;
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(secret.clone());
        if auth == ClientAuth::Post {
            client = client.set_auth_type(oauth2::AuthType::RequestBody);
        }
    }
    Ok(client)
}

/// How this client authenticates at `endpoints` (see [`ClientAuth::choose`]): the token, revocation and PAR
/// endpoints alike (RFC 7009 §2.1, RFC 9126 §2.1).
///
/// # Errors
/// [`Error::UnsupportedClientAuth`] when the provider lists only methods Gatehouse doesn't do.
pub fn client_auth(config: &Config, endpoints: &ProviderEndpoints) -> Result<ClientAuth> {
    let supported = endpoints.auth_methods.as_deref();
    if let Some(wanted) = ClientAuth::unsupported(config.token_endpoint_auth_method, supported) {
        return Err(Error::UnsupportedClientAuth(wanted));
    }
    Ok(ClientAuth::choose(config.token_endpoint_auth_method, config.client_secret.is_some(), supported))
}

/// The authorization request URL for one attempt: code flow, PKCE S256, `state`, and `nonce` with `openid`.
pub fn authorization_url(client: &OAuthClient, config: &Config, secrets: &AttemptSecrets, prompt: Option<&str>) -> Url {
    let state = secrets.state.clone();
    let mut request = client
        .authorize_url(move || state)
        .add_scopes(config.scopes.iter().cloned().map(Scope::new))
        // RFC 7636 §4.3, RFC 9700 §2.1.1: S256, never plain.
        .set_pkce_challenge(secrets.challenge.clone());
    if let Some(nonce) = &secrets.nonce {
        request = request.add_extra_param("nonce", nonce.secret().clone());
    }
    // OIDC Core §3.1.2.1: `select_account` or `login`, so that adding a second account at a provider where the
    // browser is already signed in doesn't silently sign in the first one again; beside the profile's own (§11:
    // `consent` with `offline_access`).
    let prompts: Vec<&str> = config.prompt.iter().map(String::as_str).chain(prompt).collect();
    if !prompts.is_empty() {
        request = request.add_extra_param("prompt", prompts.join(" "));
    }
    // RFC 8707 §2.1: the resources the session's tokens may later be narrowed to, so that the grant covers them.
    for resource in &config.resources {
        request = request.add_extra_param("resource", resource.as_str());
    }
    request.url().0
}

/// Pushes the authorization request in `authorize` to `endpoint` (RFC 9126 §2.1) and returns the URL to open
/// instead: the authorization endpoint with only `client_id` and the `request_uri` the provider gave (§4). The
/// request's parameters (`state`, `nonce`, PKCE challenge, scopes, redirect URI) then never travel through the
/// browser, its history or its address bar.
///
/// # Errors
/// [`Error::Network`] when unreachable; [`Error::Authorization`] when the provider refuses the request (§2.3);
/// [`Error::BadResponse`] for an answer without a usable `request_uri`.
pub async fn push_authorization_request(
    config: &Config,
    endpoints: &ProviderEndpoints,
    endpoint: &Url,
    http: &Http,
    authorize: &Url,
) -> Result<Url> {
    let parameters: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let form = parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // RFC 9126 §2.1: the client authenticates as it does at the token endpoint.
    let answer = post_as_client(config, client_auth(config, endpoints)?, http, endpoint, form, None).await?;
    let status = answer.status;
    let body = answer.body?;
    if !status.is_success() {
        // RFC 9126 §2.3: the error response of RFC 6749 §5.2.
        let error: Option<BasicErrorResponse> = serde_json::from_slice(&body).ok();
        return Err(match error {
            Some(e) => Error::Authorization {
                code: clean_for_display(e.error().as_ref(), 64),
                description: e.error_description().map(|d| clean_for_display(d, 200)),
            },
            None => Error::BadResponse(format!("its pushed authorization endpoint answered HTTP {}", status.as_u16())),
        });
    }
    let pushed: PushedRequest = serde_json::from_slice(&body)
        .map_err(|_| Error::BadResponse("its pushed authorization response has no request_uri".into()))?;
    Ok(front_channel(config, endpoints, &pushed.request_uri))
}

/// The authorization endpoint's address for a pushed request: RFC 9126 §4's `client_id` and `request_uri`,
/// beside the endpoint's own query, which RFC 6749 §3.1 says to keep (Azure AD B2C names its policy there,
/// `?p=…`). For an OpenID request, also what OIDC Core §6.2 wants beside a `request_uri` and some providers refuse
/// the address without: `response_type=code` and `scope=openid`, the one scope that makes it OpenID. Nothing
/// private: `state`, `nonce`, the PKCE challenge, the redirect URI and the other scopes stay in the pushed
/// request. The reference is opened at once, well within its `expires_in` (§2.2); "Open the browser again"
/// pushes a new request.
fn front_channel(config: &Config, endpoints: &ProviderEndpoints, request_uri: &str) -> Url {
    let mut url = endpoints.authorization.clone();
    let mut query = url.query_pairs_mut();
    query.append_pair("client_id", config.client_id.as_str());
    if config.scopes.iter().any(|scope| scope == "openid") {
        query.append_pair("response_type", "code").append_pair("scope", "openid");
    }
    query.append_pair("request_uri", request_uri);
    drop(query);
    url
}

/// A pushed authorization response (RFC 9126 §2.2).
#[derive(Deserialize)]
struct PushedRequest {
    request_uri: String,
}

/// The provider a token request goes to: where tokens it issued but Gatehouse can't use are revoked.
#[derive(Clone, Copy)]
pub struct Provider<'a> {
    /// The profile.
    pub config: &'a Config,
    /// Its endpoints.
    pub endpoints: &'a ProviderEndpoints,
    /// The shared HTTP client.
    pub http: &'a Http,
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) with its PKCE verifier (RFC 7636 §4.5).
///
/// # Errors
/// See [`token_error`]; an answer that issued tokens Gatehouse can't use is [`Error::BadResponse`], and what
/// it issued is revoked first.
pub async fn exchange_code(
    client: &OAuthClient,
    provider: Provider<'_>,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse> {
    let result = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&OAuthHttp(provider.http.clone(), dpop.cloned()))
        .await;
    usable(provider, result, dpop, token_error).await
}

/// Uses a refresh token (RFC 6749 §6), for a token narrowed `to` a resource (RFC 8707 §2.2) or fewer scopes
/// (RFC 6749 §6), or for the session's own token when `to` narrows nothing.
///
/// # Errors
/// [`Error::SessionEnded`] on `invalid_grant` (§5.2: the refresh token is invalid, expired or revoked), or on
/// an error code the profile lists as its provider's word for the same ([`Config::session_ended_errors`]);
/// otherwise as [`exchange_code`].
pub async fn refresh(
    client: &OAuthClient,
    provider: Provider<'_>,
    refresh_token: &RefreshToken,
    dpop: Option<&DpopKey>,
    to: &Narrowing,
) -> Result<TokenResponse> {
    // RFC 9449 §5.0: a bound refresh token is used with a proof of the same key.
    let mut request =
        client.exchange_refresh_token(refresh_token).add_scopes(to.scopes.iter().cloned().map(Scope::new));
    if let Some(resource) = &to.resource {
        request = request.add_extra_param("resource", resource.as_str());
    }
    let result = request.request_async(&OAuthHttp(provider.http.clone(), dpop.cloned())).await;
    let ended = &provider.config.session_ended_errors;
    usable(provider, result, dpop, |e| match token_error(e) {
        Error::TokenEndpoint { code, .. }
            if code == BasicErrorResponseType::InvalidGrant.as_ref() || ended.contains(&code) =>
        {
            Error::SessionEnded
        }
        other => other,
    })
    .await
}

/// The tokens of a token endpoint's answer, if Gatehouse can use them. Errors go through `map`; an answer
/// that issued tokens Gatehouse can't use, or can't even read, has what it issued revoked (RFC 7009), so that no
/// grant stays alive that nobody holds.
async fn usable<E>(
    provider: Provider<'_>,
    result: std::result::Result<TokenResponse, RequestTokenError<OAuthHttpError, E>>,
    dpop: Option<&DpopKey>,
    map: impl FnOnce(RequestTokenError<OAuthHttpError, E>) -> Error,
) -> Result<TokenResponse>
where
    E: ErrorResponse + 'static,
{
    let (error, issued) = match result {
        Ok(tokens) => match tokens.check_usable(dpop.is_some()) {
            Ok(()) => return Ok(tokens),
            Err(e) => (e, revocable(tokens.refresh_token.clone(), Some(tokens.access_token.clone()))),
        },
        Err(RequestTokenError::Parse(e, body)) => (parse_error(&e), issued_in(&body)),
        Err(other) => return Err(map(other)),
    };
    if let Some(token) = issued {
        tracing::warn!("the provider issued tokens Gatehouse can't use; revoking them");
        if let Err(revoke_error) = revoke(provider.config, provider.endpoints, provider.http, token, dpop).await {
            tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the unusable tokens");
        }
    }
    Err(error)
}

/// The token that ends a grant: its refresh token if it has one (RFC 7009 §2.1), else its access token.
fn revocable(refresh_token: Option<RefreshToken>, access_token: Option<AccessToken>) -> Option<StandardRevocableToken> {
    refresh_token.map(StandardRevocableToken::RefreshToken).or(access_token.map(StandardRevocableToken::AccessToken))
}

/// What a token response Gatehouse couldn't read still issued, if it is an object with tokens in it.
fn issued_in(body: &[u8]) -> Option<StandardRevocableToken> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token =
        |name: &str| value.get(name).and_then(serde_json::Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned);
    revocable(token("refresh_token").map(RefreshToken::new), token("access_token").map(AccessToken::new))
}

/// A token response that can't be read, described by the field at fault (never the provider's text).
fn parse_error(e: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    let inner = e.inner();
    let why = match inner.classify() {
        serde_json::error::Category::Data => {
            let text = inner.to_string();
            // serde_json adds where in the body it was; the field's name says more.
            let text = text.split(" at line ").next().unwrap_or_default().to_owned();
            format!("its token response is not valid: {text}")
        }
        _ => "its token response is not JSON".to_owned(),
    };
    Error::BadResponse(why)
}

/// What the provider answered to a device authorization request (RFC 8628 §3.2).
pub type DeviceAuthorization = StandardDeviceAuthorizationResponse;

/// Asks for a device code and a user code (RFC 8628 §3.1) at `url`, the provider's device authorization
/// endpoint, for the profile's scopes.
///
/// # Errors
/// See [`token_error`].
pub async fn device_authorization(
    client: &OAuthClient,
    url: &Url,
    config: &Config,
    http: &Http,
) -> Result<DeviceAuthorization> {
    let client = client.clone().set_device_authorization_url(DeviceAuthorizationUrl::from_url(url.clone()));
    let mut request = client.exchange_device_code().add_scopes(config.scopes.iter().cloned().map(Scope::new));
    // RFC 8707 §2.1, as in the authorization request (RFC 8628 §3.1 takes the same parameters).
    for resource in &config.resources {
        request = request.add_extra_param("resource", resource.as_str());
    }
    request.request_async(&OAuthHttp(http.clone(), None)).await.map(within_reason).map_err(token_error)
}

/// The longest poll interval, and the longest life of a device code, Gatehouse takes from a provider. Beyond
/// them a value is absurd (a code nobody would wait for), and `oauth2`'s arithmetic on it would overflow.
const MAX_POLL_INTERVAL: u64 = 600;
const MAX_DEVICE_CODE_LIFE: u64 = 24 * 3600;

/// `details` with its `interval` and `expires_in` clamped to what a person could wait for: 1 s to
/// [`MAX_POLL_INTERVAL`], and at most [`MAX_DEVICE_CODE_LIFE`].
fn within_reason(details: DeviceAuthorization) -> DeviceAuthorization {
    let Ok(mut value) = serde_json::to_value(&details) else { return details };
    let clamp = |value: &mut serde_json::Value, field: &str, low: u64, high: u64| {
        if let Some(n) = value.get(field).and_then(serde_json::Value::as_u64) {
            value[field] = n.clamp(low, high).into();
        }
    };
    clamp(&mut value, "interval", 1, MAX_POLL_INTERVAL);
    clamp(&mut value, "expires_in", 1, MAX_DEVICE_CODE_LIFE);
    serde_json::from_value(value).unwrap_or(details)
}

/// How long to wait before each poll: what `oauth2` asks for, but never less than the provider's interval as it
/// last stood (RFC 8628 §3.5: five seconds more after each `slow_down`). `oauth2` shortens the wait to at most
/// 10 s after a network error, which would poll faster than a provider's longer interval.
#[derive(Debug, Default)]
struct Pace {
    floor: std::sync::Mutex<Duration>,
}

impl Pace {
    fn next(&self, wanted: Duration) -> Duration {
        let mut floor = match self.floor.lock() {
            Ok(floor) => floor,
            Err(poisoned) => poisoned.into_inner(),
        };
        *floor = (*floor).max(wanted).min(Duration::from_secs(MAX_POLL_INTERVAL + 60));
        *floor
    }
}

/// Polls the token endpoint until the user approves the device code elsewhere (RFC 8628 §3.4, §3.5): at the
/// interval the provider asked for, five seconds slower after each `slow_down`, never faster after a network
/// error ([`Pace`]), and no longer than the code lives (oauth2 then reports `expired_token` itself).
///
/// # Errors
/// [`Error::AccessDenied`] when the user declines; [`Error::SignInTimedOut`] when the code expires; otherwise
/// see [`token_error`].
pub async fn device_token(
    client: &OAuthClient,
    provider: Provider<'_>,
    details: &DeviceAuthorization,
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse> {
    let pace = Pace::default();
    // RFC 9449 §5: a device code token request is a token request like any other, proven with the session's key
    // where the profile uses DPoP, so signing in with a code never downgrades the session to Bearer tokens.
    let http = OAuthHttp(provider.http.clone(), dpop.cloned());
    let result = client
        .exchange_device_access_token(details)
        .request_async(&http, |wanted| tokio::time::sleep(pace.next(wanted)), None)
        .await;
    usable(provider, result, dpop, |e| match &e {
        RequestTokenError::ServerResponse(response) => match response.error() {
            DeviceCodeErrorResponseType::AccessDenied => Error::AccessDenied,
            DeviceCodeErrorResponseType::ExpiredToken => Error::SignInTimedOut,
            DeviceCodeErrorResponseType::Basic(oauth2::basic::BasicErrorResponseType::Extension(code)) => {
                match device_poll_ending(code) {
                    Some(ending) => ending,
                    None => token_error(e),
                }
            }
            _ => token_error(e),
        },
        _ => token_error(e),
    })
    .await
}

/// What a poll error outside RFC 8628 §3.5's list means, when its code says: a person who refused
/// (`authorization_declined`, Entra's; `user_denied`, `access_denied_by_user` and the like) declined the sign-in,
/// and a code that ran out timed out. Anything else is the provider refusing the client, as for a token request.
fn device_poll_ending(code: &str) -> Option<Error> {
    let code = code.to_ascii_lowercase();
    if code.contains("denied") || code.contains("declined") || code.contains("rejected") {
        Some(Error::AccessDenied)
    } else if code.contains("expired") {
        Some(Error::SignInTimedOut)
    } else {
        None
    }
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
    http: &Http,
    token: StandardRevocableToken,
    dpop: Option<&DpopKey>,
) -> Result<bool> {
    let Some(url) = &endpoints.revocation else {
        return Ok(false);
    };
    let mut form = vec![("token", token.secret())];
    // RFC 7009 §2.1: the hint helps the server find the token; the whole grant goes with a refresh token.
    if let Some(hint) = token.type_hint() {
        form.push(("token_type_hint", hint));
    }
    // RFC 7009 §2.1: the client authenticates as at the token endpoint.
    let answer = post_as_client(config, client_auth(config, endpoints)?, http, url, form, dpop).await?;
    let status = answer.status;
    if status.is_success() {
        return Ok(true);
    }
    // RFC 7009 §2.2.1: an error response uses the token endpoint's format.
    let body = answer.body.unwrap_or_default();
    let error: Option<BasicRevocationErrorResponse> = serde_json::from_slice(&body).ok();
    let code = error.as_ref().map(|e| e.error().as_ref().to_owned());
    if status == StatusCode::UNAUTHORIZED || code.as_deref() == Some("invalid_client") {
        // Trying again will never help: the server wants a client authentication this app can't give.
        let why = code.map_or_else(|| "HTTP 401".to_owned(), |c| clean_for_display(&c, 64));
        return Err(Error::RevocationRefused(why));
    }
    Err(match error {
        Some(e) => Error::TokenEndpoint {
            code: clean_for_display(e.error().as_ref(), 64),
            description: e.error_description().map(|d| clean_for_display(d, 200)),
        },
        None => Error::BadResponse(format!("the revocation endpoint answered HTTP {}", status.as_u16())),
    })
}

/// POSTs `form` to `url` as the client (RFC 6749 §2.3), authenticating with `auth`: HTTP Basic, the secret in
/// the form, or for a public client `client_id` alone, unless the form already carries it. With a DPoP key, it
/// carries a proof (see [`crate::http::send`]).
///
/// # Errors
/// [`Error::Network`] when the request can't be made.
pub(super) async fn post_as_client<'a>(
    config: &'a Config,
    auth: ClientAuth,
    client: &Http,
    url: &Url,
    mut form: Vec<(&'a str, &'a str)>,
    dpop: Option<&DpopKey>,
) -> Result<Answer> {
    let secret = config.client_secret.as_ref().map(|s| s.secret().as_str());
    if auth != ClientAuth::Basic && !form.iter().any(|(name, _)| *name == "client_id") {
        form.push(("client_id", config.client_id.as_str()));
    }
    if let (ClientAuth::Post, Some(secret)) = (auth, secret) {
        form.push(("client_secret", secret));
    }
    let mut request = http::request(Method::POST, url);
    if let (ClientAuth::Basic, Some(secret)) = (auth, secret) {
        use base64::Engine as _;
        let (id, secret) = basic_credentials(config.client_id.as_str(), secret);
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        request = request.header(header::AUTHORIZATION, http::credential("Basic", &pair)?);
    }
    // The revocation endpoint is the authorization server's, and asks for a nonce as its token endpoint does.
    let proven = dpop.map(|key| Proven { key, token: None, refusal: NonceRefusal::TokenEndpoint });
    http::send(client, http::with_form(request, form)?, proven).await
}

/// The user name and password of HTTP Basic client authentication: RFC 6749 §2.3.1 has both encoded with
/// `application/x-www-form-urlencoded` first, so that a secret holding `+`, `/`, `=`, `%` or `:` survives.
fn basic_credentials(client_id: &str, secret: &str) -> (String, String) {
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    (encode(client_id), encode(secret))
}

/// Turns a failed token-endpoint call into an error the user can act on, without echoing the response body.
fn token_error<T>(e: RequestTokenError<OAuthHttpError, StandardErrorResponse<T>>) -> Error
where
    T: oauth2::ErrorResponseType + AsRef<str> + 'static,
    StandardErrorResponse<T>: ErrorResponse,
{
    match e {
        RequestTokenError::ServerResponse(response) => Error::TokenEndpoint {
            code: clean_for_display(response.error().as_ref(), 64),
            description: response.error_description().map(|d| clean_for_display(d, 200)),
        },
        RequestTokenError::Request(OAuthHttpError(e)) => e,
        RequestTokenError::Parse(e, _body) => parse_error(&e),
        RequestTokenError::Other(message) => Error::BadResponse(clean_for_display(&message, 200)),
    }
}

#[cfg(test)]
mod tests;
