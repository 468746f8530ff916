//! Narrowed tokens: an access token for one resource (RFC 8707) or for fewer scopes (RFC 6749 §6), asked for
//! with the session's refresh token ([`super::flow::refresh`]) or by token exchange (RFC 8693), and the checks
//! that what came back is no broader than what was asked. The session's own token is never handed out instead.

use std::collections::BTreeSet;

use base64::Engine as _;
use oauth2::{AccessToken, TokenResponse as _};
use url::Url;

use super::flow::{client_auth, post_as_client, Provider, TokenResponse};
use crate::config::{Config, ProviderEndpoints};
use crate::error::{clean_for_display, Error, NarrowError, Result};
use crate::tokens::Narrowing;

/// The grant type of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an access token (RFC 8693 §3).
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Refuses, before any request, a narrowing `config` doesn't allow: a resource not in its `resources`
/// (compared as parsed URIs, RFC 3986 §6.2.2), or a scope it doesn't sign in with (RFC 6749 §6: a refresh may
/// ask for fewer scopes, never others).
///
/// # Errors
/// [`NarrowError::NotListed`], [`NarrowError::ScopeNotAsked`].
pub fn allowed(config: &Config, to: &Narrowing) -> std::result::Result<(), NarrowError> {
    if let Some(resource) = &to.resource {
        if !config.resources.contains(resource) {
            return Err(NarrowError::NotListed { resource: resource.to_string(), profile: config.profile.clone() });
        }
    }
    match to.scopes.iter().find(|scope| !config.scopes.contains(scope)) {
        Some(scope) => {
            Err(NarrowError::ScopeNotAsked { scope: clean_for_display(scope, 64), profile: config.profile.clone() })
        }
        None => Ok(()),
    }
}

/// Whether `endpoints` list token exchange among their grant types (RFC 8414 §2 `grant_types_supported`).
pub fn exchange_listed(endpoints: &ProviderEndpoints) -> bool {
    endpoints.advertised.grant_types.as_ref().is_some_and(|types| types.iter().any(|t| t == TOKEN_EXCHANGE))
}

/// Exchanges the session's access token `subject` for one narrowed to `to` (RFC 8693 §2.1), authenticating as
/// at the token endpoint.
///
/// # Errors
/// [`NarrowError::ExchangeRefused`] with the provider's `error` (§2.2.2); [`NarrowError::NotAnAccessToken`] when
/// it issues something else (§2.2.1 `issued_token_type`); [`Error::Network`], [`Error::BadResponse`].
pub async fn exchange(provider: Provider<'_>, subject: &AccessToken, to: &Narrowing) -> Result<TokenResponse> {
    let scope = to.scopes.join(" ");
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.secret().as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
    ];
    if let Some(resource) = &to.resource {
        form.push(("resource", resource.as_str()));
    }
    if !scope.is_empty() {
        form.push(("scope", scope.as_str()));
    }
    let auth = client_auth(provider.config, provider.endpoints)?;
    let answer = post_as_client(provider.config, auth, provider.http, &provider.endpoints.token, form, None).await?;
    let body = answer.body?;
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        Error::BadResponse(format!("its token exchange answered HTTP {} with no JSON", answer.status.as_u16()))
    })?;
    if !answer.status.is_success() || value.get("access_token").is_none() {
        let code = value["error"].as_str().map_or_else(|| format!("HTTP {}", answer.status.as_u16()), str::to_owned);
        return Err(NarrowError::ExchangeRefused { code: clean_for_display(&code, 64) }.into());
    }
    match value["issued_token_type"].as_str() {
        Some(ACCESS_TOKEN_TYPE) => {}
        other => {
            let got = other.map_or_else(|| "token of no stated type".to_owned(), |t| clean_for_display(t, 80));
            return Err(NarrowError::NotAnAccessToken { got }.into());
        }
    }
    let tokens = TokenResponse::from_json(value).map_err(|e| Error::BadResponse(clean_for_display(&e, 200)))?;
    tokens.check_usable(false)?;
    Ok(tokens)
}

/// Whether `tokens`, the answer to a request for a token narrowed to `to`, is no broader than asked:
/// - its scopes, as the answer states them or as a JWT access token's `scope` claim does (RFC 9068 §2.2.3), are
///   among those asked (RFC 6749 §5.1: an answer that states none was granted what was asked);
/// - for a resource, the token is a JWT whose `aud` names it (RFC 9068 §3, RFC 8707 §2), and none of the profile's
///   `others` resources: a token that doesn't say who it is for, or is for several, can't be told from a broad
///   one, so it is refused;
/// - it isn't `session`'s own access token.
///
/// # Errors
/// [`NarrowError::TooBroad`], [`NarrowError::WrongAudience`], [`NarrowError::AudienceUnknown`].
pub fn check(
    tokens: &TokenResponse,
    to: &Narrowing,
    session: Option<&AccessToken>,
    others: &[Url],
) -> std::result::Result<(), NarrowError> {
    let asked: BTreeSet<&str> = to.scopes.iter().map(String::as_str).collect();
    let claims = jwt_claims(tokens.access_token());
    let stated_scopes =
        tokens.scopes().map(|scopes| scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>()).into_iter().chain(
            claims
                .as_ref()
                .and_then(|c| c["scope"].as_str())
                .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        );
    for stated in stated_scopes {
        if !asked.is_empty() && stated.iter().any(|scope| !asked.contains(scope.as_str())) {
            return Err(NarrowError::TooBroad {
                asked: to.scopes.join(" "),
                got: clean_for_display(&stated.join(" "), 200),
            });
        }
    }
    if session.is_some_and(|own| own.secret() == tokens.access_token().secret()) {
        let got = "the session's own token".to_owned();
        return Err(NarrowError::TooBroad { asked: to.scopes.join(" "), got });
    }
    let Some(resource) = &to.resource else { return Ok(()) };
    let audiences: Vec<String> = match claims.as_ref().map(|c| &c["aud"]) {
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        Some(serde_json::Value::Array(many)) => many.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        _ => return Err(NarrowError::AudienceUnknown { resource: resource.to_string() }),
    };
    let names = |audience: &String, which: &Url| Url::parse(audience).is_ok_and(|url| &url == which);
    // A token that is also for another of the profile's resources is the broad one a provider that ignores
    // `resource` gives (the grant covers them all).
    let also_for_another =
        others.iter().filter(|other| *other != resource).any(|other| audiences.iter().any(|a| names(a, other)));
    if audiences.iter().any(|a| names(a, resource)) && !also_for_another {
        Ok(())
    } else {
        Err(NarrowError::WrongAudience {
            resource: resource.to_string(),
            got: clean_for_display(&audiences.join(", "), 200),
        })
    }
}

/// The claims of an access token that is a JWT (RFC 7519 §3: three base64url parts, the second a JSON object),
/// read without checking its signature: only to see what it claims to be for, never to trust it with anything.
fn jwt_claims(token: &AccessToken) -> Option<serde_json::Value> {
    let mut parts = token.secret().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok().filter(serde_json::Value::is_object)
}

#[cfg(test)]
mod tests;
