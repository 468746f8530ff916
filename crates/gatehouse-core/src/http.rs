//! The one HTTP client Gatehouse uses, and bounded reading of what comes back.
//!
//! - Redirects are never followed: a token endpoint that redirects could forward the code, verifier or refresh
//!   token elsewhere (oauth2 crate docs on SSRF; RFC 9700 §4.11).
//! - Every request has a deadline, and no answer is read past [`MAX_BODY`], the token endpoint's included
//!   ([`OAuthHttp`] is the HTTP client handed to `oauth2`).
//! - Loopback endpoints are never proxied: the plain-http exception for loopback (RFC 8252 §8.3) holds only
//!   while the traffic stays on this machine. Other requests honour the usual proxy variables.
//! - Server certificates are checked against the bundled roots and the OS certificate store, so an enterprise
//!   TLS-inspecting proxy whose root the OS trusts works. The store is read at the first request, so a call
//!   that makes none (a fresh token handed out) reads no certificates.
//!
//! Every request goes through a [`Transport`]: [`Http::system`] is the real one, and a test gives its own to play
//! a provider's part without a network.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use oauth2::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use crate::error::{Error, Result};

/// The most Gatehouse reads of any response: metadata, tokens and the resource are all far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request as it goes out: the type `oauth2` hands its HTTP client, with the whole body.
pub type Request = oauth2::HttpRequest;

/// A future a [`Transport`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What carries Gatehouse's requests: the network ([`Http::system`]), or a test's provider.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and reads its answer, the body no further than [`MAX_BODY`].
    ///
    /// # Errors
    /// [`Error::Network`] when no answer came.
    fn send(&self, request: Request) -> BoxFuture<'_, Result<Answer>>;

    /// Whether something listens where `url` points (see [`reachable`]).
    ///
    /// # Errors
    /// [`Error::Network`] when nothing does.
    fn probe<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<()>>;
}

/// The HTTP client a service and setup share: a [`Transport`], cheap to clone.
#[derive(Clone)]
pub struct Http(Arc<dyn Transport>);

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http")
    }
}

impl Http {
    /// The network, with the rules above. `timeout` bounds one request, from connect to last byte. Nothing is
    /// set up until the first request.
    pub fn system(timeout: Duration) -> Http {
        Http::new(System { timeout, client: OnceLock::new() })
    }

    /// Requests carried by `transport`.
    pub fn new(transport: impl Transport) -> Http {
        Http(Arc::new(transport))
    }

    /// Sends `request` and reads its answer (see [`Transport::send`]).
    ///
    /// # Errors
    /// [`Error::Network`] when no answer came.
    pub async fn send(&self, request: Request) -> Result<Answer> {
        self.0.send(request).await
    }

    /// Whether something listens where `url` points (see [`reachable`]).
    ///
    /// # Errors
    /// [`Error::Network`] naming the host and port when nothing does.
    pub async fn reachable(&self, url: &Url) -> Result<()> {
        self.0.probe(url).await
    }
}

/// A request for `url` that asks for JSON, its body to come.
pub fn request(method: Method, url: &Url) -> oauth2::http::request::Builder {
    oauth2::http::Request::builder().method(method).uri(url.as_str()).header(header::ACCEPT, "application/json")
}

/// `builder`'s request with `body`.
///
/// # Errors
/// [`Error::Internal`] when a part of it isn't valid in a request.
pub fn with_body(builder: oauth2::http::request::Builder, body: Vec<u8>) -> Result<Request> {
    builder.body(body).map_err(|e| Error::Internal(format!("HTTP request: {e}")))
}

/// `request`'s body and type for a form (`application/x-www-form-urlencoded`, RFC 6749 Appendix B).
///
/// # Errors
/// As [`with_body`].
pub fn with_form<'a>(
    builder: oauth2::http::request::Builder,
    form: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Request> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    with_body(builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"), body.into_bytes())
}

/// An `Authorization` header value, marked sensitive so that nothing prints it.
///
/// # Errors
/// [`Error::Internal`] for a value that can't be a header's (a token with a line break).
pub fn credential(scheme: &str, value: &str) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(&format!("{scheme} {value}"))
        .map_err(|_| Error::Internal("a credential that can't go in a header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// The network, through `reqwest`, its client made at the first request.
struct System {
    timeout: Duration,
    client: OnceLock<std::result::Result<reqwest::Client, String>>,
}

impl System {
    fn client(&self) -> Result<&reqwest::Client> {
        self.client.get_or_init(|| shared_client(self.timeout)).as_ref().map_err(|e| Error::Internal(e.clone()))
    }
}

/// The process's client for `timeout`, made once and shared by every profile with that timeout: one set of TLS
/// roots and one connection pool, not one per profile (ten signed-in profiles would otherwise read and hold the
/// system's certificates ten times).
fn shared_client(timeout: Duration) -> std::result::Result<reqwest::Client, String> {
    static CLIENTS: std::sync::Mutex<Vec<(Duration, reqwest::Client)>> = std::sync::Mutex::new(Vec::new());
    let mut clients = CLIENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, client)) = clients.iter().find(|(made_for, _)| *made_for == timeout) {
        return Ok(client.clone());
    }
    let client = build_client(timeout)?;
    clients.push((timeout, client.clone()));
    Ok(client)
}

impl Transport for System {
    fn send(&self, request: Request) -> BoxFuture<'_, Result<Answer>> {
        Box::pin(async move {
            let client = self.client()?;
            let request =
                reqwest::Request::try_from(request).map_err(|e| Error::Internal(format!("HTTP request: {e}")))?;
            let response = client.execute(request).await.map_err(|e| Error::Network(describe_transport_error(&e)))?;
            let (status, headers) = (response.status(), response.headers().clone());
            Ok(Answer { status, headers, body: read_body(response).await })
        })
    }

    fn probe<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<()>> {
        Box::pin(reachable(url))
    }
}

/// Builds the `reqwest` client. `timeout` bounds one request, from connect to last byte.
fn build_client(timeout: Duration) -> std::result::Result<reqwest::Client, String> {
    let proxies = ProxyEnv::from_env(|name| std::env::var(name).ok());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
        // Replace reqwest's own reading of the proxy variables, which would proxy 127.0.0.1 too.
        .no_proxy()
        .proxy(reqwest::Proxy::custom(move |url| proxies.proxy_for(url)).no_proxy(reqwest::NoProxy::from_env()))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The proxy variables, read once when the client is built, as curl and reqwest read them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ProxyEnv {
    by_scheme: HashMap<&'static str, Url>,
}

impl ProxyEnv {
    fn from_env(var: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: &[&str]| {
            names.iter().filter_map(|name| var(name)).find(|value| !value.trim().is_empty()).and_then(|value| {
                // A bare host:port means http://host:port, as curl reads it.
                let value = if value.contains("://") { value } else { format!("http://{value}") };
                Url::parse(&value).ok()
            })
        };
        // Under CGI, HTTP_PROXY can be set by a request header ("httpoxy"), so only the lowercase name counts.
        let cgi = var("REQUEST_METHOD").is_some();
        let http_names: &[&str] = if cgi {
            &["http_proxy", "all_proxy", "ALL_PROXY"]
        } else {
            &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        };
        let mut by_scheme = HashMap::new();
        if let Some(proxy) = first(http_names) {
            by_scheme.insert("http", proxy);
        }
        if let Some(proxy) = first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]) {
            by_scheme.insert("https", proxy);
        }
        ProxyEnv { by_scheme }
    }

    /// The proxy for `target`: none for a loopback host, whatever the variables say.
    fn proxy_for(&self, target: &Url) -> Option<Url> {
        if is_loopback(target) || names_localhost(target) {
            return None;
        }
        self.by_scheme.get(target.scheme()).cloned()
    }
}

/// Whether `url` names this machine by a loopback IP literal (`127.0.0.0/8`, `[::1]`). Never by a name: a
/// resolver may send `localhost` or `*.localhost` elsewhere (RFC 8252 §8.3), so a name is treated like any host.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(_)) | None => false,
    }
}

/// Whether `url` names `localhost` or a name under it (RFC 6761 §6.3): this machine by intent, though a resolver
/// may disagree, so such a name is never trusted as loopback (see [`is_loopback`]).
pub fn names_localhost(url: &Url) -> bool {
    url.host_str().is_some_and(|host| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "localhost" || host.ends_with(".localhost")
    })
}

/// Describes a transport failure for the user, without the URL's query (which could hold a secret).
fn describe_transport_error(e: &reqwest::Error) -> String {
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

/// Whether something listens where `url` points, checked by opening (and closing) a TCP connection, so that a
/// sign-in doesn't send the browser to a provider that is down. Behind a proxy the browser may reach what this
/// computer can't, so nothing is checked then.
///
/// # Errors
/// [`Error::Network`] naming the host and port when its name isn't found or nothing answers there.
pub async fn reachable(url: &Url) -> Result<()> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(4);
    let proxied = ["https_proxy", "http_proxy", "all_proxy"]
        .iter()
        .any(|name| std::env::var_os(name).or_else(|| std::env::var_os(name.to_uppercase())).is_some());
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return Ok(()) };
    if proxied {
        return Ok(());
    }
    let shown = url.port().map_or_else(|| host.to_owned(), |port| format!("{host}:{port}"));
    let host = host.trim_matches(['[', ']']);
    let connect = async {
        for address in tokio::net::lookup_host((host, port)).await.ok()? {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Some(());
            }
        }
        None
    };
    match tokio::time::timeout(PATIENCE, connect).await {
        Ok(Some(())) => Ok(()),
        // A slow network is not a down provider: the browser is given its chance.
        Err(_) => Ok(()),
        Ok(None) => Err(Error::Network(format!("nothing answers at {shown} (is the provider running?)"))),
    }
}

/// Reads at most [`MAX_BODY`] bytes of a response body.
///
/// # Errors
/// [`Error::Network`] when the body cannot be read, [`Error::BadResponse`] when it is too large.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|len| len > MAX_BODY as u64) {
        return Err(Error::BadResponse(TOO_LARGE.into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::Network(describe_transport_error(&e)))? {
        if body.len().saturating_add(chunk.len()) > MAX_BODY {
            return Err(Error::BadResponse(TOO_LARGE.into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const TOO_LARGE: &str = "the answer is too large";

/// Why a request made for `oauth2` failed. It carries [`Error`] so that the caller gets the same typed
/// error as from any other request.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthHttpError(pub Error);

/// The HTTP client handed to `oauth2` for the token endpoint: the shared client, its deadline, and a body read
/// no further than [`MAX_BODY`]. (`oauth2`'s own reqwest adapter reads the whole body, however large.) With a
/// DPoP key, each request carries a fresh proof (RFC 9449 §5), and one refused with `use_dpop_nonce` is sent
/// again once with the nonce the server gave (§8).
#[derive(Debug, Clone)]
pub struct OAuthHttp(pub Http, pub Option<crate::dpop::DpopKey>);

type OAuthResult = std::result::Result<oauth2::HttpResponse, OAuthHttpError>;

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = OAuthResult> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send_for_oauth(&self.0, self.1.as_ref(), request))
    }
}

async fn send_for_oauth(http: &Http, dpop: Option<&crate::dpop::DpopKey>, request: Request) -> OAuthResult {
    let proven = dpop.map(|key| Proven { key, token: None, refusal: NonceRefusal::TokenEndpoint });
    let answer = send(http, request, proven).await.map_err(OAuthHttpError)?;
    let body = answer.body.map_err(OAuthHttpError)?;
    let (status, body, json) = token_answer(answer.status, body);
    let mut response = oauth2::HttpResponse::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = answer.headers;
    if json {
        // `oauth2` refuses any other media type, but the body is what it is, whatever its label.
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(response)
}

/// A token endpoint's answer read by what it is rather than by its labels: a body with an `access_token` is a
/// token response (RFC 6749 §5.1) whatever the status, and one with an `error` (and no token) is an error
/// response (§5.2) whatever the status: §5.2 says 400, but GitHub answers errors with 200. A form-encoded body
/// (GitHub's default, and older providers') is read as the JSON it stands for. Returns the status `oauth2`
/// should see, the body as JSON where it is one, and whether it is.
fn token_answer(status: StatusCode, body: Vec<u8>) -> (StatusCode, Vec<u8>, bool) {
    let fields = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(_) => return (status, body, true),
        Err(_) => match form_fields(&body) {
            Some(fields) => fields,
            None => return (status, body, false),
        },
    };
    let mut fields = fields;
    read_as_meant(&mut fields);
    let status = if fields.contains_key("access_token") {
        StatusCode::OK
    } else if status.is_success() && fields.get("error").is_some_and(serde_json::Value::is_string) {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let body = serde_json::to_vec(&fields).unwrap_or(body);
    (status, body, true)
}

/// Fields of a token or device authorization answer (RFC 6749 §5.1, RFC 8628 §3.2) read as what they mean
/// rather than as the provider typed them: lifetimes and intervals sent as strings (`"expires_in": "3600"`, as a
/// form-encoded answer always has them) are the numbers they spell, and the older draft's `verification_url`
/// (Google's, Entra v1's) is `verification_uri`. A value that isn't a number is left, for `oauth2` to refuse by
/// name.
fn read_as_meant(fields: &mut serde_json::Map<String, serde_json::Value>) {
    for key in ["expires_in", "interval", "refresh_expires_in"] {
        let number =
            fields.get(key).and_then(serde_json::Value::as_str).and_then(|text| text.trim().parse::<u64>().ok());
        if let Some(number) = number {
            fields.insert(key.to_owned(), number.into());
        }
    }
    for (alias, name) in
        [("verification_url", "verification_uri"), ("verification_url_complete", "verification_uri_complete")]
    {
        // Both, and the standard name wins (two would be a duplicate field to a reader that takes either).
        if let Some(value) = fields.remove(alias) {
            fields.entry(name.to_owned()).or_insert(value);
        }
    }
}

/// An `application/x-www-form-urlencoded` token or error response, as the JSON object of strings it stands
/// for; `None` unless it names an `access_token` or an `error`.
fn form_fields(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.contains(['{', '<', ' ', '\n']) {
        return None;
    }
    let fields: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    (fields.contains_key("access_token") || fields.contains_key("error")).then_some(fields)
}

/// An answer, with its body read (no further than [`MAX_BODY`]). Reading the body can fail on its own; a caller
/// that needs only the status leaves that alone.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, or why it couldn't be read.
    pub body: Result<Vec<u8>>,
}

/// How a request is proven with a DPoP key (RFC 9449).
pub struct Proven<'a> {
    /// The key.
    pub key: &'a crate::dpop::DpopKey,
    /// The access token sent with the request, whose hash the proof carries (`ath`).
    pub token: Option<&'a oauth2::AccessToken>,
    /// How the server says it wants a nonce first.
    pub refusal: NonceRefusal,
}

/// How a server refuses a DPoP request for want of a nonce.
#[derive(Debug, Clone, Copy)]
pub enum NonceRefusal {
    /// An authorization server: HTTP 400 with the error `use_dpop_nonce` (RFC 9449 §8).
    TokenEndpoint,
    /// A resource: HTTP 401 with a DPoP challenge naming `use_dpop_nonce` (RFC 9449 §9).
    Resource,
}

impl NonceRefusal {
    /// The server whose nonces these are.
    fn server(self) -> crate::dpop::Server {
        match self {
            NonceRefusal::TokenEndpoint => crate::dpop::Server::Authorization,
            NonceRefusal::Resource => crate::dpop::Server::Resource,
        }
    }

    /// Whether `answer` is a request refused for want of a (new) nonce, rather than a refused token.
    pub fn matches(self, answer: &Answer) -> bool {
        match self {
            NonceRefusal::TokenEndpoint => {
                answer.status == StatusCode::BAD_REQUEST
                    && answer.body.as_deref().ok().and_then(error_code).as_deref() == Some("use_dpop_nonce")
            }
            // RFC 9449 §9 says a DPoP challenge naming `use_dpop_nonce`; resources also say it with a Bearer
            // challenge, or with none at all. A 401 that brings a nonce (`send` retries only when the nonce is
            // new) is asked once more with it, whatever its challenge says, before the token is taken for
            // refused and a grant spent on renewing it.
            NonceRefusal::Resource => {
                answer.status == StatusCode::UNAUTHORIZED
                    && (answer.headers.contains_key(crate::dpop::NONCE_HEADER)
                        || answer
                            .headers
                            .get_all(header::WWW_AUTHENTICATE)
                            .iter()
                            .any(|value| value.to_str().is_ok_and(|v| v.contains("use_dpop_nonce"))))
            }
        }
    }
}

/// Sends `request` and reads the answer. With `proven`, each attempt carries a fresh proof of its key (RFC 9449
/// §4), the server's latest nonce is kept for later proofs, and a request refused for want of a nonce is sent
/// once more, with the nonce the server gave (§8, §9).
///
/// # Errors
/// [`Error::Network`] when the request can't be made; [`Error::Internal`] when a proof can't be signed.
pub async fn send(http: &Http, request: Request, proven: Option<Proven<'_>>) -> Result<Answer> {
    let Some(proven) = proven else { return http.send(request).await };
    let (parts, body) = request.into_parts();
    let url = Url::parse(&parts.uri.to_string()).map_err(|e| Error::Internal(format!("request URL: {e}")))?;
    let mut retried = false;
    loop {
        let mut request = Request::from_parts(parts.clone(), body.clone());
        let proof = proven.key.proof(parts.method.as_str(), &url, proven.token, proven.refusal.server())?;
        let proof = HeaderValue::from_str(&proof).map_err(|_| Error::Internal("a DPoP proof header".into()))?;
        request.headers_mut().insert(crate::dpop::DPOP_HEADER, proof);
        let answer = http.send(request).await?;
        let new_nonce = crate::dpop::remember_nonce(&url, proven.refusal.server(), &answer.headers);
        if new_nonce && !retried && proven.refusal.matches(&answer) {
            retried = true;
            continue;
        }
        return Ok(answer);
    }
}

/// The `error` of an error response body (RFC 6749 §5.2), if it is one.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["error"].as_str().map(str::to_owned)
}

/// A provider played by a unit test: canned answers by method and path, and every request it was sent.
#[cfg(test)]
pub(crate) mod scripted {
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A request as the provider saw it: method, path, and the body as text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub body: String,
    }

    /// A status and a body.
    type Canned = (u16, String);

    /// Answers by `"METHOD /path"`, each list given out in order; a request with no answer left fails as a
    /// network error would.
    #[derive(Clone, Default)]
    pub struct Scripted {
        answers: Arc<Mutex<HashMap<String, VecDeque<Canned>>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Scripted {
        pub fn new() -> Scripted {
            Scripted::default()
        }

        /// Answers the next request to `route` (`"POST /token"`) with `status` and the JSON `body`.
        pub fn on(self, route: &str, status: u16, body: serde_json::Value) -> Scripted {
            self.answers.lock().unwrap().entry(route.to_owned()).or_default().push_back((status, body.to_string()));
            self
        }

        /// The client to hand the code under test, and this provider to ask what it saw.
        pub fn start(self) -> (Http, Scripted) {
            (Http::new(self.clone()), self)
        }

        pub fn requests(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Transport for Scripted {
        fn send(&self, request: Request) -> BoxFuture<'_, Result<Answer>> {
            let (parts, body) = request.into_parts();
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let route = format!("{} {}", seen.method, seen.path);
            self.seen.lock().unwrap().push(seen);
            let answer = self.answers.lock().unwrap().get_mut(&route).and_then(VecDeque::pop_front);
            Box::pin(async move {
                let (status, body) = answer.ok_or_else(|| Error::Network(format!("nothing scripted for {route}")))?;
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let status = StatusCode::from_u16(status).map_err(|e| Error::Internal(e.to_string()))?;
                Ok(Answer { status, headers, body: Ok(body.into_bytes()) })
            })
        }

        fn probe<'a>(&'a self, _url: &'a Url) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_env(|name| vars.get(name).cloned())
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    /// A resource that wants a nonce may say so with a Bearer challenge, or with no challenge: a 401 that brings
    /// a `DPoP-Nonce` is one, and so is a DPoP challenge naming `use_dpop_nonce`; a plain 401 is a refused token.
    #[test]
    fn a_resource_asks_for_a_nonce_in_other_words_too() {
        let answer = |headers: &[(&str, &str)]| Answer {
            status: StatusCode::UNAUTHORIZED,
            headers: headers.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect(),
            body: Ok(Vec::new()),
        };
        let wants = |headers: &[(&str, &str)]| NonceRefusal::Resource.matches(&answer(headers));
        assert!(wants(&[("www-authenticate", "DPoP error=\"use_dpop_nonce\""), ("dpop-nonce", "n1")]));
        assert!(wants(&[("www-authenticate", "Bearer error=\"invalid_token\""), ("dpop-nonce", "n1")]));
        assert!(wants(&[("dpop-nonce", "n1")]));
        assert!(wants(&[("www-authenticate", "Bearer error=\"use_dpop_nonce\"")]));
        assert!(!wants(&[("www-authenticate", "DPoP error=\"invalid_token\"")]));
        assert!(!wants(&[]));
    }

    #[test]
    fn loopback_is_never_proxied() {
        let proxies = env(&[("HTTP_PROXY", "http://proxy.example:3128"), ("ALL_PROXY", "http://all.example:1")]);
        for target in [
            "http://127.0.0.1:4470/token",
            "http://127.8.9.10/token",
            "http://[::1]:4470/token",
            "http://localhost:4470/token",
            "http://LOCALHOST./token",
            "http://id.localhost/token",
        ] {
            assert_eq!(proxies.proxy_for(&url(target)), None, "{target}");
        }
        assert_eq!(proxies.proxy_for(&url("http://id.example.com/token")), Some(url("http://proxy.example:3128")));
        assert_eq!(proxies.proxy_for(&url("https://id.example.com/token")), Some(url("http://all.example:1")));
    }

    #[test]
    fn reads_the_variables_as_curl_does() {
        let proxies = env(&[("https_proxy", "proxy.example:8080"), ("HTTPS_PROXY", "http://ignored.example")]);
        assert_eq!(proxies.proxy_for(&url("https://a.example/")), Some(url("http://proxy.example:8080")));
        assert_eq!(proxies.proxy_for(&url("http://a.example/")), None);
        // httpoxy: under CGI, a request header could have set HTTP_PROXY.
        let cgi = env(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil.example")]);
        assert_eq!(cgi.proxy_for(&url("http://a.example/")), None);
        assert_eq!(env(&[("HTTP_PROXY", " ")]), ProxyEnv::default());
    }

    /// A device authorization answer with its numbers as strings and the older draft's names is read as the
    /// RFC 8628 §3.2 answer it stands for, and `oauth2` takes it.
    #[test]
    fn device_answers_are_read_by_what_they_are() {
        let body = br#"{"device_code":"d","user_code":"ABCD-EFGH","verification_url":"https://id.example/device","expires_in":"1800","interval":"5"}"#;
        let (status, body, json) = token_answer(StatusCode::OK, body.to_vec());
        assert_eq!((status.as_u16(), json), (200, true));
        let details: oauth2::StandardDeviceAuthorizationResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(details.verification_uri().as_str(), "https://id.example/device");
        assert_eq!(details.expires_in(), std::time::Duration::from_secs(1800));
        assert_eq!(details.interval(), std::time::Duration::from_secs(5));
        // Where both names come, the standard one is kept.
        let both = br#"{"device_code":"d","user_code":"U","verification_uri":"https://a.example/","verification_url":"https://b.example/","expires_in":60}"#;
        let (_, body, _) = token_answer(StatusCode::OK, both.to_vec());
        let details: oauth2::StandardDeviceAuthorizationResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(details.verification_uri().as_str(), "https://a.example/");
    }

    #[test]
    fn token_answers_are_read_by_what_they_are() {
        let read = |status: u16, body: &str| {
            let (status, body, json) = token_answer(StatusCode::from_u16(status).unwrap(), body.into());
            (status.as_u16(), String::from_utf8(body).unwrap(), json)
        };
        // GitHub: errors with 200.
        assert_eq!(read(200, r#"{"error":"bad_refresh_token"}"#).0, 400);
        // Tokens are tokens whatever the status; an odd extra `error` doesn't change that.
        assert_eq!(read(201, r#"{"access_token":"a","token_type":"bearer"}"#).0, 200);
        assert_eq!(read(200, r#"{"access_token":"a","error":"odd"}"#).0, 200);
        // Real error statuses stay; a non-string error is no error response.
        assert_eq!(read(401, r#"{"error":"invalid_client"}"#).0, 401);
        assert_eq!(read(200, r#"{"error":42}"#).0, 200);
        // Form-encoded answers become JSON.
        let (status, body, json) = read(200, "access_token=a%2Bb&token_type=bearer&scope=repo%2Cgist");
        assert_eq!((status, json), (200, true));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["access_token"], "a+b");
        assert_eq!(read(200, "error=bad_verification_code").0, 400);
        // Anything else is left for the caller to refuse.
        assert_eq!(read(200, "not json"), (200, "not json".into(), false));
        assert_eq!(read(502, "<html>bad gateway</html>"), (502, "<html>bad gateway</html>".into(), false));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback(&url("http://127.0.0.1")));
        assert!(is_loopback(&url("http://[::1]")));
        assert!(!is_loopback(&url("http://[::2]")));
        assert!(!is_loopback(&url("http://localhost.example.com")));
        assert!(!is_loopback(&url("http://localhost:8080")), "a name, which a resolver may send elsewhere");
        assert!(!is_loopback(&url("http://reg.localhost/x")));
        assert!(!is_loopback(&url("http://10.0.0.1")));
    }
}
