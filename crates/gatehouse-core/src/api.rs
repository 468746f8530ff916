//! Calls to protected resources with the access token: as a Bearer credential (RFC 6750 §2.1), or for a
//! DPoP-bound token as a DPoP credential with a proof of the key (RFC 9449 §7.1).

use oauth2::AccessToken;
use url::Url;

use crate::dpop::DpopKey;
use crate::error::{Error, Result};
use crate::http::{self, header, Http, Method, NonceRefusal, Proven, StatusCode};

/// The result of a resource call that may need a refresh.
#[derive(Debug)]
pub enum Fetched {
    /// The resource's JSON.
    Json(serde_json::Value),
    /// HTTP 401: the token was not accepted (RFC 6750 §3.1); refresh and retry once.
    Unauthorized,
}

/// GETs `url` with the access token (bound to `dpop`, if given) and parses the JSON answer.
///
/// # Errors
/// [`Error::Network`] when unreachable, [`Error::BadResponse`] for any status other than 2xx and 401, or a body
/// that is not JSON.
pub async fn get_json(client: &Http, url: &Url, token: &AccessToken, dpop: Option<&DpopKey>) -> Result<Fetched> {
    let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
    let request =
        http::request(Method::GET, url).header(header::AUTHORIZATION, http::credential(scheme, token.secret())?);
    let proven = dpop.map(|key| Proven { key, token: Some(token), refusal: NonceRefusal::Resource });
    let answer = http::send(client, http::with_body(request, Vec::new())?, proven).await?;
    // RFC 9449 §9: a 401 that asks for a nonce is no refused token, even when the retry with the nonce it gave
    // is answered the same way (a resource that changes its nonce on every request): renewing the token would
    // spend a refresh grant and change nothing.
    if dpop.is_some() && NonceRefusal::Resource.matches(&answer) {
        return Err(Error::BadResponse("the resource keeps asking for a new DPoP nonce".into()));
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        return Ok(Fetched::Unauthorized);
    }
    if !answer.status.is_success() {
        return Err(Error::BadResponse(format!("the resource answered HTTP {}", answer.status.as_u16())));
    }
    let body = answer.body?;
    serde_json::from_slice(&body)
        .map(Fetched::Json)
        .map_err(|_| Error::BadResponse("the resource did not answer with JSON".into()))
}
