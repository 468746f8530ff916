//! The one-shot loopback redirect listener (RFC 8252 §7.3, §8.3), for providers that accept no private-use
//! scheme redirect (Google's "Desktop app" clients, for one).
//!
//! Invariants:
//! - it listens on a fresh ephemeral port of the loopback address the profile names, never on `0.0.0.0` and
//!   never on a resolved `localhost` (§8.3: a resolver or firewall could send `localhost` elsewhere);
//! - it lives exactly as long as its sign-in attempt: the [`Guard`] sits in the pending attempt, and dropping it
//!   (callback taken, Cancel, timeout, a new attempt, sign-out, quit) stops accepting at once, so the port
//!   refuses connections;
//! - only a `GET` on the exact path reaches the callback validation, which is the same pure check a deep link
//!   gets; anything else is answered with an error status and consumes nothing;
//! - a connection from a socket another local user owns is closed unread (Linux; see [`peer`]);
//! - each connection serves one request, its head must arrive within [`READ_TIMEOUT`] and fit in
//!   [`MAX_REQUEST`]; HTTP parsing is hyper's;
//! - at most [`MAX_CONNECTIONS`] connections are served at once: one more is closed as soon as it is accepted,
//!   so a flood of idle connections can't run the process out of file descriptors; an accept that fails (out
//!   of descriptors, say) is retried after a pause that doubles up to [`MAX_BACKOFF`], never in a busy loop.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

use crate::error::{Error, Result};

mod peer;

/// How long a connection may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head accepted (hyper's smallest buffer). Real callbacks are a few hundred bytes; the
/// callback check itself stops at 8 KiB.
pub const MAX_REQUEST: usize = 16 * 1024;

/// The most connections served at once. A browser makes one or two.
pub const MAX_CONNECTIONS: usize = 32;

/// The longest pause before accepting again after a failed accept.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the listener does with a request on the right path: validates and completes the sign-in with the full
/// callback URL, and says how it went.
pub type OnCallback = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// Keeps the listener open while it is alive. Held by the pending attempt.
pub struct Guard {
    _stop: oneshot::Sender<()>,
    port: u16,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("loopback::Guard").field("port", &self.port).finish()
    }
}

/// A bound listener, not yet serving.
pub struct Bound {
    listener: TcpListener,
    /// The redirect URI for this attempt: the profile's, with the port just bound (RFC 8252 §7.3).
    pub redirect_uri: Url,
}

/// Binds a fresh ephemeral port on `ip` for the redirect URI `template` (which names that address and no port).
///
/// # Errors
/// [`Error::Internal`] when no port can be bound.
pub async fn bind(template: &Url, ip: IpAddr) -> Result<Bound> {
    // A port in the profile's redirect URI is used as it is (for providers that match it exactly); otherwise the
    // OS picks a free one for this sign-in (RFC 8252 §7.3).
    let fixed = template.port().unwrap_or(0);
    let listener = TcpListener::bind(SocketAddr::new(ip, fixed)).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse if fixed != 0 => Error::PortInUse(fixed),
        _ => Error::Internal(format!("couldn't listen on {ip} for the sign-in redirect: {e}")),
    })?;
    let port = listener.local_addr().map_err(|e| Error::Internal(format!("loopback listener: {e}")))?.port();
    let mut redirect_uri = template.clone();
    redirect_uri.set_port(Some(port)).map_err(|()| Error::Internal("loopback redirect URI".into()))?;
    Ok(Bound { listener, redirect_uri })
}

impl Bound {
    /// Starts answering requests, handing the callback to `on_callback`, until the returned [`Guard`] is dropped.
    pub fn serve(self, on_callback: OnCallback) -> Guard {
        let (stop, stopped) = oneshot::channel();
        let port = self.redirect_uri.port().unwrap_or_default();
        tokio::spawn(accept(self.listener, self.redirect_uri, on_callback, stopped));
        Guard { _stop: stop, port }
    }
}

async fn accept(listener: TcpListener, redirect_uri: Url, on_callback: OnCallback, mut stopped: oneshot::Receiver<()>) {
    let redirect_uri = Arc::new(redirect_uri);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, from) = tokio::select! {
            // The guard was dropped (its sender closes the channel): stop, and drop the listener with the loop.
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => (stream, from),
                Err(e) => {
                    // EMFILE and the like: accepting again at once would fail again, in a busy loop.
                    tracing::warn!("loopback listener: {e}; accepting again in {backoff:?}");
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(10);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("loopback listener: {MAX_CONNECTIONS} connections already open; closing another");
            drop(stream);
            continue;
        };
        let (redirect_uri, on_callback) = (Arc::clone(&redirect_uri), Arc::clone(&on_callback));
        tokio::spawn(async move {
            let _slot = slot;
            // Only this user's own processes (its browser) may answer: another local user could otherwise deliver
            // a code of their own account (login CSRF, RFC 6749 §10.12, RFC 9700 §4.7). An owner that can't be
            // found refuses too. The socket tables are read off the runtime's threads, and only for connections
            // that got a slot, so a flood of connections costs at most MAX_CONNECTIONS lookups at a time.
            let local = stream.local_addr().ok();
            let ours = match local {
                Some(local) => tokio::task::spawn_blocking(move || peer::is_this_users(from, local)).await,
                None => Ok(false),
            };
            if !ours.unwrap_or(false) {
                tracing::warn!("loopback listener: refused a connection not shown to be this user's");
                return;
            }
            let service = hyper::service::service_fn(move |request| {
                let (redirect_uri, on_callback) = (Arc::clone(&redirect_uri), Arc::clone(&on_callback));
                async move { Ok::<_, std::convert::Infallible>(answer(request, &redirect_uri, &on_callback).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .max_buf_size(MAX_REQUEST)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("loopback connection: {e}");
            }
        });
    }
    tracing::info!("loopback listener closed");
}

async fn answer(request: Request<Incoming>, redirect_uri: &Url, on_callback: &OnCallback) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        let mut response = page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not a sign-in response",
            "This address only takes the browser's sign-in redirect.",
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    // The same URL a deep link would carry, through the same pure validation, which compares the path as a URI
    // (RFC 3986 §6.2.2). A request elsewhere that carries a `state` goes there too: if it is the pending sign-in's,
    // the window says at once where the answer went and where it was expected, rather than wait for the timeout.
    let carries_state =
        request.uri().query().is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "state"));
    let mut link = redirect_uri.clone();
    link.set_path(request.uri().path());
    if link.path() != redirect_uri.path() && !carries_state {
        return page(
            StatusCode::NOT_FOUND,
            "Not a sign-in response",
            "This address only takes the browser's sign-in redirect.",
        );
    }
    link.set_query(request.uri().query());
    match on_callback(link.into()).await {
        Ok(()) => page(StatusCode::OK, "Signed in", "You're signed in to Gatehouse. You can close this tab."),
        Err(e @ Error::Callback(_)) => page(StatusCode::BAD_REQUEST, "Not signed in", &e.to_string()),
        Err(e) => page(StatusCode::OK, "Not signed in", &e.to_string()),
    }
}

/// A small self-contained page: no scripts, no external resources, not cached, no referrer.
fn page(status: StatusCode, title: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} – Gatehouse</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;\
         color:#1d2b2a}}h1{{font-size:1.4rem}}</style></head><body><h1>{title}</h1><p>{}</p></body></html>",
        escape(message),
        title = escape(title),
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_escaped_and_self_contained() {
        use http_body_util::BodyExt;
        let response =
            page(StatusCode::BAD_REQUEST, "<i>Not</i> signed in", "<script>alert(1)</script> & \"more\" <img src=x>");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert!(response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'none'"));
        // What the browser gets: the message and title as text, never as markup.
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("<script") && !body.contains("<img") && !body.contains("<i>"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot; &lt;img src=x&gt;"),
            "{body}"
        );
        assert!(body.contains("<h1>&lt;i&gt;Not&lt;/i&gt; signed in</h1>"), "{body}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b>\"x\" & y</b>"), "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;");
    }

    #[tokio::test]
    async fn binds_the_named_address_on_a_fresh_port() {
        let template = Url::parse("http://127.0.0.1/callback").unwrap();
        let first = bind(&template, "127.0.0.1".parse().unwrap()).await.unwrap();
        let second = bind(&template, "127.0.0.1".parse().unwrap()).await.unwrap();
        assert_eq!(first.listener.local_addr().unwrap().ip().to_string(), "127.0.0.1");
        assert_ne!(first.redirect_uri.port(), second.redirect_uri.port());
        assert_eq!(
            first.redirect_uri.as_str(),
            format!("http://127.0.0.1:{}/callback", first.redirect_uri.port().unwrap())
        );
    }
}
