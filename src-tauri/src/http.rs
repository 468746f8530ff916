//! The one HTTP client Gatehouse uses, and bounded reading of what comes back.
//!
//! Redirects are never followed: a token endpoint that redirects could forward the code, verifier or refresh
//! token elsewhere (oauth2 crate docs on SSRF; RFC 9700 §4.11). Every request has a deadline.

use std::time::Duration;

use crate::error::{Error, Result};

/// The most Gatehouse reads of any response: metadata, tokens and the resource are all far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// Builds the shared client. `timeout` bounds one request, from connect to last byte.
///
/// # Errors
/// [`Error::Internal`] if the TLS backend cannot start.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))
}

/// Describes a transport failure for the user, without the URL's query (which could hold a secret).
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "the connection was refused or failed".into()
    } else if e.is_redirect() {
        "it answered with a redirect".into()
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off".into()
    } else {
        "the request failed".into()
    }
}

/// Reads at most [`MAX_BODY`] bytes of a response body.
///
/// # Errors
/// [`Error::Network`] when the body cannot be read, [`Error::BadResponse`] when it is too large.
pub async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|len| len > MAX_BODY as u64) {
        return Err(Error::BadResponse("the answer is too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::Network(describe_transport_error(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::BadResponse("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
