//! Calls to protected resources with the access token as a Bearer credential (RFC 6750 §2.1).

use oauth2::AccessToken;
use url::Url;

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

/// GETs `url` with the access token and parses the JSON answer.
///
/// # Errors
/// [`Error::Network`] when unreachable, [`Error::BadResponse`] for any status other than 2xx and 401, or a body
/// that is not JSON.
pub async fn get_json(client: &reqwest::Client, url: &Url, token: &AccessToken) -> Result<Fetched> {
    let response = client
        .get(url.clone())
        .bearer_auth(token.secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Error::Network(http::describe_transport_error(&e)))?;
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
