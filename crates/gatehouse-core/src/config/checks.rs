//! The checks of a profile's addresses: endpoints, the redirect URI, and the resources tokens may be narrowed to.

use url::Url;

/// Endpoints must use TLS (RFC 6749 §3.1, §3.2; RFC 9700 §2.6), except on the loopback interface, where the
/// traffic never leaves the machine (the bundled demo provider runs there).
///
/// Only an IP literal counts as loopback here (RFC 8252 §8.3): `localhost`, and `*.localhost`, are names a
/// resolver, a hosts file or a proxy setting may send elsewhere. A URL with user information is refused: a
/// password in it would travel with every request, and `https://good.example@evil.example/` names `evil.example`.
pub(super) fn require_tls_or_loopback(url: &Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password (user@host): give credentials in their own fields".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::http::is_loopback(url) => Ok(()),
        "http" if crate::http::names_localhost(url) => Err(
            "must use https: only the loopback addresses 127.0.0.1 and [::1] may use http, not the name localhost, which a resolver may send elsewhere (RFC 8252 §8.3)".into(),
        ),
        "http" => Err("must use https (only loopback addresses may use http)".into()),
        other => Err(format!("must be an https URL, not {other}:")),
    }
}

/// The two redirects a native app may use here:
/// - RFC 8252 §7.3: `http://127.0.0.1/path` or `http://[::1]/path`, an IP literal, with no port (each sign-in
///   listens on a fresh one) or, for providers that match it exactly, a fixed one; never `localhost` (§8.3),
///   which a resolver or firewall could send elsewhere;
/// - RFC 8252 §7.1: a private-use URI scheme in reverse-DNS form, which contains a period, so that it is tied to
///   a domain the app's publisher controls.
pub(super) fn check_redirect(uri: &Url) -> Result<(), String> {
    if uri.scheme() == "http" {
        let loopback_literal = match uri.host() {
            Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            _ => false,
        };
        if !loopback_literal {
            return Err(
                "an http redirect must be the loopback address http://127.0.0.1/callback or http://[::1]/callback \
                 (RFC 8252 §7.3, §8.3: not localhost, not another host)"
                    .into(),
            );
        }
        // RFC 8252 §7.3 wants any port accepted, and by default Gatehouse listens on a fresh one for each
        // sign-in. Some providers match the port exactly, and a browser on the far end of an SSH tunnel needs a
        // known one: a port written here is used as it is.
        if uri.port() == Some(0) {
            return Err("port 0 is not a port: leave the port out, and Gatehouse listens on a fresh one for each sign-in (RFC 8252 §7.3)".into());
        }
    } else if !uri.scheme().contains('.') {
        return Err(
            "use a private-use scheme in reverse-DNS form, such as com.example.app:/callback (RFC 8252 §7.1)".into()
        );
    }
    if uri.query().is_some() || uri.fragment().is_some() {
        return Err("must not have a query or fragment (RFC 6749 §3.1.2)".into());
    }
    Ok(())
}

/// A resource indicator (RFC 8707 §2): an absolute URI with no fragment, which "SHOULD NOT" have a query; as an
/// address tokens are sent to, https or a loopback IP literal, as for the profile's endpoints. Returns it as
/// parsed, the form two spellings of one URI compare equal in (RFC 3986 §6.2.2: case, default port, dot segments).
pub(super) fn check_resource(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{text:?} has a fragment, which a resource indicator must not have (RFC 8707 §2)"));
    }
    if url.query().is_some() {
        return Err(format!("{text:?} has a query, which a resource indicator should not have (RFC 8707 §2)"));
    }
    require_tls_or_loopback(&url).map_err(|problem| format!("{text:?} {problem}"))?;
    Ok(url)
}
