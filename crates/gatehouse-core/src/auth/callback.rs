//! Parsing and checking the custom-scheme redirect that carries the authorization response.
//!
//! Everything here is pure: a URL (and, for the issuer, the expected value) in, a verdict out. The one-time
//! `state` check lives beside the pending attempt it consumes (`pending.rs`). A rejected link changes nothing.

use oauth2::AuthorizationCode;
use url::Url;

use crate::error::clean_for_display;

/// The longest callback URL accepted. Real codes and states are a few hundred bytes at most.
pub const MAX_CALLBACK_LEN: usize = 8 * 1024;

pub use crate::error::CallbackError;

/// What the authorization server answered.
#[derive(Debug)]
pub enum Outcome {
    /// Success: an authorization code to exchange.
    Code(AuthorizationCode),
    /// An error response (RFC 6749 §4.1.2.1).
    Error {
        /// The `error` code.
        code: String,
        /// The `error_description`, cleaned for display.
        description: Option<String>,
    },
}

/// A well-formed authorization response, not yet matched to a pending sign-in.
#[derive(Debug)]
pub struct Callback {
    /// The `state` as received.
    pub state: String,
    /// The `iss` parameter, if present (RFC 9207).
    pub issuer: Option<String>,
    /// The code or the error.
    pub outcome: Outcome,
}

/// Where a URI points, in the normal form of RFC 3986 §6.2.2, so that spellings of one redirect URI compare
/// equal and nothing else does:
/// - §6.2.2.1: scheme and host in lower case (`url` lowers the scheme, and the host of `http` URIs; a
///   private-use scheme's host is kept as written, so it is lowered here), percent-encodings in upper case;
/// - §6.2.2.2: a percent-encoded unreserved character is the character itself;
/// - §6.2.2.3: `.` and `..` segments removed;
/// - an empty authority (`com.example.app:///callback`) is no authority (`com.example.app:/callback`): some
///   launchers add one, and both name the same path of the same app;
/// - §6.2.3: with an authority, an empty path is `/` (Windows adds the `/` before the `?` of a custom-scheme
///   link: `com.example.app://callback/?code=…`), and a scheme's default port written is the port omitted.
///
/// The query is not part of the target, and neither is a fragment (see [`parse`]).
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    host: Option<String>,
    port: Option<u16>,
    path: String,
}

impl Target {
    fn of(url: &Url) -> Target {
        let host = url.host_str().filter(|h| !h.is_empty()).map(|h| normal_encoding(&h.to_ascii_lowercase()));
        let path = without_dot_segments(&normal_encoding(url.path()));
        let path = if host.is_some() && path.is_empty() { "/".to_owned() } else { path };
        Target { scheme: url.scheme().to_ascii_lowercase(), host, port: url.port_or_known_default(), path }
    }

    /// The target as a person reads it: scheme, host, port and path, never a query (which may hold a code).
    fn display(url: &Url) -> String {
        let mut shown = url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        clean_for_display(shown.as_str(), 120)
    }
}

/// RFC 3986 §6.2.2.1 and §6.2.2.2: percent-encoded unreserved characters decoded, other percent-encodings in
/// upper case.
fn normal_encoding(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let byte = (high * 16 + low) as u8;
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(byte);
                } else {
                    out.extend_from_slice(format!("%{byte:02X}").as_bytes());
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4 (used by §6.2.2.3): the path with its `.` and `..` segments resolved.
fn without_dot_segments(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(usize::from(absolute)).collect();
    for (i, segment) in parts.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
        // A trailing `.` or `..` leaves the path ending in a slash.
        if i + 1 == parts.len() && matches!(*segment, "." | "..") {
            segments.push("");
        }
    }
    let joined = segments.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Parses a deep link as an authorization response for `redirect_uri`.
///
/// # Errors
/// A [`CallbackError`] for anything that is not exactly a response to `redirect_uri`.
pub fn parse(link: &str, redirect_uri: &Url) -> Result<Callback, CallbackError> {
    if link.len() > MAX_CALLBACK_LEN {
        return Err(CallbackError::TooLong);
    }
    let url = Url::parse(link).map_err(|_| CallbackError::Malformed)?;
    // RFC 8252 §7.1 and RFC 6749 §3.1.2: the response goes to the registered redirect URI and nowhere else,
    // compared as URIs (RFC 3986 §6.2.2), since the OS and browser may hand the link over in another spelling.
    let same_target =
        Target::of(&url) == Target::of(redirect_uri) && url.username().is_empty() && url.password().is_none();
    if !same_target {
        return Err(CallbackError::WrongTarget);
    }
    // The code response is in the query (RFC 6749 §4.1.2). A fragment is not part of it: RFC 6749 §3.1.2 forbids
    // one in the redirect URI, and what a provider or browser appends (Facebook's `#_=_`, a fragment carried over
    // a redirect) is ignored, never read as parameters.

    let mut state = None;
    let mut code = None;
    let mut error = None;
    let mut description = None;
    let mut issuer = None;
    for (name, value) in url.query_pairs() {
        let slot = match name.as_ref() {
            "state" => &mut state,
            "code" => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
            "iss" => &mut issuer,
            // RFC 6749 §4.1.2: the client ignores unrecognized response parameters.
            _ => continue,
        };
        // RFC 6749 §3.1: parameters MUST NOT be included more than once.
        if slot.replace(value.into_owned()).is_some() {
            return Err(CallbackError::DuplicateParameter(name.into_owned()));
        }
    }

    let state = state.filter(|s| !s.is_empty()).ok_or(CallbackError::MissingParameter("state"))?;
    let outcome = match (code, error) {
        (Some(code), None) if !code.is_empty() => Outcome::Code(AuthorizationCode::new(code)),
        (None, Some(code)) if !code.is_empty() => Outcome::Error {
            code: clean_for_display(&code, 64),
            description: description.map(|d| clean_for_display(&d, 200)).filter(|d| !d.is_empty()),
        },
        (Some(_), Some(_)) => return Err(CallbackError::Malformed),
        _ => return Err(CallbackError::MissingParameter("code")),
    };
    Ok(Callback { state, issuer, outcome })
}

/// The `state` a link carries in its query, whatever else is wrong with it: to tell the pending sign-in's own
/// answer, which failed a check and must be reported at once, from a stray link.
pub fn state_of(link: &str) -> Option<String> {
    if link.len() > MAX_CALLBACK_LEN {
        return None;
    }
    let url = Url::parse(link).ok()?;
    let state = url.query_pairs().find(|(name, _)| name == "state").map(|(_, value)| value.into_owned());
    state.filter(|state| !state.is_empty())
}

/// Why a link that carries the pending sign-in's `state` is not its answer, in words that name what was expected
/// and what came: the [`parse`] error, made specific.
pub fn explain(error: CallbackError, link: &str, redirect_uri: &Url) -> CallbackError {
    match (error, Url::parse(link)) {
        (CallbackError::WrongTarget, Ok(url)) => {
            CallbackError::RedirectMismatch { expected: Target::display(redirect_uri), received: Target::display(&url) }
        }
        (error, _) => error,
    }
}

/// Checks `iss` against the provider in use (RFC 9207 §2.4).
///
/// `expected` is `None` when the issuer is unknown (explicit endpoints without an issuer): then nothing can be
/// compared. `required` is the provider's `authorization_response_iss_parameter_supported`.
///
/// # Errors
/// [`CallbackError::IssuerMismatch`] or [`CallbackError::IssuerMissing`].
pub fn check_issuer(received: Option<&str>, expected: Option<&str>, required: bool) -> Result<(), CallbackError> {
    match (received, expected) {
        // RFC 9207 §2.4: simple string comparison (RFC 3986 §6.2.1) with the issuer identifier exactly as the
        // metadata (or the profile) spells it; no allowance for a trailing slash.
        (Some(iss), Some(expected)) if iss == expected => Ok(()),
        (Some(iss), Some(expected)) => Err(CallbackError::IssuerMismatch {
            expected: clean_for_display(expected, 120),
            received: clean_for_display(iss, 120),
        }),
        (None, Some(_)) if required => Err(CallbackError::IssuerMissing),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> Url {
        Url::parse("com.example.gatehouse:/callback").unwrap()
    }

    fn parse_ok(link: &str) -> Callback {
        parse(link, &redirect()).unwrap()
    }

    fn parse_err(link: &str) -> CallbackError {
        parse(link, &redirect()).unwrap_err()
    }

    #[test]
    fn accepts_a_code_response() {
        let cb = parse_ok("com.example.gatehouse:/callback?code=abc&state=xyz&iss=http%3A%2F%2F127.0.0.1%3A4470");
        assert_eq!(cb.state, "xyz");
        assert_eq!(cb.issuer.as_deref(), Some("http://127.0.0.1:4470"));
        let Outcome::Code(code) = cb.outcome else { panic!("expected a code") };
        assert_eq!(code.secret(), "abc");
    }

    #[test]
    fn ignores_unknown_parameters() {
        let cb = parse_ok("com.example.gatehouse:/callback?code=abc&state=xyz&session_state=1");
        assert!(matches!(cb.outcome, Outcome::Code(_)));
    }

    #[test]
    fn turns_an_error_parameter_into_an_outcome() {
        let cb = parse_ok("com.example.gatehouse:/callback?error=access_denied&error_description=End-User%20aborted%0Ainteraction&state=s");
        let Outcome::Error { code, description } = cb.outcome else { panic!("expected an error") };
        assert_eq!(code, "access_denied");
        assert_eq!(description.as_deref(), Some("End-User aborted interaction"));
    }

    #[test]
    fn rejects_the_wrong_scheme_or_path() {
        for link in [
            "com.example.other:/callback?code=a&state=s",
            "com.example.gatehouse:/callback/extra?code=a&state=s",
            "com.example.gatehouse:/other?code=a&state=s",
            "com.example.gatehouse://callback?code=a&state=s",
            "com.example.gatehouse://evil.example/callback?code=a&state=s",
            "https://example.com/callback?code=a&state=s",
        ] {
            assert_eq!(parse_err(link), CallbackError::WrongTarget, "{link}");
        }
    }

    /// RFC 3986 §6.2.2: spellings of the redirect URI the OS or a browser may hand over are the same URI.
    #[test]
    fn matches_the_redirect_as_a_uri_not_as_a_string() {
        for link in [
            "COM.EXAMPLE.GATEHOUSE:/callback?code=a&state=s",
            "com.example.gatehouse:///callback?code=a&state=s",
            "com.example.gatehouse:/%63allback?code=a&state=s",
            "com.example.gatehouse:/%63%61llback?code=a&state=s",
            "com.example.gatehouse:/./callback?code=a&state=s",
            "com.example.gatehouse:/x/../callback?code=a&state=s",
        ] {
            assert!(parse(link, &redirect()).is_ok(), "{link}");
        }
        for link in [
            "com.example.gatehouse:/Callback?code=a&state=s",
            "com.example.gatehouse:/callback/?code=a&state=s",
            "com.example.gatehouse:/%2Fcallback?code=a&state=s",
            "com.example.gatehouse://user@/callback?code=a&state=s",
        ] {
            assert!(parse(link, &redirect()).is_err(), "{link}");
        }
        // A private-use scheme's host is compared without case; a loopback redirect's port and path exactly.
        let hosted = Url::parse("com.example.gatehouse://oauth/callback").unwrap();
        assert!(parse("com.example.gatehouse://OAuth/callback?code=a&state=s", &hosted).is_ok());
        // RFC 3986 §6.2.3: with an authority, an empty path is `/` (Windows adds one before the `?`), and a
        // default port written is one omitted.
        let authority_only = Url::parse("com.example.gatehouse://callback").unwrap();
        assert!(parse("com.example.gatehouse://callback/?code=a&state=s", &authority_only).is_ok());
        assert!(parse("com.example.gatehouse://callback?code=a&state=s", &authority_only).is_ok());
        let https = Url::parse("https://app.example/cb").unwrap();
        assert!(parse("https://app.example:443/cb?code=a&state=s", &https).is_ok());
        assert!(parse("https://app.example:8443/cb?code=a&state=s", &https).is_err());
        let root = Url::parse("https://app.example").unwrap();
        assert!(parse("https://app.example/?code=a&state=s", &root).is_ok());
        // A fragment a provider or browser appends is ignored.
        assert!(parse("com.example.gatehouse:/callback?code=a&state=s#_=_", &redirect()).is_ok());
        assert!(parse("com.example.gatehouse:/callback?code=a&state=s#", &redirect()).is_ok());
        assert_eq!(
            parse_err("com.example.gatehouse:/callback#code=a&state=s"),
            CallbackError::MissingParameter("state")
        );
        let loopback = Url::parse("http://127.0.0.1:4567/callback").unwrap();
        assert!(parse("HTTP://127.0.0.1:4567/%63allback?code=a&state=s", &loopback).is_ok());
        assert!(parse("http://127.0.0.1:4568/callback?code=a&state=s", &loopback).is_err());
    }

    /// A link with the pending sign-in's state that went elsewhere says where it went and where it should have:
    /// never its query.
    #[test]
    fn a_misdirected_answer_names_both_addresses() {
        let link = "com.example.gatehouse:/oauth?code=secret-code&state=s";
        assert_eq!(state_of(link).as_deref(), Some("s"));
        assert_eq!(state_of("com.example.gatehouse:/oauth?code=a"), None);
        let explained = explain(parse_err(link), link, &redirect());
        assert_eq!(
            explained,
            CallbackError::RedirectMismatch {
                expected: "com.example.gatehouse:/callback".into(),
                received: "com.example.gatehouse:/oauth".into()
            }
        );
        assert!(!explained.to_string().contains("secret-code"), "{explained}");
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        // RFC 3986 §5.4's examples, as paths.
        for (path, removed) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/./g", "/g"),
            ("/g/.", "/g/"),
            ("/g/..", "/"),
            ("/../g", "/g"),
            ("/callback", "/callback"),
        ] {
            assert_eq!(without_dot_segments(path), removed, "{path}");
        }
        assert_eq!(normal_encoding("/%7e%41%2f%zz"), "/~A%2F%zz");
    }

    #[test]
    fn rejects_malformed_links() {
        assert_eq!(parse_err("not a url"), CallbackError::Malformed);
        assert_eq!(parse_err(""), CallbackError::Malformed);
        assert_eq!(parse_err("com.example.gatehouse:/callback?code=a&error=x&state=s"), CallbackError::Malformed);
    }

    #[test]
    fn requires_state_and_code() {
        assert_eq!(parse_err("com.example.gatehouse:/callback?code=a"), CallbackError::MissingParameter("state"));
        assert_eq!(
            parse_err("com.example.gatehouse:/callback?code=a&state="),
            CallbackError::MissingParameter("state")
        );
        assert_eq!(parse_err("com.example.gatehouse:/callback?state=s"), CallbackError::MissingParameter("code"));
        assert_eq!(parse_err("com.example.gatehouse:/callback?state=s&code="), CallbackError::MissingParameter("code"));
        assert_eq!(parse_err("com.example.gatehouse:/callback"), CallbackError::MissingParameter("state"));
    }

    #[test]
    fn rejects_duplicated_parameters() {
        assert_eq!(
            parse_err("com.example.gatehouse:/callback?code=a&state=s&state=t"),
            CallbackError::DuplicateParameter("state".into())
        );
        assert_eq!(
            parse_err("com.example.gatehouse:/callback?code=a&code=b&state=s"),
            CallbackError::DuplicateParameter("code".into())
        );
        assert_eq!(
            parse_err("com.example.gatehouse:/callback?code=a&state=s&iss=x&iss=y"),
            CallbackError::DuplicateParameter("iss".into())
        );
    }

    #[test]
    fn rejects_very_long_input() {
        let link = format!("com.example.gatehouse:/callback?state=s&code={}", "a".repeat(MAX_CALLBACK_LEN));
        assert_eq!(parse_err(&link), CallbackError::TooLong);
        let just_fits = format!("com.example.gatehouse:/callback?state=s&code={}", "a".repeat(4000));
        assert!(parse(&just_fits, &redirect()).is_ok());
    }

    /// Google and GitHub send `iss` without advertising it: when it comes, it must still be right.
    #[test]
    fn an_unadvertised_iss_is_checked_when_sent() {
        let github = "https://github.com/login/oauth";
        assert_eq!(check_issuer(Some("https://github.com/login/oauth"), Some(github), false), Ok(()));
        assert_eq!(check_issuer(None, Some(github), false), Ok(()));
        assert!(matches!(
            check_issuer(Some("https://github.example/login/oauth"), Some(github), false),
            Err(CallbackError::IssuerMismatch { .. })
        ));
    }

    #[test]
    fn checks_the_issuer() {
        let issuer = "http://127.0.0.1:4470";
        assert_eq!(check_issuer(Some("http://127.0.0.1:4470"), Some(issuer), true), Ok(()));
        // RFC 9207 §2.4: exactly the identifier, not another spelling of it.
        assert!(matches!(
            check_issuer(Some("http://127.0.0.1:4470/"), Some(issuer), false),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            check_issuer(Some("HTTP://127.0.0.1:4470"), Some(issuer), false),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            check_issuer(Some("http://127.0.0.1:4471"), Some(issuer), false),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert_eq!(
            check_issuer(Some("https://evil.example"), Some(issuer), true),
            Err(CallbackError::IssuerMismatch { expected: issuer.into(), received: "https://evil.example".into() })
        );
        assert_eq!(check_issuer(None, Some(issuer), true), Err(CallbackError::IssuerMissing));
        assert_eq!(check_issuer(None, Some(issuer), false), Ok(()));
        assert_eq!(check_issuer(Some("anything"), None, false), Ok(()));
    }

    /// Generated links (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
    mod properties {
        use proptest::prelude::*;

        use super::*;

        const KNOWN: [&str; 5] = ["state", "code", "error", "error_description", "iss"];

        /// A query parameter: mostly ones the parser knows, sometimes others; any value, empty included.
        fn parameter() -> impl Strategy<Value = (String, String)> {
            let name = prop_oneof![
                4 => proptest::sample::select(KNOWN.to_vec()).prop_map(str::to_owned),
                1 => "[a-z_]{1,12}",
            ];
            let value = prop_oneof![3 => "[A-Za-z0-9._~-]{0,40}", 1 => any::<String>()];
            (name, value)
        }

        fn link(parameters: &[(String, String)]) -> String {
            let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(parameters).finish();
            format!("com.example.gatehouse:/callback?{query}")
        }

        /// What the parser must decide: exactly one non-empty `state`, exactly one non-empty `code` or `error`
        /// (never both), no known parameter twice, and no more than the length limit.
        fn acceptable(link: &str, parameters: &[(String, String)]) -> bool {
            let count = |name: &str| parameters.iter().filter(|(k, _)| k == name).count();
            let value = |name: &str| parameters.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
            link.len() <= MAX_CALLBACK_LEN
                && KNOWN.iter().all(|name| count(name) <= 1)
                && count("state") == 1
                && !value("state").is_empty()
                && match (count("code"), count("error")) {
                    (1, 0) => !value("code").is_empty(),
                    (0, 1) => !value("error").is_empty(),
                    _ => false,
                }
        }

        /// The link a callback came from, rebuilt from what was parsed.
        fn rebuilt(callback: &Callback) -> String {
            let mut parameters = vec![("state".to_owned(), callback.state.clone())];
            match &callback.outcome {
                Outcome::Code(code) => parameters.push(("code".into(), code.secret().clone())),
                Outcome::Error { code, description } => {
                    parameters.push(("error".into(), code.clone()));
                    if let Some(description) = description {
                        parameters.push(("error_description".into(), description.clone()));
                    }
                }
            }
            if let Some(issuer) = &callback.issuer {
                parameters.push(("iss".into(), issuer.clone()));
            }
            link(&parameters)
        }

        proptest! {
            #![proptest_config(crate::proptest_config())]

            #[test]
            fn never_panics_on_any_text(text in any::<String>()) {
                let _ = parse(&text, &redirect());
                let _ = parse(&format!("com.example.gatehouse:/callback?{text}"), &redirect());
            }

            #[test]
            fn accepts_exactly_the_well_formed_responses(parameters in proptest::collection::vec(parameter(), 0..7)) {
                let link = link(&parameters);
                let parsed = parse(&link, &redirect());
                prop_assert_eq!(parsed.is_ok(), acceptable(&link, &parameters), "{:?}", parsed.err());
                if let Ok(callback) = parsed {
                    let value = |name: &str| parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                    prop_assert_eq!(Some(callback.state.clone()), value("state"));
                    prop_assert_eq!(callback.issuer.clone(), value("iss"));
                    if let Outcome::Code(code) = &callback.outcome {
                        prop_assert_eq!(Some(code.secret().clone()), value("code"));
                    }
                    // What it accepts, it reads back the same from a link made of what it read.
                    let again = parse(&rebuilt(&callback), &redirect()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert_eq!(&again.state, &callback.state);
                    prop_assert_eq!(&again.issuer, &callback.issuer);
                    match (&again.outcome, &callback.outcome) {
                        (Outcome::Code(a), Outcome::Code(b)) => prop_assert_eq!(a.secret(), b.secret()),
                        (a @ Outcome::Error { .. }, b @ Outcome::Error { .. }) => {
                            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                        }
                        (a, b) => prop_assert!(false, "{a:?} became {b:?}"),
                    }
                }
            }

            #[test]
            fn a_response_elsewhere_is_refused(
                target in prop_oneof![
                    Just("com.example.gatehouse:/other"),
                    Just("com.example.evil:/callback"),
                    Just("com.example.gatehouse://host/callback"),
                    Just("https://example.com/callback"),
                ],
                state in "[A-Za-z0-9]{1,20}",
                code in "[A-Za-z0-9]{1,20}",
            ) {
                let parsed = parse(&format!("{target}?state={state}&code={code}"), &redirect());
                prop_assert!(matches!(parsed, Err(CallbackError::WrongTarget)), "{:?}", parsed.err());
                // A fragment is no part of the response: the query's parameters are read, the fragment's never.
                let fragment = parse(&format!("com.example.gatehouse:/callback?state={state}&code={code}#code=x&state=y"), &redirect());
                prop_assert!(fragment.is_ok_and(|cb| cb.state == state && matches!(cb.outcome, Outcome::Code(c) if *c.secret() == code)));
            }
        }
    }
}
