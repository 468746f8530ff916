//! `gatehouse token`: an access token for the program that runs it, from the running Gatehouse's agent when
//! there is one, else from the keychain here; recorded in the handout log either way.

use gatehouse_app::agent;
use gatehouse_app::handouts::{Handout, Outcome};
use gatehouse_core::error::ProgramRefusal;
use gatehouse_core::tokens::Narrowing;

use super::*;

/// What `gatehouse token` was asked for.
pub(crate) struct Asked {
    pub profile: Option<String>,
    pub resource: Option<url::Url>,
    pub scope: Option<String>,
    pub min_ttl: u64,
}

/// Prints the token `asked` for from the agent of a running Gatehouse that serves `config_file`; whether it did.
///
/// # Errors
/// As [`from_agent`].
pub(crate) fn through_agent(config_file: Option<std::path::PathBuf>, asked: &Asked) -> Result<bool, Error> {
    let request = agent::Request {
        profile: asked.profile.clone(),
        resource: asked.resource.as_ref().map(url::Url::to_string),
        scope: asked.scope.clone(),
        min_ttl: asked.min_ttl,
        caller: Some(CALLER.to_owned()),
        config: config_path(config_file),
        ..agent::Request::default()
    };
    // The agent records what it hands out itself.
    let Some((token, _)) = from_agent(&request)? else { return Ok(false) };
    out(&[&token])?;
    Ok(true)
}

/// `gatehouse token` in its plain forms (`--config`, `--profile`, `--min-ttl`, `--resource` and `--scope`, each
/// at most once, as `--name value` or `--name=value`): the config file named, if any, and what was asked for.
/// `None` for anything else (help, a flag or value it doesn't know, text that isn't UTF-8), which is left to
/// clap's parser and its words, in `gatehouse-cli`.
pub(crate) fn plain(args: &[std::ffi::OsString]) -> Option<(Option<std::path::PathBuf>, Asked)> {
    let mut args = args.iter().skip(1).map(|arg| arg.to_str());
    let mut command = false;
    let [mut config, mut profile, mut min_ttl, mut resource, mut scope] = [None, None, None, None, None];
    while let Some(arg) = args.next() {
        let arg = arg?;
        if arg == "token" && !command {
            command = true;
            continue;
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value),
            None => (arg, args.next()??),
        };
        let slot = match name {
            "--config" => &mut config,
            "--profile" if command => &mut profile,
            "--min-ttl" if command => &mut min_ttl,
            "--resource" if command => &mut resource,
            "--scope" if command => &mut scope,
            _ => return None,
        };
        // A repeated flag, an empty value or one that looks like a flag: clap's to judge.
        if slot.is_some() || value.is_empty() || value.starts_with('-') {
            return None;
        }
        *slot = Some(value);
    }
    let min_ttl = match min_ttl {
        Some(secs) if secs.bytes().all(|b| b.is_ascii_digit()) => secs.parse().ok()?,
        Some(_) => return None,
        None => agent::DEFAULT_MIN_TTL,
    };
    let asked = Asked {
        profile: profile.map(str::to_owned),
        resource: resource.map(url::Url::parse).transpose().ok()?,
        scope: scope.map(str::to_owned),
        min_ttl,
    };
    command.then(|| (config.map(std::path::PathBuf::from), asked))
}

/// The hidden flag with which `gatehouse` hands `token` over once the agent couldn't give the token.
pub(crate) const AGENT_ASKED: &str = "agent-asked";

/// What `gatehouse token` calls itself, to the agent and in the handout log.
const CALLER: &str = "gatehouse token";

/// Prints the token `asked` for, and nothing else, reading the keychain here (after [`through_agent`] found no
/// agent to give it).
pub(super) async fn token(
    installation: &Installation,
    configs: &Result<Vec<Config>, ConfigError>,
    asked: Asked,
) -> Result<(), Error> {
    let (service, _) = open_profile(installation, configs, asked.profile.as_deref())?;
    let to = Narrowing::new(asked.resource.clone(), asked.scope.as_deref());
    let handed = service.hand_out(&to, Duration::from_secs(asked.min_ttl)).await;
    if let Some(log) = installation.handouts() {
        // The program that ran this command is the one the token goes to.
        let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
        log.record(&Handout {
            at: unix_now(),
            profile: service.profile().map_or_else(String::new, |c| c.profile.clone()),
            program: parent.and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok()),
            pid: parent,
            caller: Some(CALLER.to_owned()),
            resource: asked.resource.as_ref().map(url::Url::to_string),
            scope: asked.scope.clone(),
            outcome: match &handed {
                Ok(handout) if handout.renewed => Outcome::Renewed,
                Ok(_) => Outcome::Kept,
                Err(_) => Outcome::Refused,
            },
            error: handed.as_ref().err().map(|e| e.kind().to_owned()),
        });
    }
    out(&[handed?.token.secret()])
}

/// The config file as the agent is told of it: canonical here, so that the agent compares it as sent, never
/// looking up a path a caller chose.
pub(super) fn config_path(config_file: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    config_file.map(|f| f.canonicalize().unwrap_or(f))
}

/// A token and its expiry from the agent of a running Gatehouse that serves this config file, if one does and
/// gives it: then no keychain is read here. `None` leaves the work to this process, which says any failure in its own words: no
/// agent, another config, or a failure of the agent's own after the program was allowed (the provider down, say).
///
/// # Errors
/// [`Error::ProgramRefused`] when the agent refused this program the profile's tokens, or could not say (busy,
/// or no answer: a question may have been pending): that is final, and not worked around by reading the
/// keychain here.
pub(super) fn from_agent(request: &agent::Request) -> Result<Option<(String, Option<u64>)>, Error> {
    let Some(socket) = agent::socket_path() else { return Ok(None) };
    match agent::ask(&socket, request) {
        Some(agent::Answer::Token { token, expires_at }) => Ok(Some((token, expires_at))),
        Some(agent::Answer::Refused { error }) => {
            // A question about this program may be why: consent is never gone around.
            let kind = match error.kind.as_str() {
                "program_denied" => ProgramRefusal::Denied,
                "program_not_allowed" | "program_unknown" | "busy" | agent::NO_ANSWER => ProgramRefusal::NotAllowed,
                _ => {
                    tracing::debug!(kind = error.kind, "the agent couldn't; asking here");
                    return Ok(None);
                }
            };
            Err(Error::ProgramRefused { kind, message: error.message })
        }
        None => Ok(None),
    }
}
