//! A fault-injecting proxy in front of the demo provider, for the failures a real server will not produce on
//! demand: garbage bodies, server errors, requests that never finish, oversized or altered answers. In
//! `PassThrough` it forwards every request unchanged, so the same session works through it before and after a
//! fault. It can also read the keychain at the moment a request arrives, to show what was stored *before* a
//! token was used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the requests it receives.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Forward to the provider and back.
    PassThrough,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 500 with an HTML error page.
    ServerError,
    /// Accept the request and never answer.
    Hang,
    /// Answer 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
    Unauthorized,
    /// Forward to the provider, then answer 500 instead of what it said: the provider did the work.
    ForwardThenFail,
    /// Forward, and pad the provider's (valid JSON) answer with whitespace past Gatehouse's 1 MiB limit.
    Oversized,
    /// Answer 200 with an OAuth error body, as GitHub's token endpoint does (RFC 6749 §5.2 says 400).
    ErrorAs200(&'static str),
    /// Answer this status, labelled `text/html`, with an OAuth error body.
    ErrorWithStatus(u16, &'static str),
    /// Forward, and set a claim of the ID token in the provider's answer to another string, keeping the
    /// provider's signature, which then no longer matches.
    ForgeIdTokenClaim(&'static str, &'static str),
    /// Forward, set a claim of the ID token to another string, and sign it again with the proxy's own key,
    /// which the proxy adds to the provider's JWK Set: a token whose signature verifies but whose claims lie.
    ResignIdTokenClaim(&'static str, &'static str),
    /// Forward, and name a key the provider never published in the ID token's header.
    UnknownKid,
    /// Forward, then change the provider's JSON answer with this function, as providers that bend the
    /// specifications answer (a `scope` array, no `token_type`, `expires_in: 0`, …).
    Rewrite(fn(&mut serde_json::Value)),
    /// Forward, then answer with this status and media type instead of the provider's own labels, with its
    /// body unchanged.
    Relabel(u16, &'static str),
    /// Wait this many milliseconds, then forward: a slow provider.
    Delay(u64),
    /// Answer 401 asking for a DPoP nonce (RFC 9449 §9), with a new one each time: a resource that changes its
    /// nonce on every request.
    RotatingNonce,
    /// Answer this status with this JSON body, without asking the provider: a resource that takes any token.
    Answer(u16, &'static str),
}

/// The key the proxy signs with, and publishes beside the provider's.
struct ProxyKey {
    key: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

const PROXY_KID: &str = "fault-proxy-key";

impl ProxyKey {
    fn new() -> ProxyKey {
        let pkcs8 = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("proxy key: {e}")).serialize_der();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&pkcs8);
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)
            .unwrap_or_else(|e| panic!("proxy JWK: {e}"));
        jwk.common.key_id = Some(PROXY_KID.to_owned());
        ProxyKey { key, jwk }
    }
}

/// The proxy. Dropping it stops it.
pub struct FaultProxy {
    /// The port it listens on.
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    fault: Fault,
    /// Paths whose requests get the fault; the others pass through.
    paths: Vec<String>,
    /// How many more requests get the fault; `None` for all.
    remaining: Option<usize>,
    seen: HashMap<String, usize>,
    /// The path whose requests make the proxy read the keychain entry of a profile first.
    snapshot: Option<(String, String)>,
    snapshots: Vec<Option<String>>,
    /// Whether requests go on with the proxy's own address as their `Host`.
    keep_host: bool,
}

impl FaultProxy {
    /// Starts a proxy for `upstream` (`http://127.0.0.1:PORT`) on a free port.
    pub async fn start(upstream: String) -> FaultProxy {
        FaultProxy::start_with(upstream, false).await
    }

    /// Starts a proxy that sends requests on with its own address as their `Host`, so that the provider takes
    /// it for its own: it names its endpoints by it, and checks a DPoP proof's `htu` against it (RFC 9449 §4.3).
    pub async fn start_in_front(upstream: String) -> FaultProxy {
        FaultProxy::start_with(upstream, true).await
    }

    async fn start_with(upstream: String, keep_host: bool) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("proxy: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("proxy: {e}"));
        let state = Arc::new(Mutex::new(State {
            fault: Fault::PassThrough,
            paths: Vec::new(),
            remaining: None,
            seen: HashMap::new(),
            snapshot: None,
            snapshots: Vec::new(),
            keep_host,
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("proxy client: {e}"));
        let shared = Arc::clone(&state);
        let key = Arc::new(ProxyKey::new());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, http, upstream, key) =
                    (Arc::clone(&shared), http.clone(), upstream.clone(), Arc::clone(&key));
                tokio::spawn(async move {
                    let _ = serve(stream, &state, &http, &upstream, &key).await;
                });
            }
        });
        FaultProxy { port, state, task }
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Injects `fault` into requests for `paths` from now on.
    pub fn inject(&self, fault: Fault, paths: &[&str]) {
        self.inject_times(fault, paths, None);
    }

    /// Injects `fault` into the next `times` requests for `paths` (all of them with `None`).
    pub fn inject_times(&self, fault: Fault, paths: &[&str], times: Option<usize>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.fault = fault;
        state.paths = paths.iter().map(|p| p.to_string()).collect();
        state.remaining = times;
    }

    /// From now on, reads `profile`'s keychain entry whenever a request for `path` arrives, before it is
    /// answered.
    pub fn snapshot_keychain_on(&self, path: &str, profile: &str) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).snapshot = Some((path.to_owned(), profile.to_owned()));
    }

    /// The keychain entries read so far, oldest first.
    pub fn keychain_snapshots(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).snapshots.clone()
    }

    /// How many requests for `path` arrived.
    pub fn requests(&self, path: &str) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).seen.get(path).copied().unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    state: &Mutex<State>,
    http: &reqwest::Client,
    upstream: &str,
    key: &ProxyKey,
) -> std::io::Result<()> {
    let Some((method, path, mut headers, body)) = read_request(&mut stream).await? else { return Ok(()) };
    let route = path.split('?').next().unwrap_or_default().to_owned();
    if !state.lock().unwrap_or_else(|p| p.into_inner()).keep_host {
        headers.retain(|(name, _)| name != "host");
    }
    let (fault, snapshot) = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        *state.seen.entry(route.clone()).or_default() += 1;
        let snapshot = state.snapshot.as_ref().filter(|(p, _)| *p == route).map(|(_, profile)| profile.clone());
        let fault = if state.paths.contains(&route) && state.remaining != Some(0) {
            state.remaining = state.remaining.map(|n| n - 1);
            state.fault
        } else {
            Fault::PassThrough
        };
        (fault, snapshot)
    };
    if let Some(profile) = snapshot {
        let entry = tokio::task::spawn_blocking(move || crate::keyring::lookup(&profile)).await.ok().flatten();
        state.lock().unwrap_or_else(|p| p.into_inner()).snapshots.push(entry);
    }
    let mut extra_header = String::new();
    let (status, content_type, body) = match fault {
        Fault::Garbage => (200, "text/plain".to_string(), b"<<this is not the JSON you are looking for>>".to_vec()),
        Fault::ServerError => {
            (500, "text/html".to_string(), b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec())
        }
        Fault::Unauthorized => {
            extra_header = "www-authenticate: Bearer error=\"invalid_token\"\r\n".into();
            (401, "application/json".to_string(), br#"{"error":"invalid_token"}"#.to_vec())
        }
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            return Ok(());
        }
        Fault::PassThrough if route == "/jwks" => {
            let (status, content_type, body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            (status, content_type, with_proxy_key(&body, key))
        }
        Fault::PassThrough => forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?,
        Fault::ErrorAs200(error) => {
            let body = serde_json::json!({"error": error, "error_description": "as GitHub answers it"});
            (200, "application/json".to_string(), body.to_string().into_bytes())
        }
        Fault::ErrorWithStatus(status, error) => {
            let body = serde_json::json!({"error": error, "error_description": "mislabelled"});
            (status, "text/html".to_string(), body.to_string().into_bytes())
        }
        Fault::ForwardThenFail => {
            forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            (500, "text/html".to_string(), b"<html><body><h1>500 Internal Server Error</h1></body></html>".to_vec())
        }
        Fault::Oversized => {
            let (status, content_type, mut body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            body.resize(body.len() + 1024 * 1024 + 1, b' ');
            (status, content_type, body)
        }
        Fault::ForgeIdTokenClaim(claim, value) => {
            let (status, content_type, body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            let forged = replace_id_token(&body, |token| {
                let parts: Vec<&str> = token.split('.').collect();
                let mut claims = decode_part(parts.get(1))?;
                claims[claim] = serde_json::Value::from(value);
                Some(format!("{}.{}.{}", parts[0], encode_part(&claims), parts.get(2)?))
            });
            (status, content_type, forged)
        }
        Fault::ResignIdTokenClaim(claim, value) => {
            let (status, content_type, body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            let resigned = replace_id_token(&body, |token| {
                let mut claims = decode_part(token.split('.').nth(1).as_ref())?;
                claims[claim] = serde_json::Value::from(value);
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                header.kid = Some(PROXY_KID.to_owned());
                jsonwebtoken::encode(&header, &claims, &key.key).ok()
            });
            (status, content_type, resigned)
        }
        Fault::Rewrite(change) => {
            let (status, content_type, body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(mut value) => {
                    change(&mut value);
                    (status, content_type, value.to_string().into_bytes())
                }
                Err(_) => (status, content_type, body),
            }
        }
        Fault::Answer(status, body) => (status, "application/json".to_string(), body.as_bytes().to_vec()),
        Fault::RotatingNonce => {
            let nonce = crate::sha256_hex(&format!("{:?}", std::time::Instant::now()));
            extra_header =
                format!("www-authenticate: DPoP error=\"use_dpop_nonce\", algs=\"ES256\"\r\ndpop-nonce: {nonce}\r\n");
            (401, "application/json".to_string(), br#"{"error":"use_dpop_nonce"}"#.to_vec())
        }
        Fault::Delay(millis) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?
        }
        Fault::Relabel(status, content_type) => {
            let (_, _, body) = forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            (status, content_type.to_owned(), body)
        }
        Fault::UnknownKid => {
            let (status, content_type, body) =
                forward(http, upstream, &method, &path, &headers, body, &mut extra_header).await?;
            let renamed = replace_id_token(&body, |token| {
                let parts: Vec<&str> = token.split('.').collect();
                let mut header = decode_part(parts.first())?;
                header["kid"] = serde_json::Value::from("a-key-nobody-published");
                Some(format!("{}.{}.{}", encode_part(&header), parts.get(1)?, parts.get(2)?))
            });
            (status, content_type, renamed)
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra_header}connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

type Answer = (u16, String, Vec<u8>);

/// Sends the request on to the provider and returns its status, content type and body; a DPoP nonce it gives
/// (RFC 9449 §8) is added to `passed_on`, the headers of the proxy's answer.
async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    passed_on: &mut String,
) -> std::io::Result<Answer> {
    let mut request = http.request(method.parse().unwrap_or(reqwest::Method::GET), format!("{upstream}{path}"));
    for (name, value) in headers {
        if !["content-length", "connection"].contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await.map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    if let Some(nonce) = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()) {
        passed_on.push_str(&format!("dpop-nonce: {nonce}\r\n"));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok((status, content_type, response.bytes().await.map_err(std::io::Error::other)?.to_vec()))
}

/// The token response `body` with its ID token replaced by what `change` makes of it; unchanged when there is
/// no ID token or `change` gives up.
fn replace_id_token(body: &[u8], change: impl FnOnce(&str) -> Option<String>) -> Vec<u8> {
    let Ok(mut response) = serde_json::from_slice::<serde_json::Value>(body) else { return body.to_vec() };
    let Some(changed) = response["id_token"].as_str().and_then(change) else { return body.to_vec() };
    response["id_token"] = serde_json::Value::from(changed);
    response.to_string().into_bytes()
}

fn decode_part(part: Option<&&str>) -> Option<serde_json::Value> {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part?).ok()?;
    serde_json::from_slice(&json).ok()
}

fn encode_part(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The provider's JWK Set with the proxy's key added.
fn with_proxy_key(body: &[u8], key: &ProxyKey) -> Vec<u8> {
    let Ok(mut set) = serde_json::from_slice::<serde_json::Value>(body) else { return body.to_vec() };
    if let (Some(keys), Ok(jwk)) = (set["keys"].as_array_mut(), serde_json::to_value(&key.jwk)) {
        keys.push(jwk);
    }
    set.to_string().into_bytes()
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 request with a Content-Length body (all that reqwest sends for these calls).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((method, path, headers, body)))
}
