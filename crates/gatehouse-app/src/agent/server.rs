//! The agent's side: the socket made and guarded, each caller checked and answered, none able to hold up another.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::sync::Arc;

use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use url::Url;

use gatehouse_core::accounts::Accounts;
use gatehouse_core::tokens::Narrowing;

use super::consent::{Caller, Consent};
use super::*;
use crate::handouts::{Handout, Log, Outcome};

/// How many callers are answered at once; one more is told the agent is busy.
const MAX_CALLERS: usize = 16;
/// How long a caller has to send its request.
const REQUEST_TIME: Duration = Duration::from_secs(5);
/// How long a caller has to take its answer.
const ANSWER_TIME: Duration = Duration::from_secs(5);

/// A running agent; dropping it stops it and removes its socket.
pub struct Agent {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
    callers: Arc<Semaphore>,
    consent: Arc<Consent>,
}

impl Agent {
    /// Stops taking callers and removes the socket; callers being answered are answered.
    pub fn stop(&self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }

    /// What it asks before handing out a token: where the window puts its questions and answers.
    pub fn consent(&self) -> &Consent {
        &self.consent
    }

    /// How many callers are being answered now.
    pub fn in_flight(&self) -> usize {
        MAX_CALLERS.saturating_sub(self.callers.available_permits())
    }

    /// Stops the agent, and waits (at most `patience`) until every caller being answered has been: before an
    /// `exec` hand-over, which would cut off a renewal made for one (and lose the rotated refresh token).
    pub async fn stop_and_finish(&self, patience: Duration) {
        self.stop();
        let deadline = tokio::time::Instant::now() + patience;
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts serving `accounts` at `path`, for callers that read `config_file` and that `consent` lets have them,
/// recording each handout in `log`. A socket left there by a Gatehouse
/// that is gone is replaced; one another Gatehouse still answers on is left to it (an error of kind
/// `AddrInUse`); a symbolic link is removed, never followed.
///
/// # Errors
/// When the directory isn't this user's alone, or the socket can't be made.
pub fn start(
    accounts: Arc<Accounts>,
    path: &Path,
    config_file: Option<PathBuf>,
    log: Option<Log>,
    consent: Consent,
) -> std::io::Result<Agent> {
    let listener = bind(path)?;
    tracing::info!(socket = %path.display(), "serving tokens to this user's programs");
    let config_file = config_file.map(|f| f.canonicalize().unwrap_or(f));
    let callers = Arc::new(Semaphore::new(MAX_CALLERS));
    let consent = Arc::new(consent);
    let context = Arc::new(Context { accounts, config_file, log, consent: Arc::clone(&consent) });
    let task = tokio::spawn(serve(listener, context, Arc::clone(&callers)));
    Ok(Agent { path: path.to_owned(), task, callers, consent })
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("the socket has no directory"))?;
    gatehouse_core::tokens::lock::private_dir(dir)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        // Removing a link removes the link, not what it points at.
        Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(path)?,
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "another Gatehouse serves tokens"));
            }
            // Left by a Gatehouse that is gone.
            std::fs::remove_file(path)?;
        }
        Ok(_) => return Err(std::io::Error::other(format!("{} is not a socket; leaving it", path.display()))),
    }
    let listener = UnixListener::bind(path)?;
    // The directory is 0700 already; the socket says the same.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// What every caller is answered with: the accounts, the config file they are of, and the log.
struct Context {
    accounts: Arc<Accounts>,
    config_file: Option<PathBuf>,
    log: Option<Log>,
    consent: Arc<Consent>,
}

async fn serve(listener: UnixListener, context: Arc<Context>, callers: Arc<Semaphore>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("the agent couldn't take a caller: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match Arc::clone(&callers).try_acquire_owned() {
            Ok(permit) => {
                let context = Arc::clone(&context);
                tokio::spawn(async move {
                    let _permit = permit;
                    answer(stream, &context).await;
                });
            }
            Err(_) => {
                tokio::spawn(reply(
                    stream,
                    refusal("busy", "Gatehouse is answering many programs at once; try again."),
                ));
            }
        }
    }
}

/// Reads one caller's request and answers it.
async fn answer(mut stream: UnixStream, context: &Context) {
    let Ok(peer) = stream.peer_cred() else { return };
    // The socket's directory keeps other users out already; the kernel's word on the caller is checked all the same.
    if peer.uid() != gatehouse_core::os::current_uid() {
        tracing::warn!(uid = peer.uid(), "refused a caller of another user");
        reply(stream, refusal("other_user", "Gatehouse serves only its own user's programs.")).await;
        return;
    }
    let caller = Caller::of(peer.pid());
    let line = match tokio::time::timeout(REQUEST_TIME, read_line(&mut stream, MAX_REQUEST)).await {
        Ok(Ok(Some(line))) => line,
        // Nothing, or not in time: nothing to answer.
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(_)) => {
            reply(stream, refusal("bad_request", "The request is longer than the agent reads.")).await;
            return;
        }
    };
    let request: Request = match serde_json::from_slice(&line) {
        Ok(request) => request,
        Err(_) => {
            reply(stream, refusal("bad_request", "The request is not one the agent knows.")).await;
            return;
        }
    };
    // Compared as sent: looking up a path the caller chose (on a mount that never answers) could hold the agent.
    if request.config != context.config_file {
        reply(stream, refusal(OTHER_CONFIG, "The agent serves another config file.")).await;
        return;
    }
    tracing::info!(
        program = %caller.program.as_deref().map_or_else(|| "unknown".into(), |p| p.display().to_string()),
        pid = peer.pid(),
        caller = request.caller.as_deref().unwrap_or(""),
        "a program asks for a token"
    );
    let (answer, profile, outcome) = token(context, &caller, &request).await;
    if let Some(log) = &context.log {
        log.record(&Handout {
            at: gatehouse_core::os::unix_now(),
            profile,
            program: caller.program,
            pid: peer.pid(),
            caller: request.caller.clone(),
            resource: request.resource.clone(),
            scope: request.scope.clone(),
            outcome,
            error: match &answer {
                Answer::Refused { error } => Some(error.kind.clone()),
                Answer::Token { .. } => None,
            },
        });
    }
    reply(stream, answer).await;
}

/// The answer to `request`, the profile it was for, and how it went.
async fn token(context: &Context, caller: &Caller, request: &Request) -> (Answer, String, Outcome) {
    let asked = request.profile.clone().unwrap_or_default();
    let resource = match request.resource.as_deref().map(Url::parse) {
        None => None,
        Some(Ok(url)) => Some(url),
        Some(Err(_)) => {
            return (refusal("bad_request", "The resource is not an absolute URI."), asked, Outcome::Refused);
        }
    };
    let to = Narrowing::new(resource, request.scope.as_deref());
    let min_ttl = Duration::from_secs(request.min_ttl);
    let service = match context.accounts.get(request.profile.as_deref()) {
        Ok(service) => service,
        Err(e) => return (Answer::Refused { error: Refusal::of(&e) }, asked, Outcome::Refused),
    };
    let profile = service.profile().map_or(asked, |config| config.profile.clone());
    // A profile that can't be read trusts nobody.
    // What the profile doesn't allow is refused before the person is asked about it.
    if let Some(config) = service.profile() {
        if let Err(e) = gatehouse_core::auth::narrow::allowed(config, &to) {
            return (Answer::Refused { error: Refusal::of(&e.into()) }, profile, Outcome::Refused);
        }
    }
    // A token goes only to its profile's resource (by origin, RFC 6454 as the URL Standard computes it), whatever
    // the caller's config says now; a profile that can't be read is for nowhere.
    if let Some(origin) = &request.origin {
        let fits = Url::parse(origin).is_ok_and(|origin| {
            service.profile().is_some_and(|config| config.resource_url.origin() == origin.origin())
        });
        if !fits {
            let message = format!("{profile}'s tokens are not for {origin}.");
            return (refusal("other_origin", &message), profile, Outcome::Refused);
        }
    }
    let trust_own = service.profile().is_some_and(|config| config.trust_gatehouse_commands);
    let detail = to.resource.as_ref().map(|r| format!(" for {}", r.as_str())).unwrap_or_default();
    if let Err(refusal) = context.consent.check(caller, &profile, trust_own, &detail).await {
        return (Answer::Refused { error: refusal }, profile, Outcome::Refused);
    }
    // Asked only of a program that may have the tokens: whether the account is the one it names. An account this
    // process can't name (a session not read yet) is not taken for it.
    if let Some(wanted) = &request.account {
        if !service.view().account.is_some_and(|account| account.is_named(wanted)) {
            let message = format!("{profile} is not signed in as {wanted}.");
            return (refusal("other_account", &message), profile, Outcome::Refused);
        }
    }
    if let Some(hash) = &request.spent {
        match service.refused_by_hash(hash).await {
            Ok(marked) => tracing::info!(profile, marked, "a program says its server refused a token"),
            Err(e) => return (Answer::Refused { error: Refusal::of(&e) }, profile, Outcome::Refused),
        }
    }
    match service.hand_out(&to, min_ttl).await {
        Ok(handout) => {
            let outcome = if handout.renewed { Outcome::Renewed } else { Outcome::Kept };
            let answer = Answer::Token { token: handout.token.secret().clone(), expires_at: handout.expires_at };
            (answer, profile, outcome)
        }
        Err(e) => (Answer::Refused { error: Refusal::of(&e) }, profile, Outcome::Refused),
    }
}

fn refusal(kind: &str, message: &str) -> Answer {
    Answer::Refused { error: Refusal { kind: kind.to_owned(), message: message.to_owned() } }
}

/// Writes `answer` as one line and closes, giving up on a caller that doesn't read it in time.
async fn reply(mut stream: UnixStream, answer: Answer) {
    let Ok(mut line) = serde_json::to_vec(&answer) else { return };
    line.push(b'\n');
    let _ = tokio::time::timeout(ANSWER_TIME, async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    })
    .await;
}
