//! `gatehouse credential`: git's credential helper protocol (gitcredentials(7)).

use gatehouse_app::agent;

use super::token::{config_path, from_agent};
use super::*;

/// The user name Gatehouse answers git with when git names none: any name works with a bearer token at most
/// hosts, and this one says what the password is.
const CREDENTIAL_USER: &str = "oauth2";

/// The git credential helper protocol (gitcredentials(7)): git writes `key=value` lines describing what it
/// needs, and a helper answers `get` with `username` and `password`.
///
/// Gatehouse answers only for the scheme and host (and port) of a profile's resource_url, so that its token is
/// never handed to another server, and only for the user git asks about: no `username` at all, the fixed
/// [`CREDENTIAL_USER`], or the signed-in account's name or subject. With several profiles at one host, git's
/// `username` picks the profile; with no username, the host must have exactly one signed-in profile. For any
/// other request it says nothing, and git asks its next helper.
///
/// Where one profile serves the host and a running Gatehouse's agent serves this config file, the agent answers
/// (for the account git names, if it names one, and only for that host), and no keychain is read here; an
/// `erase` goes to it too, since it holds the session.
pub(super) async fn credential(
    installation: &Installation,
    config: &Result<Vec<Config>, ConfigError>,
    profile: Option<&str>,
    operation: &str,
    input: impl std::io::BufRead,
) -> Result<(), Error> {
    if operation != "get" && operation != "erase" {
        // Gatehouse keeps its own session: nothing to store for git.
        return Ok(());
    }
    let mut asked = std::collections::HashMap::new();
    for line in input.lines() {
        let line = line.map_err(|e| Error::Internal(format!("reading git's request: {e}")))?;
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            asked.insert(key.to_owned(), value.to_owned());
        }
    }
    let profiles = config.as_ref().map_err(|e| Error::Config(e.clone()))?;
    let candidates: Vec<&Config> = match profile {
        Some(name) => vec![find_profile(profiles, Some(name))?],
        None => profiles.iter().collect(),
    };
    let user = asked.get("username").map(String::as_str).filter(|u| !u.is_empty());
    let serving: Vec<&Config> = candidates.into_iter().filter(|c| serves(c, &asked)).collect();
    let named = user.filter(|u| *u != CREDENTIAL_USER);
    if let [config] = serving.as_slice() {
        let spent = asked.get("password").filter(|p| !p.is_empty());
        let request = agent::Request {
            profile: Some(config.profile.clone()),
            min_ttl: agent::DEFAULT_MIN_TTL,
            caller: Some("gatehouse credential".to_owned()),
            config: config_path(installation.config_file.clone()),
            account: named.map(str::to_owned),
            // The host git will send it to, checked against the agent's own profile: the config here may have
            // changed since the agent read it.
            origin: Some(format!("{}://{}", field(&asked, "protocol"), field(&asked, "host"))),
            spent: spent.filter(|_| operation == "erase").map(|p| gatehouse_core::tokens::token_hash(p)),
            ..agent::Request::default()
        };
        // An erase with no password has nothing to mark; an account other than the one named is no answer
        // there, and none here either.
        if operation != "erase" || request.spent.is_some() {
            if let Some((token, expires_at)) = from_agent(&request)? {
                // git's erase wants no answer: the agent has marked its token spent and renewed the session.
                if operation == "erase" {
                    return Ok(());
                }
                return answer(named.unwrap_or(CREDENTIAL_USER), &token, expires_at);
            }
        }
    }
    if operation == "erase" {
        return erase(installation, serving, &asked).await;
    }
    let mut matching = Vec::new();
    for config in serving {
        let (service, _) = open(installation, config)?;
        // A profile that can't be read here is not an answer; another helper may have one.
        if !service.load().await.unwrap_or(false) {
            continue;
        }
        let account = service.view().account.unwrap_or_default();
        let named = |u: &str| account.is_named(u);
        match user {
            Some(u) if named(u) => matching.push((service, u.to_owned(), true)),
            None | Some(CREDENTIAL_USER) => matching.push((service, CREDENTIAL_USER.to_owned(), false)),
            Some(_) => {}
        }
    }
    // An account named by git's username wins over one that merely isn't ruled out.
    if matching.iter().any(|(_, _, named)| *named) {
        matching.retain(|(_, _, named)| *named);
    }
    // Several accounts that fit, and nothing to choose between them: not Gatehouse's to guess.
    if matching.len() != 1 {
        return Ok(());
    }
    let Some((service, username, _)) = matching.pop() else { return Ok(()) };
    let token = service.access_token(Duration::from_secs(agent::DEFAULT_MIN_TTL)).await?;
    answer(&username, token.secret(), service.view().expires_at)
}

/// Answers git: `username`, the `token` as its password, and when it stops working.
fn answer(username: &str, token: &str, expires_at: Option<u64>) -> Result<(), Error> {
    // gitcredentials(7): a value must not contain a newline or NUL, or git would read another attribute.
    if [username, token].iter().any(|v| v.contains(['\n', '\r', '\0'])) {
        return Err(Error::BadResponse("its access token can't be handed to git (it contains a line break)".into()));
    }
    let mut lines = vec![format!("username={username}"), format!("password={token}")];
    if let Some(expires_at) = expires_at {
        // git 2.41 and later: when to stop using the password.
        lines.push(format!("password_expiry_utc={expires_at}"));
    }
    out(&lines)
}

/// git's attribute `key`, or nothing.
fn field<'a>(asked: &'a std::collections::HashMap<String, String>, key: &str) -> &'a str {
    asked.get(key).map_or("", String::as_str)
}

/// git's `erase`: the server refused the password git had from Gatehouse (gitcredentials(7)). Where a profile
/// serving that host still holds that very token, it is marked spent, so that it is never handed out again and
/// the next `get` renews the session (one refresh). Any other token, host or profile is left alone.
async fn erase(
    installation: &Installation,
    candidates: Vec<&Config>,
    asked: &std::collections::HashMap<String, String>,
) -> Result<(), Error> {
    let Some(password) = asked.get("password").filter(|p| !p.is_empty()) else { return Ok(()) };
    for config in candidates {
        let (service, _) = open(installation, config)?;
        if service.refused(password).await? {
            tracing::info!(profile = %config.profile, "git says the server refused the token; it won't be handed out again");
        }
    }
    Ok(())
}

/// Whether `config`'s resource is at the scheme and host (and port) git asks about.
fn serves(config: &Config, asked: &std::collections::HashMap<String, String>) -> bool {
    let resource = &config.resource_url;
    let host = match resource.port() {
        Some(port) => format!("{}:{port}", resource.host_str().unwrap_or_default()),
        None => resource.host_str().unwrap_or_default().to_owned(),
    };
    asked.get("protocol").map(String::as_str) == Some(resource.scheme()) && asked.get("host") == Some(&host)
}
