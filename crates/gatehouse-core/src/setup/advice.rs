//! The setup form's usual mistakes, said in the form's own words: which field is at fault, what to do, and where
//! the fix is unambiguous, the value that fixes it (the window offers it as one click).
//!
//! Nothing here names a config key, a file or a restart: the person is in a form, and fixing the field is all
//! it takes.

use std::time::Duration;

use url::Url;

use super::{Draft, Finding};
use crate::error::Error;

/// The form's field names, as the window knows them.
pub mod field {
    /// The issuer URL (the generic choice).
    pub const ISSUER: &str = "issuer";
    /// The client ID.
    pub const CLIENT_ID: &str = "clientId";
    /// The client secret.
    pub const CLIENT_SECRET: &str = "clientSecret";
    /// Microsoft's tenant.
    pub const TENANT: &str = "tenant";
    /// A preset's host name.
    pub const DOMAIN: &str = "domain";
    /// Keycloak's realm.
    pub const REALM: &str = "realm";
    /// The provider choice.
    pub const PRESET: &str = "preset";
    /// The scopes (under Advanced).
    pub const SCOPES: &str = "scopes";
    /// The resource URL (under Advanced).
    pub const RESOURCE: &str = "resource";
    /// The redirect kind (under Advanced).
    pub const REDIRECT: &str = "redirect";
}

/// What the issuer the person typed is, before anything is asked of the network: the problems a glance can see,
/// each with its fix where there is exactly one.
pub fn issuer_problems(typed: &str) -> Option<Finding> {
    let typed = typed.trim();
    let problem = |text: String, fix: Option<String>| Some(Finding::problem(text).at(field::ISSUER).fixed_by(fix));
    if typed.is_empty() {
        return problem("Enter the provider's issuer URL, such as https://id.example.com.".into(), None);
    }
    // RFC 3986 §3.1: a URL starts with its scheme. "id.example.com/o" or "127.0.0.1:8000/o" is a host without one.
    if !typed.contains("://") {
        let with = if loopback_host(typed.split(['/', ':']).next().unwrap_or_default()) {
            format!("http://{}", typed.replacen("localhost", "127.0.0.1", 1))
        } else {
            format!("https://{typed}")
        };
        let valid = Url::parse(&with).is_ok();
        return problem(
            format!(
                "Start the address with https:// (or http:// for a provider on this computer). Did you mean {with}?"
            ),
            valid.then_some(with),
        );
    }
    let Ok(url) = Url::parse(typed) else {
        return problem("This isn't a web address. Enter the issuer URL, such as https://id.example.com.".into(), None);
    };
    if url.scheme() != "https" && url.scheme() != "http" {
        return problem("Use an address that starts with https://.".into(), None);
    }
    // OIDC Discovery §4 and RFC 8414 §3: the metadata is at the issuer plus a well-known path; a person who copied
    // the metadata's address gets the issuer it belongs to.
    if let Some(issuer) = issuer_of_metadata_url(&url) {
        return problem(
            format!("This is the provider's discovery address. Its issuer is {issuer}: use that."),
            Some(issuer),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut without = url.clone();
        let _ = without.set_username("");
        let _ = without.set_password(None);
        return problem(
            "Leave the user name and password out of the address.".into(),
            Some(display_like_typed(&without, typed)),
        );
    }
    // RFC 8414 §2: an issuer has no query and no fragment.
    if url.query().is_some() || url.fragment().is_some() {
        let mut without = url.clone();
        without.set_query(None);
        without.set_fragment(None);
        return problem(
            "An issuer URL has no ? or # part: leave it out.".into(),
            Some(display_like_typed(&without, typed)),
        );
    }
    if url.scheme() == "http" {
        // RFC 8252 §8.3: http only to a loopback IP literal; the name localhost may resolve elsewhere.
        if crate::http::names_localhost(&url) {
            let mut fixed = url.clone();
            let _ = fixed.set_host(Some("127.0.0.1"));
            return problem(
                "Use 127.0.0.1 instead of localhost: Gatehouse uses plain http only with this computer's own \
                 address, since a name could point elsewhere."
                    .into(),
                Some(display_like_typed(&fixed, typed)),
            );
        }
        if !crate::http::is_loopback(&url) {
            let mut fixed = url.clone();
            let _ = fixed.set_scheme("https");
            return problem(
                "Use https:// here: Gatehouse sends sign-ins over plain http only to this computer (127.0.0.1).".into(),
                Some(display_like_typed(&fixed, typed)),
            );
        }
    }
    None
}

/// `url` as text, with or without the trailing slash as the person typed it.
fn display_like_typed(url: &Url, typed: &str) -> String {
    let text = url.as_str();
    if typed.ends_with('/') || url.path() != "/" {
        text.to_owned()
    } else {
        text.trim_end_matches('/').to_owned()
    }
}

fn loopback_host(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "[::1]"
}

/// The issuer whose metadata is at `url`, when `url` is a metadata address: `{issuer}/.well-known/openid-configuration`
/// (OIDC Discovery §4), or `{origin}/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1), and the OpenID
/// form inserted after the host as some providers publish it.
pub fn issuer_of_metadata_url(url: &Url) -> Option<String> {
    const SUFFIXES: [&str; 2] = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"];
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    for suffix in SUFFIXES {
        if let Some(before) = path.strip_suffix(suffix) {
            return Some(format!("{origin}{before}"));
        }
        if let Some(after) = path.strip_prefix(suffix) {
            if after.is_empty() || after.starts_with('/') {
                return Some(format!("{origin}{after}"));
            }
        }
    }
    None
}

/// A preset's own fields, empty or malformed, said as the form says them.
pub fn preset_field_problem(field_name: &str, problem: &str, preset: &str) -> Finding {
    let brand = crate::presets::Preset::named(preset).map(|p| p.to_string()).unwrap_or_else(|| preset.to_owned());
    let (field, text) = match field_name {
        "domain" if problem.contains("needs it") => {
            (field::DOMAIN, format!("Enter your {brand}'s host name, such as id.example.com."))
        }
        "domain" => {
            (field::DOMAIN, "Enter the host name alone, such as id.example.com (no https:// and no path).".to_owned())
        }
        "realm" if problem.contains("needs it") => {
            (field::REALM, "Enter the realm's name, as the admin console's realm menu shows it.".to_owned())
        }
        "realm" => (field::REALM, "Enter the realm's name alone: letters, digits, '.', '-' and '_'.".to_owned()),
        "tenant" => (
            field::TENANT,
            "Enter the tenant's ID or domain alone (letters, digits, '.', '-'), or leave it empty.".to_owned(),
        ),
        "client_secret" => (field::CLIENT_SECRET, format!("{brand} requires a client secret: enter it.")),
        "client_id" => (field::CLIENT_ID, "Enter the client ID.".to_owned()),
        _ => (field::PRESET, format!("This choice can't be set up: {problem}.")),
    };
    Finding::problem(text).at(field)
}

/// Why the provider named by `draft` couldn't be surveyed, said as what to do, on the field to fix. For a network
/// failure it looks once more, to tell a name that isn't found, a port where nothing listens, and an https
/// address of a server that speaks only http.
pub async fn diagnose(error: &Error, draft: &Draft) -> Finding {
    let at = if draft.preset == "other" { field::ISSUER } else { location_field(&draft.preset) };
    let check = check_what(&draft.preset);
    match error {
        Error::Network(_) => diagnose_unreachable(draft, at).await,
        Error::BadResponse(why) if why.contains("no discovery document") => {
            let status = why.split("HTTP ").nth(1).map(|s| s.trim_end_matches(')')).unwrap_or("no answer");
            // Keycloak's host answered, so a missing document is its realm's.
            let at = if draft.preset == "keycloak" { field::REALM } else { at };
            Finding::problem(format!(
                "Nothing at this address looks like an OpenID provider (HTTP {status} at its \
                 /.well-known/openid-configuration). {check}."
            ))
            .at(at)
        }
        // OIDC Discovery §4.3: the issuer is what the provider calls itself, exactly. The one it names is offered
        // only on the address's own origin (a trailing slash, a path's spelling): another server is the person's
        // to decide on.
        Error::BadResponse(why) if why.starts_with("its metadata names a different issuer (") => {
            let named = why.trim_start_matches("its metadata names a different issuer (").trim_end_matches(')');
            let typed = Url::parse(draft.issuer.trim()).ok();
            let fix = Url::parse(named)
                .ok()
                .filter(|n| typed.as_ref().is_some_and(|t| t.origin() == n.origin()) && !named.ends_with('…'))
                .map(|_| named.to_owned());
            Finding::problem(format!(
                "The provider at this address calls itself {named}, and Gatehouse uses the issuer exactly as the \
                 provider names it. {check}."
            ))
            .at(at)
            .fixed_by(fix.filter(|_| draft.preset == "other"))
        }
        Error::BadResponse(why) => Finding::problem(format!(
            "The provider at this address answered with something Gatehouse can't use ({why}). {check}, or ask \
             the provider's administrator."
        ))
        .at(at),
        Error::Config(e) => {
            let field_name = e.field.rsplit(", ").next().unwrap_or(&e.field);
            if field_name == "issuer" && draft.preset == "other" {
                issuer_problems(&draft.issuer).unwrap_or_else(|| {
                    Finding::problem("Enter the provider's issuer URL, such as https://id.example.com.")
                        .at(field::ISSUER)
                })
            } else {
                preset_field_problem(field_name, &e.problem, &draft.preset)
            }
        }
        Error::Setup(why) if why == super::NO_USERINFO => Finding::problem(sentence(why)).at(field::RESOURCE),
        Error::Setup(why) => Finding::problem(sentence(why)).at(at),
        other => Finding::problem(other.to_string()),
    }
}

/// What to check, in the words of the fields the choice shows.
fn check_what(preset: &str) -> &'static str {
    match preset {
        "other" => "Check the issuer URL: it must be exactly as the provider's documentation names it",
        "keycloak" => "Check the domain and the realm",
        "microsoft" => "Check the tenant",
        "gitlab" | "okta" | "auth0" => "Check the domain",
        _ => "Check the provider's status page, or try again later",
    }
}

/// The form field a preset's address is made from.
fn location_field(preset: &str) -> &'static str {
    match preset {
        "microsoft" => field::TENANT,
        "gitlab" | "keycloak" | "okta" | "auth0" => field::DOMAIN,
        _ => field::PRESET,
    }
}

/// `text` as a sentence: a capital first letter, a full stop at the end.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut out = format!("{}{}", first.to_uppercase(), chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Where the draft's provider lives, as host and port: what to look at when it can't be reached.
fn address_of(draft: &Draft) -> Option<Url> {
    if draft.preset == "other" {
        return Url::parse(draft.issuer.trim()).ok();
    }
    let domain = draft.domain.trim();
    (!domain.is_empty()).then(|| Url::parse(&format!("https://{domain}/")).ok()).flatten()
}

/// How long each second look may take.
const PROBE: Duration = Duration::from_secs(4);

async fn diagnose_unreachable(draft: &Draft, at: &'static str) -> Finding {
    let generic = || {
        Finding::problem("Couldn't reach the provider. Check the address and your connection, then press Check again.")
            .at(at)
    };
    let Some(url) = address_of(draft) else { return generic() };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return generic() };
    let shown = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let addresses =
        match tokio::time::timeout(PROBE, tokio::net::lookup_host((host.trim_matches(['[', ']']), port))).await {
            Ok(Ok(found)) => found.collect::<Vec<_>>(),
            Ok(Err(_)) => {
                return Finding::problem(format!(
                    "No computer called {host} was found. Check the spelling of the address, and your connection."
                ))
                .at(at)
            }
            Err(_) => return generic(),
        };
    let mut connected = false;
    for address in addresses {
        if let Ok(Ok(_stream)) = tokio::time::timeout(PROBE, tokio::net::TcpStream::connect(address)).await {
            connected = true;
            break;
        }
    }
    if !connected {
        return Finding::problem(format!(
            "Nothing answers at {shown}. Check the port in the address, and that the provider is running."
        ))
        .at(at);
    }
    // Something listens: an https address whose server answers plain http is the usual reason.
    if url.scheme() == "https" && speaks_plain_http(host, port).await {
        let mut fixed = url.clone();
        let _ = fixed.set_scheme("http");
        let loopback = crate::http::is_loopback(&fixed);
        return Finding::problem(if loopback {
            format!("The provider at {shown} doesn't speak https; it answers plain http. Use http:// for it.")
        } else {
            format!(
                "The server at {shown} doesn't speak https; it answers plain http, which Gatehouse doesn't use \
                 over a network. Check the address, or ask the provider's administrator for its https address."
            )
        })
        .at(at)
        .fixed_by((loopback && draft.preset == "other").then(|| display_like_typed(&fixed, draft.issuer.trim())));
    }
    Finding::problem(format!(
        "{shown} answers, but no secure connection could be made with it: its certificate may not be one this \
         computer trusts, or it may not be the provider. Check the address, and the provider's certificate."
    ))
    .at(at)
}

/// Whether `host:port` answers an HTTP/1.1 request in plain text.
async fn speaks_plain_http(host: &str, port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await.ok()?;
        let request = format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut start = [0u8; 5];
        stream.read_exact(&mut start).await.ok()?;
        Some(&start == b"HTTP/")
    };
    tokio::time::timeout(PROBE, probe).await.ok().flatten().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(typed: &str) -> (String, Option<String>) {
        let found = issuer_problems(typed).expect("a problem");
        assert_eq!(found.field, Some(field::ISSUER));
        (found.text, found.fix)
    }

    #[test]
    fn the_usual_issuer_mistakes_get_their_fix() {
        assert_eq!(fix("").1, None);
        assert!(fix("").0.starts_with("Enter the provider's issuer URL"));
        assert_eq!(fix("127.0.0.1:8000/o").1.as_deref(), Some("http://127.0.0.1:8000/o"));
        assert_eq!(fix("localhost:8000/o").1.as_deref(), Some("http://127.0.0.1:8000/o"));
        assert_eq!(fix("id.example.com").1.as_deref(), Some("https://id.example.com"));
        assert_eq!(fix("http://localhost:8000/o").1.as_deref(), Some("http://127.0.0.1:8000/o"));
        assert!(fix("http://localhost:8000/o").0.contains("Use 127.0.0.1 instead of localhost"));
        assert_eq!(fix("http://id.example.com/o").1.as_deref(), Some("https://id.example.com/o"));
        assert_eq!(
            fix("http://127.0.0.1:8000/o/.well-known/openid-configuration").1.as_deref(),
            Some("http://127.0.0.1:8000/o")
        );
        assert_eq!(
            fix("https://id.example.com/.well-known/oauth-authorization-server/tenant").1.as_deref(),
            Some("https://id.example.com/tenant")
        );
        assert_eq!(
            fix("https://id.example.com/.well-known/openid-configuration").1.as_deref(),
            Some("https://id.example.com")
        );
        assert_eq!(fix("https://id.example.com/o?x=1").1.as_deref(), Some("https://id.example.com/o"));
        assert_eq!(fix("ftp://id.example.com").1, None);
        for fine in
            ["https://id.example.com", "http://127.0.0.1:8000/o", "https://id.example.com/o/", " http://[::1]:80 "]
        {
            assert!(issuer_problems(fine).is_none(), "{fine}");
        }
    }

    /// No message the form shows names a config key, a file or a restart.
    #[test]
    fn form_messages_name_no_key_file_or_restart() {
        let mut texts: Vec<String> = ["", "x", "localhost:1", "http://localhost/", "http://a.example", "ftp://a"]
            .iter()
            .filter_map(|t| issuer_problems(t).map(|f| f.text))
            .collect();
        for (field_name, problem) in [
            ("domain", "the Keycloak preset needs it: host name"),
            ("domain", "\"a/b\" is not a plain host name"),
            ("realm", "the Keycloak preset needs it: realm name"),
            ("tenant", "\"a b\" is not a plain tenant"),
            ("client_secret", "the Google preset needs it"),
            ("client_id", "must not be empty"),
        ] {
            texts.push(preset_field_problem(field_name, problem, "keycloak").text);
        }
        for text in texts {
            for word in ["config", "file", "restart", "_endpoint", "client_id", "client_secret", "toml"] {
                assert!(!text.to_lowercase().contains(word), "{word:?} in {text:?}");
            }
        }
    }

    /// What Check and Save say after asking the provider is in the form's words too, and on the field to fix.
    #[tokio::test]
    async fn answers_from_the_provider_are_said_in_the_forms_words() {
        let keycloak = Draft { preset: "keycloak".into(), domain: "id.example.com".into(), ..Draft::default() };
        let missing = diagnose(&Error::BadResponse("it has no discovery document (HTTP 404)".into()), &keycloak).await;
        assert_eq!(missing.field, Some(field::REALM), "{missing:?}");
        assert!(missing.text.contains("HTTP 404") && missing.text.contains("Check the domain and the realm"));
        let other = Draft { preset: "other".into(), issuer: "https://id.example.com/o/".into(), ..Draft::default() };
        let renamed = diagnose(
            &Error::BadResponse("its metadata names a different issuer (https://id.example.com/o)".into()),
            &other,
        )
        .await;
        assert_eq!(renamed.fix.as_deref(), Some("https://id.example.com/o"), "{renamed:?}");
        let elsewhere = diagnose(
            &Error::BadResponse("its metadata names a different issuer (https://evil.example)".into()),
            &other,
        )
        .await;
        assert_eq!(elsewhere.fix, None, "another server is never offered: {elsewhere:?}");
        let refused = super::super::refused_registration(&Error::Setup(
            "the provider refused to register Gatehouse (invalid_client_metadata)".into(),
        ));
        assert_eq!(refused.items[0].field, Some(field::CLIENT_ID));
        for text in [missing.text, renamed.text, elsewhere.text, refused.items[0].text.clone()] {
            for word in ["config file", "restart", "_endpoint", "client_id", "toml"] {
                assert!(!text.to_lowercase().contains(word), "{word:?} in {text:?}");
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_told_apart() {
        // A port where nothing listens.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let draft = Draft { preset: "other".into(), issuer: format!("http://127.0.0.1:{port}/o"), ..Draft::default() };
        let found = diagnose(&Error::Network("refused".into()), &draft).await;
        assert!(found.text.contains(&format!("Nothing answers at 127.0.0.1:{port}")), "{}", found.text);
        // https to a server that speaks http.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let draft = Draft { preset: "other".into(), issuer: format!("https://127.0.0.1:{port}/o"), ..Draft::default() };
        let found = diagnose(&Error::Network("tls".into()), &draft).await;
        assert!(found.text.contains("doesn't speak https"), "{}", found.text);
        assert_eq!(found.fix, Some(format!("http://127.0.0.1:{port}/o")));
    }
}
