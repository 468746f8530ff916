//! Calls to protected resources with the access token: as a Bearer credential (RFC 6750 §2.1), or for a
//! DPoP-bound token as a DPoP credential with a proof of the key (RFC 9449 §7.1).

use oauth2::AccessToken;
use url::Url;

use crate::auth::dpop::{self, DpopKey};
use crate::error::{Error, Result};
use crate::http;

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
pub async fn get_json(
    client: &reqwest::Client,
    url: &Url,
    token: &AccessToken,
    dpop: Option<&DpopKey>,
) -> Result<Fetched> {
    let mut retried = false;
    let response = loop {
        let request = client.get(url.clone()).header(reqwest::header::ACCEPT, "application/json");
        let request = match dpop {
            None => request.bearer_auth(token.secret()),
            Some(key) => request
                .header(reqwest::header::AUTHORIZATION, format!("DPoP {}", token.secret()))
                .header(dpop::DPOP_HEADER, key.proof("GET", url, Some(token))?),
        };
        let response = request.send().await.map_err(|e| Error::Network(http::describe_transport_error(&e)))?;
        let new_nonce = dpop.is_some() && dpop::remember_nonce(url, response.headers());
        // RFC 9449 §9: a 401 with `error="use_dpop_nonce"` and a DPoP-Nonce header: again, once, with it.
        if new_nonce && !retried && response.status() == reqwest::StatusCode::UNAUTHORIZED && asks_for_nonce(&response)
        {
            retried = true;
            continue;
        }
        break response;
    };
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Ok(Fetched::Unauthorized);
    }
    if !status.is_success() {
        return Err(Error::BadResponse(format!("the resource answered HTTP {}", status.as_u16())));
    }
    let body = http::read_body(response).await?;
    serde_json::from_slice(&body)
        .map(Fetched::Json)
        .map_err(|_| Error::BadResponse("the resource did not answer with JSON".into()))
}

/// Whether a 401's `WWW-Authenticate` challenge is DPoP's `use_dpop_nonce` (RFC 9449 §9).
fn asks_for_nonce(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.trim_start().starts_with("DPoP") && v.contains("use_dpop_nonce")))
}
