//! The OAuth 2.0 calls: the authorization URL, the code exchange, refresh and revocation, through the `oauth2`
//! crate over the shared `reqwest` client.
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

use super::dpop::DpopKey;
use super::pkce::AttemptSecrets;
use crate::config::{Config, ProviderEndpoints};
use crate::error::{clean_for_display, Error, Result};
use crate::http::{Answer, NonceRefusal, OAuthHttp, OAuthHttpError, Proven};
use crate::tokens::deserialize_seconds;

/// A successful token response (RFC 6749 §5.1), with the `id_token` OpenID Connect adds (OIDC Core §3.1.3.3).
///
/// Gatehouse's own type rather than `oauth2`'s `StandardTokenResponse`, so that `expires_in` is read as the
/// JSON number it is: a provider may send `3599.5`, or a numeric string, and neither must fail a sign-in.
#[derive(Clone, Deserialize, Serialize)]
pub struct TokenResponse {
    access_token: AccessToken,
    #[serde(deserialize_with = "oauth2::helpers::deserialize_untagged_enum_case_insensitive")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "deserialize_seconds", skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope", default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "oauth2::helpers::deserialize_space_delimited_vec")]
    #[serde(serialize_with = "oauth2::helpers::serialize_space_delimited_vec")]
    scopes: Option<Vec<Scope>>,
    /// The compact-serialised ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl TokenResponse {
    /// The ID token, when the provider sent one.
    pub fn id_token(&self) -> Option<&str> {
        self.id_token.as_deref()
    }

    /// Whether the access token is bound to the DPoP key the request was made with (RFC 9449 §5: `token_type`
    /// `DPoP`, case-insensitively).
    pub fn is_dpop_bound(&self) -> bool {
        matches!(&self.token_type, BasicTokenType::Extension(kind) if kind.eq_ignore_ascii_case("DPoP"))
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
    // RFC 8252 §8.5: a native app's secret is not a secret. Send it only when the provider insists.
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(secret.clone());
    }
    Ok(client)
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
    // browser is already signed in doesn't silently sign in the first one again.
    if let Some(prompt) = prompt {
        request = request.add_extra_param("prompt", prompt.to_owned());
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
    endpoint: &Url,
    http: &reqwest::Client,
    authorize: &Url,
) -> Result<Url> {
    let parameters: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let form = parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // RFC 9126 §2.1: the client authenticates as it does at the token endpoint.
    let answer = post_as_client(config, http, endpoint, form, None).await?;
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
    // RFC 9126 §4: only client_id and request_uri go to the authorization endpoint.
    let mut url = authorize.clone();
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("client_id", config.client_id.as_str())
        .append_pair("request_uri", &pushed.request_uri);
    Ok(url)
}

/// A pushed authorization response (RFC 9126 §2.2).
#[derive(Deserialize)]
struct PushedRequest {
    request_uri: String,
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
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse> {
    client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&OAuthHttp(http.clone(), dpop.cloned()))
        .await
        .map_err(token_error)
}

/// Uses a refresh token (RFC 6749 §6).
///
/// # Errors
/// [`Error::SessionEnded`] on `invalid_grant`; otherwise see [`token_error`].
pub async fn refresh(
    client: &OAuthClient,
    http: &reqwest::Client,
    refresh_token: &RefreshToken,
    dpop: Option<&DpopKey>,
) -> Result<TokenResponse> {
    // RFC 9449 §5.0: a bound refresh token is used with a proof of the same key.
    let request = client.exchange_refresh_token(refresh_token);
    request.request_async(&OAuthHttp(http.clone(), dpop.cloned())).await.map_err(|e| match token_error(e) {
        Error::TokenEndpoint { code, .. } if code == BasicErrorResponseType::InvalidGrant.as_ref() => {
            Error::SessionEnded
        }
        other => other,
    })
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
    http: &reqwest::Client,
) -> Result<DeviceAuthorization> {
    client
        .clone()
        .set_device_authorization_url(DeviceAuthorizationUrl::from_url(url.clone()))
        .exchange_device_code()
        .add_scopes(config.scopes.iter().cloned().map(Scope::new))
        .request_async(&OAuthHttp(http.clone(), None))
        .await
        .map_err(token_error)
}

/// Polls the token endpoint until the user approves the device code elsewhere (RFC 8628 §3.4, §3.5): at the
/// interval the provider asked for, five seconds slower after each `slow_down`, and no longer than the code
/// lives (oauth2 then reports `expired_token` itself).
///
/// # Errors
/// [`Error::AccessDenied`] when the user declines; [`Error::SignInTimedOut`] when the code expires; otherwise
/// see [`token_error`].
pub async fn device_token(
    client: &OAuthClient,
    http: &reqwest::Client,
    details: &DeviceAuthorization,
) -> Result<TokenResponse> {
    let result = client
        .exchange_device_access_token(details)
        .request_async(&OAuthHttp(http.clone(), None), tokio::time::sleep, None)
        .await;
    result.map_err(|e| match &e {
        RequestTokenError::ServerResponse(response) => match response.error() {
            DeviceCodeErrorResponseType::AccessDenied => Error::AccessDenied,
            DeviceCodeErrorResponseType::ExpiredToken => Error::SignInTimedOut,
            _ => token_error(e),
        },
        _ => token_error(e),
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
    let answer = post_as_client(config, http, url, form, dpop).await?;
    let status = answer.status;
    if status.is_success() {
        return Ok(true);
    }
    // RFC 7009 §2.2.1: an error response uses the token endpoint's format.
    let body = answer.body.unwrap_or_default();
    let error: Option<BasicRevocationErrorResponse> = serde_json::from_slice(&body).ok();
    let code = error.as_ref().map(|e| e.error().as_ref().to_owned());
    if status == reqwest::StatusCode::UNAUTHORIZED || code.as_deref() == Some("invalid_client") {
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

/// POSTs `form` to `url` as the client (RFC 6749 §2.3): a client with a secret authenticates with HTTP Basic;
/// a public client names itself with `client_id`, unless the form already carries it. With a DPoP key, it
/// carries a proof (see [`crate::http::send`]).
///
/// # Errors
/// [`Error::Network`] when the request can't be made.
async fn post_as_client<'a>(
    config: &'a Config,
    http: &reqwest::Client,
    url: &Url,
    mut form: Vec<(&'a str, &'a str)>,
    dpop: Option<&DpopKey>,
) -> Result<Answer> {
    if config.client_secret.is_none() && !form.iter().any(|(name, _)| *name == "client_id") {
        form.push(("client_id", config.client_id.as_str()));
    }
    let build = || {
        let request = http.post(url.clone()).header(reqwest::header::ACCEPT, "application/json").form(&form);
        match &config.client_secret {
            Some(secret) => {
                let (id, secret) = basic_credentials(config.client_id.as_str(), secret.secret());
                request.basic_auth(id, Some(secret))
            }
            None => request,
        }
    };
    // The revocation endpoint is the authorization server's, and asks for a nonce as its token endpoint does.
    let proven = dpop.map(|key| Proven { key, token: None, refusal: NonceRefusal::TokenEndpoint });
    crate::http::send(build, "POST", url, proven).await
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
        RequestTokenError::Parse(e, _body) => {
            Error::BadResponse(format!("its token response is not valid: {}", e.path()))
        }
        RequestTokenError::Other(message) => Error::BadResponse(clean_for_display(&message, 200)),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(with("-5"), Some(Duration::ZERO));
        assert_eq!(with("null"), None);
        assert!(serde_json::from_str::<TokenResponse>(
            r#"{"access_token":"at","token_type":"bearer","expires_in":"soon"}"#
        )
        .is_err());
    }

    /// Generated token responses (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// An `expires_in` as providers send it, and what it must be read as: `Some(Some(n))` seconds, `Some(None)`
        /// for absent, `None` for a value to refuse.
        fn expires_in() -> impl Strategy<Value = (serde_json::Value, Option<Option<u64>>)> {
            let read = |x: f64| if x.is_finite() { Some(Some(x.max(0.0) as u64)) } else { None };
            prop_oneof![
                any::<u64>().prop_map(|n| (serde_json::json!(n), Some(Some(n)))),
                any::<i64>().prop_map(move |n| (serde_json::json!(n), Some(Some(n.max(0) as u64)))),
                any::<f64>()
                    .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
                    .prop_map(move |x| (serde_json::json!(x), read(x))),
                (-1e6f64..1e12).prop_map(move |x| (serde_json::json!(x.to_string()), read(x))),
                "[a-z ]{1,10}".prop_map(|text| (serde_json::json!(text), None)),
                Just((serde_json::Value::Null, Some(None))),
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
                let parsed = serde_json::from_value::<TokenResponse>(body);
                match expected {
                    Some(seconds) => {
                        let tokens = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(tokens.expires_in().map(|d| d.as_secs()), seconds);
                    }
                    None => prop_assert!(parsed.is_err()),
                }
            }
        }
    }
}
