//! The token agent: while Gatehouse runs (the light tray or the window), other programs of the user ask it for
//! access tokens over a Unix socket, instead of each reading the keychain (or keeping a copy of its own).
//!
//! The socket is `agent/agent.sock` beside the renewal locks, in a directory only this user can reach, found from
//! the uid alone (see [`gatehouse_core::tokens::lock::lock_dir`]), so that every process of the user agrees on it
//! whatever its environment. It is 0600, and the agent checks each caller's uid (`SO_PEERCRED`).
//!
//! One request per connection, one JSON line each way ([`Request`], [`Answer`]). An answer holds an access token
//! and its expiry, or a typed error; no request can ask for a refresh token, an ID token, a DPoP key or a client
//! secret, which never leave the agent's process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::UnixStream;

use gatehouse_core::error::Error;

use crate::IDENTIFIER;

pub mod consent;
mod server;

pub use server::{start, Agent};

/// The most a request line may hold: a profile name, a resource URL, scopes and a caller's name.
const MAX_REQUEST: usize = 8 * 1024;
/// The most an answer line may hold: an access token (a JWT with many claims) and its expiry, or an error.
const MAX_ANSWER: usize = 64 * 1024;

/// What a program asks the agent for: a token of `profile` (the default one when `None`), narrowed to
/// `resource` and `scope` when given, valid for at least `min_ttl` seconds. `caller` is the program's own name
/// for itself, shown beside the executable the agent finds. Nothing else can be asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The profile, or `None` for the config's first.
    #[serde(default)]
    pub profile: Option<String>,
    /// A resource (RFC 8707) the token is for alone.
    #[serde(default)]
    pub resource: Option<String>,
    /// Space-separated scopes, fewer than the session's (RFC 6749 §6).
    #[serde(default)]
    pub scope: Option<String>,
    /// How long the token must stay valid, in seconds.
    #[serde(default = "default_min_ttl")]
    pub min_ttl: u64,
    /// The caller's name for itself.
    #[serde(default)]
    pub caller: Option<String>,
    /// The config file the caller reads: the agent serves only its own.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// The account the caller wants, by its login, name or subject (git's `username`, a registry's user): a
    /// profile signed in as another is refused with kind `other_account`. `None` takes whoever is signed in.
    #[serde(default)]
    pub account: Option<String>,
    /// Where the caller will send the token, as an origin (`https://git.example.com`; git's `protocol` and
    /// `host`): refused with kind `other_origin` unless it is the origin of the profile's `resource_url`, so that
    /// a token never goes to a server the profile isn't for (also when the caller's config changed since the
    /// agent read it).
    #[serde(default)]
    pub origin: Option<String>,
    /// The hash (RFC 9449 §4.2's `ath`: base64url of its SHA-256) of a token the caller's server refused (git's
    /// `erase`): where it is still the session's, it is marked spent and never handed out again, and the answer
    /// is a renewed one. The token itself is never sent.
    #[serde(default)]
    pub spent: Option<String>,
}

/// How long a token must stay valid, in seconds, when the caller doesn't say: `gatehouse token`'s `--min-ttl`,
/// the request's `min_ttl`, and git's credential.
pub const DEFAULT_MIN_TTL: u64 = 60;

fn default_min_ttl() -> u64 {
    DEFAULT_MIN_TTL
}

/// The agent's answer: a token, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// An access token, and when it expires (seconds since the Unix epoch) if the provider said.
    Token {
        /// The access token.
        token: String,
        /// Its expiry.
        expires_at: Option<u64>,
    },
    /// Why no token was given.
    Refused {
        /// The error.
        error: Refusal,
    },
}

/// An error, as the window and the command line say it: its kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The stable snake_case kind ([`Error::kind`]), or one of the agent's own (`bad_request`, `busy`,
    /// `other_user`, `other_config`).
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
}

impl Refusal {
    /// `error`, as the window says it.
    pub fn of(error: &Error) -> Refusal {
        Refusal { kind: error.kind().to_owned(), message: error.to_string() }
    }
}

/// Where this user's agent listens; `None` where there is no private place for it.
pub fn socket_path() -> Option<PathBuf> {
    let locks = gatehouse_core::tokens::lock::lock_dir(IDENTIFIER)?;
    Some(locks.parent()?.join("agent").join("agent.sock"))
}

/// Starts the agent for `installation`'s `accounts` at [`socket_path`], for callers that read its config file.
/// `None`, said in the log, where it can't: no private place, another Gatehouse serving there, or no socket.
pub fn start_for(
    installation: &crate::Installation,
    accounts: &std::sync::Arc<gatehouse_core::accounts::Accounts>,
) -> Option<Agent> {
    let Some(socket) = socket_path() else {
        tracing::warn!("no private directory for the token agent; programs read the keychain themselves");
        return None;
    };
    // `gatehouse`, which answers `token` itself, and `gatehouse-cli`, which it hands the other commands to.
    let own_commands = [crate::handover::FRONT_PROGRAM, crate::handover::COMMAND_PROGRAM]
        .into_iter()
        .filter_map(|name| crate::handover::beside(name).ok())
        .collect();
    let decisions = installation.decisions()?;
    let consent = consent::Consent::new(decisions, own_commands, CONSENT_PATIENCE);
    let log = installation.handouts();
    match start(std::sync::Arc::clone(accounts), &socket, installation.config_file.clone(), log, consent) {
        Ok(agent) => Some(agent),
        Err(e) => {
            tracing::warn!("not serving tokens to other programs ({e}); they read the keychain themselves");
            None
        }
    }
}

/// Asks the agent at `socket` for what `request` says. `None` when no agent is there (nothing listens, or it
/// serves another config file), so that the caller does the work itself. An agent that took the request but gave
/// no answer it can read (in time, whole) is [`Answer::Refused`] with kind `no_answer`: its consent may have been
/// pending, and the caller must not go around it.
///
/// Blocking, with no async runtime: `gatehouse token` asks before it starts one, and costs a process start and
/// this one exchange.
pub fn ask(socket: &Path, request: &Request) -> Option<Answer> {
    use std::io::Write as _;
    const SEND: Duration = Duration::from_secs(2);
    // Longer than the person is given to answer the question about the program, and a renewal after it.
    const ANSWER: Duration = Duration::from_secs(CONSENT_PATIENCE.as_secs() + 60);
    let mut stream = connect(socket, SEND).ok()?;
    let mut line = serde_json::to_vec(request).ok()?;
    line.push(b'\n');
    let silent = || Answer::Refused {
        error: Refusal {
            kind: NO_ANSWER.to_owned(),
            message: "The running Gatehouse took the request but gave no answer. Try again; if it keeps happening, \
                      quit Gatehouse."
                .to_owned(),
        },
    };
    // Within the send timeout `connect` set.
    if stream.write_all(&line).is_err() {
        return Some(silent());
    }
    let Ok(Some(answer)) = read_line_by(&mut stream, MAX_ANSWER, std::time::Instant::now() + ANSWER) else {
        return Some(silent());
    };
    match serde_json::from_slice::<Answer>(&answer) {
        Ok(Answer::Refused { error }) if error.kind == OTHER_CONFIG => None,
        Ok(answer) => Some(answer),
        Err(_) => Some(silent()),
    }
}

/// A connection to the socket at `path`, given up on after `patience`: an agent that stopped accepting (its queue
/// full) mustn't hold the caller forever. (Linux bounds a Unix socket's `connect` by its send timeout.)
///
/// # Errors
/// Nothing listens there, or not in time.
fn connect(path: &Path, patience: Duration) -> std::io::Result<std::os::unix::net::UnixStream> {
    use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_timeout(&socket, sockopt::Timeout::Send, Some(patience))?;
    rustix::net::connect(&socket, &SocketAddrUnix::new(path)?)?;
    Ok(std::os::unix::net::UnixStream::from(socket))
}

/// Reads one line of at most `limit` bytes (without its `\n`) before `deadline`, blocking; `None` when the
/// stream ends first.
///
/// # Errors
/// [`std::io::ErrorKind::InvalidData`] for a longer line, [`std::io::ErrorKind::TimedOut`] past the deadline
/// (however slowly the bytes come); the stream's error.
fn read_line_by(
    stream: &mut std::os::unix::net::UnixStream,
    limit: usize,
    deadline: std::time::Instant,
) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{ErrorKind, Read as _};
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let read = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(read) => read,
            // A read timeout is `WouldBlock` on Linux: the deadline, checked above, says it.
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue
            }
            Err(e) => return Err(e),
        };
        let end = chunk[..read].iter().position(|&b| b == b'\n');
        line.extend_from_slice(&chunk[..end.unwrap_or(read)]);
        if line.len() > limit {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the line is too long"));
        }
        if end.is_some() {
            return Ok(Some(line));
        }
    }
}

/// The kind of the answer [`ask`] makes up for an agent that gave none.
pub const NO_ANSWER: &str = "no_answer";

/// How long a request waits for the person to answer the question about its program.
pub const CONSENT_PATIENCE: Duration = Duration::from_secs(120);

/// The kind of the answer to a caller that reads another config file than the agent's.
const OTHER_CONFIG: &str = "other_config";

/// Reads one line of at most `limit` bytes (without its `\n`); `None` when the stream ends first.
///
/// # Errors
/// [`std::io::ErrorKind::InvalidData`] for a longer line; the stream's error.
async fn read_line(stream: &mut UnixStream, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = BufReader::new(stream.take(limit as u64 + 1));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(line));
    }
    if line.len() > limit {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the line is too long"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field may be left out; a field the agent doesn't know is refused, so that nothing can be asked
    /// beyond the request's few fields.
    #[test]
    fn a_request_has_its_few_fields_and_no_other() {
        let least: Request = serde_json::from_str("{}").unwrap();
        assert_eq!(least, Request { min_ttl: 60, ..Request::default() });
        let full: Request = serde_json::from_str(
            r#"{"profile":"work","resource":"https://a.example/","scope":"a b","min_ttl":5,"caller":"kubectl","config":"/c.toml","account":"alice","origin":"https://git.example","spent":"abc"}"#,
        )
        .unwrap();
        assert_eq!(full.profile.as_deref(), Some("work"));
        assert_eq!(full.account.as_deref(), Some("alice"));
        assert_eq!((full.origin.as_deref(), full.spent.as_deref()), (Some("https://git.example"), Some("abc")));
        assert_eq!(full.min_ttl, 5);
        for asked in [r#"{"refresh_token":true}"#, r#"{"want":"id_token"}"#, r#"{"profile":"w","dpop_key":1}"#] {
            assert!(serde_json::from_str::<Request>(asked).is_err(), "{asked}");
        }
    }

    #[test]
    fn an_answer_is_a_token_or_an_error() {
        let token = Answer::Token { token: "t".into(), expires_at: Some(7) };
        assert_eq!(serde_json::to_string(&token).unwrap(), r#"{"token":"t","expires_at":7}"#);
        let refused = Answer::Refused { error: Refusal { kind: "busy".into(), message: "m".into() } };
        assert_eq!(serde_json::to_string(&refused).unwrap(), r#"{"error":{"kind":"busy","message":"m"}}"#);
        assert_eq!(
            serde_json::from_str::<Answer>(r#"{"token":"t","expires_at":null}"#).unwrap(),
            Answer::Token { token: "t".into(), expires_at: None }
        );
    }

    /// An agent that takes the request and closes without an answer is a refusal (kind `no_answer`), never "no
    /// agent": a question about the program may have been pending, and the caller must not go around it. Nothing
    /// listening is "no agent".
    #[test]
    fn an_agent_that_gives_no_answer_is_not_gone_around() {
        let dir = std::env::temp_dir().join(format!("gatehouse-agent-silent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        assert_eq!(ask(&socket, &Request::default()), None, "nothing listens");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let _ = read_line_by(&mut stream, MAX_REQUEST, deadline);
        });
        let answer = ask(&socket, &Request::default());
        assert!(matches!(answer, Some(Answer::Refused { ref error }) if error.kind == NO_ANSWER), "{answer:?}");
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An agent whose queue of connections is full (it stopped accepting) is given up on, not waited for.
    #[test]
    fn a_connection_nobody_accepts_is_given_up_on() {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
        let dir = std::env::temp_dir().join(format!("gatehouse-agent-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let listener = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
        rustix::net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
        rustix::net::listen(&listener, 0).unwrap();
        let (done, ended) = std::sync::mpsc::channel();
        let connecting = path.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let refused = loop {
                match connect(&connecting, Duration::from_millis(100)) {
                    Ok(stream) if held.len() < 8 => held.push(stream),
                    Ok(_) => break None,
                    Err(e) => break Some(e.kind()),
                }
            };
            let _ = done.send(refused);
        });
        let refused = ended.recv_timeout(Duration::from_secs(30)).expect("a connect waited past its patience");
        assert_eq!(refused, Some(std::io::ErrorKind::WouldBlock), "the queue filled, and the next was refused");
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The blocking reader keeps the same limit, ends at the first line, and gives up at its deadline however
    /// the bytes trickle in.
    #[test]
    fn a_blocking_read_stops_at_its_limit_and_its_deadline() {
        use std::io::Write as _;
        let later = || std::time::Instant::now() + Duration::from_secs(5);
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.write_all(b"{\"token\":\"t\"}\nrest").unwrap();
        assert_eq!(read_line_by(&mut ours, 64, later()).unwrap().as_deref(), Some(&b"{\"token\":\"t\"}"[..]));
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(read_line_by(&mut ours, 64, later()).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.write_all(b"no end").unwrap();
        let soon = std::time::Instant::now() + Duration::from_millis(200);
        assert_eq!(read_line_by(&mut ours, 64, soon).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        drop(theirs);
        assert_eq!(read_line_by(&mut ours, 64, later()).unwrap(), None);
    }

    /// A line is read up to its limit and no further; one past it is an error, and a stream that ends before a
    /// line does is no line.
    #[tokio::test]
    async fn lines_are_read_no_further_than_their_limit() {
        use tokio::io::AsyncWriteExt as _;
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"{\"profile\":\"a\"}\nrest").await.unwrap();
        assert_eq!(read_line(&mut ours, 64).await.unwrap().as_deref(), Some(&b"{\"profile\":\"a\"}"[..]));
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(&[b'x'; 100]).await.unwrap();
        assert_eq!(read_line(&mut ours, 64).await.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"no end").await.unwrap();
        drop(theirs);
        assert_eq!(read_line(&mut ours, 64).await.unwrap(), None);
    }
}
