//! The commands: `gatehouse status`, `token`, `sign-in`, `sign-out` and `credential`. They use the same service,
//! config and keychain entry as the window, so a session made in one is used by the other, and they take the
//! same per-profile renewal lock ([`gatehouse_core::tokens::lock`]), so the window and any number of `gatehouse
//! token` processes never renew one session at once.
//!
//! Stdout carries only what was asked for (the token, the status); everything else goes to stderr, prefixed
//! with the error's stable kind.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio::sync::watch;

use gatehouse_app::agent::consent::Decision;
use gatehouse_app::handover;
use gatehouse_app::launch;
use gatehouse_app::say;
use gatehouse_app::Installation;
use gatehouse_core::config::{Config, ConfigError};
use gatehouse_core::error::Error;
use gatehouse_core::error::NarrowError;
use gatehouse_core::service::{ProfileService, Shell};
use gatehouse_core::state::{AuthView, Phase};
use gatehouse_core::tokens::keychain::KeychainError;
use gatehouse_core::tokens::{unix_now, Account};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  an unexpected failure
  2  the command line is wrong
  3  not signed in, or the session has ended: run `gatehouse sign-in`
  4  the config file is broken, or no provider is set up in it
  5  the keychain is missing, locked or didn't answer
  6  the provider couldn't be reached or sent something unusable
  7  the sign-in didn't complete (declined, cancelled, timed out, refused)
  8  the session's tokens are bound to its key (DPoP) and can't be handed out";

/// Sign in to OAuth 2.0 and OpenID Connect providers from the desktop, and hand other tools a fresh token.
///
/// Run without a command, Gatehouse opens its window.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The config file [default: $GATEHOUSE_CONFIG, then ~/.config/com.example.gatehouse/config.toml; the
    /// window's setup view writes it]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show each profile: who is signed in, the state, and when access expires. Never a token.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token to stdout, and nothing else; renew it first if it expires too soon.
    Token {
        /// The profile to use [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Renew the token if it expires within this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = gatehouse_app::agent::DEFAULT_MIN_TTL)]
        min_ttl: u64,
        /// A token for this resource only (RFC 8707), one of the profile's `resources`.
        #[arg(long, value_name = "URL")]
        resource: Option<url::Url>,
        /// A token with only these of the profile's scopes, space-separated (RFC 6749 §6).
        #[arg(long, value_name = "SCOPES")]
        scope: Option<String>,
        /// Don't ask a running Gatehouse's agent: `gatehouse` asked it already, and hands the command over with
        /// this after the agent couldn't give the token (see [`crate::front`]), so that it isn't asked twice.
        #[arg(long = token::AGENT_ASKED, hide = true)]
        agent_asked: bool,
    },
    /// Show the programs the running Gatehouse asked about, and what was decided for each profile.
    Programs {
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Let a program have a profile's tokens from the running Gatehouse without asking.
    Allow {
        /// The program: its path, or a name on PATH.
        program: PathBuf,
        /// The profile [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// Refuse a program a profile's tokens from the running Gatehouse, without asking.
    Deny {
        /// The program: its path, or a name on PATH.
        program: PathBuf,
        /// The profile [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// Show which programs were given tokens, when, and for what: never a token.
    Log {
        /// Only this profile's.
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign in: open the browser and wait for it (needs a loopback redirect_uri, http://127.0.0.1/…), or with
    /// --device show a code to enter on any device.
    SignIn {
        /// The profile to use [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Use the device authorization grant (RFC 8628): for a machine with no browser.
        #[arg(long)]
        device: bool,
    },
    /// Sign out: end the session at the provider (RFC 7009) and remove it from the keychain.
    SignOut {
        /// The profile to use [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// A git credential helper: `git config credential.https://api.example.com.helper "!gatehouse credential"`.
    /// Answers `get` with the access token, only for the host of the profile's resource_url.
    Credential {
        /// The operation git asks for: get, store or erase (store and erase do nothing).
        operation: String,
        /// The profile to use [default: the config's profile]
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
}

/// The words that make a command line the CLI's rather than the window's. The window's own arguments (a
/// deep link, `--hidden`, `--config FILE`) never start with one of these.
const COMMANDS: [&str; 10] =
    ["status", "token", "log", "programs", "allow", "deny", "sign-in", "sign-out", "credential", "help"];

/// Whether `args` (program first) is a command for the CLI: its first argument, after any `--config FILE`, is
/// a subcommand, or asks for help or the version.
pub fn is_cli(args: &[OsString]) -> bool {
    let mut rest = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(arg) = rest.next() {
        match arg {
            "--config" => {
                rest.next();
            }
            _ if arg.starts_with("--config=") => {}
            "-h" | "--help" | "-V" | "--version" => return true,
            _ => return COMMANDS.contains(&arg),
        }
    }
    false
}

/// Runs the command line in `args` (program first) and returns the exit code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: 0 for --help and --version, 2 for a usage error.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&Error::Internal(format!("no async runtime: {e}"))),
    };
    let profile = match &cli.command {
        Command::Token { profile, .. }
        | Command::SignIn { profile, .. }
        | Command::SignOut { profile }
        | Command::Credential { profile, .. } => profile.clone(),
        Command::Allow { profile, .. } | Command::Deny { profile, .. } => profile.clone(),
        Command::Status { .. } | Command::Log { .. } | Command::Programs { .. } => None,
    };
    let result = runtime.block_on(execute(cli));
    // A keychain read that never came back (a Secret Service stuck behind a prompt nobody can answer) was given
    // up on already; it must not keep the command from ending. (A write of unknown outcome was waited for before
    // the renewal lock was let go, so none is left here.)
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e, profile.as_deref()),
    }
}

/// Prints `error` to stderr with what to run next (for `profile`), and returns its exit code.
pub(crate) fn failed(error: &Error, profile: Option<&str>) -> ExitCode {
    let code = fail(error);
    if let Some(step) = next_step(error, profile) {
        say!("gatehouse: {step}");
    }
    code
}

/// Said when the entry a sign-out was to remove changed before it could: another Gatehouse signed in meanwhile.
const CHANGED_MEANWHILE: &str = "The saved session changed meanwhile (another Gatehouse signed in), so it was left as it is. Run the sign-out again to sign that session out.";

/// What to run next after `error`, in the command line's own words: the core says what happened, and never
/// names a button or a flag; the window has its buttons beside the message, and this is the terminal's.
fn next_step(error: &Error, profile: Option<&str>) -> Option<String> {
    use gatehouse_core::error::KeychainError;
    let named = profile.map(|p| format!(" --profile {}", terminal_safe(p))).unwrap_or_default();
    Some(match error {
        Error::NotSignedIn
        | Error::SessionEnded
        | Error::SignInNeeded
        | Error::SignedOutElsewhere
        | Error::AccessDenied
        | Error::SignInTimedOut
        | Error::Authorization { .. }
        | Error::Callback(_)
        | Error::BrowserOpen(_)
        | Error::RenewalNotSaved(_) => format!("to sign in, run: gatehouse sign-in{named}"),
        Error::OtherProvider { .. } | Error::Keychain(KeychainError::Duplicates | KeychainError::Corrupt(_)) => {
            format!("to remove the saved session, run: gatehouse sign-out{named}")
        }
        Error::NeedsWindow => format!("to sign in with a code instead, run: gatehouse sign-in --device{named}"),
        Error::LifetimeTooShort { lifetime, .. } => {
            format!("run gatehouse token with --min-ttl below {lifetime}")
        }
        Error::NoProvider(_) => "to choose a provider, run gatehouse with no command".to_owned(),
        Error::AlreadySignedIn | Error::SignedInElsewhere { .. } => {
            format!("to switch accounts, run: gatehouse sign-out{named}, then gatehouse sign-in{named}")
        }
        _ => return None,
    })
}

async fn execute(cli: Cli) -> Result<(), Error> {
    let explicit = cli.config.clone();
    // A running Gatehouse has the config read and the session at hand: its agent is asked before anything is read
    // here, so that a program's token costs a process start and one exchange over the socket.
    if let Command::Token { profile, min_ttl, resource, scope, agent_asked: false } = &cli.command {
        let asked = token::Asked {
            profile: profile.clone(),
            resource: resource.clone(),
            scope: scope.clone(),
            min_ttl: *min_ttl,
        };
        if token::through_agent(Installation::config_file_for(explicit.clone()), &asked)? {
            return Ok(());
        }
    }
    let installation = Installation::with_config(cli.config);
    if installation.config.as_ref().is_ok_and(Vec::is_empty) {
        let file = installation.config_file.map_or_else(|| "config.toml".to_owned(), |f| f.display().to_string());
        return Err(Error::NoProvider(file));
    }
    // The accounts added in the window are profiles too.
    let config = installation.configs();
    match cli.command {
        Command::Status { json } => status(&installation, config, json).await,
        Command::Token { profile, min_ttl, resource, scope, .. } => {
            let asked = token::Asked { profile, resource, scope, min_ttl };
            token::token(&installation, &config, asked).await
        }
        Command::Log { profile, json } => log::log(&installation, profile.as_deref(), json),
        Command::Programs { json } => programs::programs(&installation, json),
        Command::Allow { program, profile } => {
            programs::decide(&installation, &config, &program, profile.as_deref(), Decision::Allow)
        }
        Command::Deny { program, profile } => {
            programs::decide(&installation, &config, &program, profile.as_deref(), Decision::Deny)
        }
        Command::SignIn { profile, device: false } => {
            let (service, views) = open_profile(&installation, &config, profile.as_deref())?;
            if service.profile().is_some_and(|c| c.loopback().is_none()) {
                return sign_in_in_window(&service, explicit).await;
            }
            sign_in(service, views).await
        }
        Command::SignIn { profile, device: true } => {
            let (service, _) = open_profile(&installation, &config, profile.as_deref())?;
            service.sign_in_with_device(show_device_code).await?;
            signed_in_as(&service.view());
            Ok(())
        }
        Command::Credential { operation, profile } => {
            credential(&installation, &config, profile.as_deref(), &operation, std::io::stdin().lock()).await
        }
        Command::SignOut { profile } => {
            let (service, _) = open_profile(&installation, &config, profile.as_deref())?;
            match service.load().await {
                Ok(true) => {}
                Ok(false) => {
                    say!("Not signed in; nothing to do.");
                    return Ok(());
                }
                // A session this profile can't use: it can still be removed from this computer.
                Err(Error::OtherProvider { stored, .. }) => {
                    if service.forget_stored().await? {
                        say!("Removed the session saved for {stored} from this computer. Gatehouse no longer uses that provider, so it couldn't tell it; to end the session there, sign out on its website.");
                    } else {
                        say!("{CHANGED_MEANWHILE}");
                    }
                    return Ok(());
                }
                Err(Error::Keychain(e @ KeychainError::Corrupt(_))) => {
                    tracing::info!(kind = e.kind(), "removing an unreadable entry");
                    if service.forget_stored().await? {
                        say!("Removed the saved session, which couldn't be read, from this computer. The provider wasn't told; to end the session there, sign out on its website.");
                    } else {
                        say!("{CHANGED_MEANWHILE}");
                    }
                    return Ok(());
                }
                // Several items: sign-out revokes each one it can read, then removes them all.
                Err(Error::Keychain(KeychainError::Duplicates)) => {}
                Err(e) => return Err(e),
            }
            service.sign_out().await?;
            if let Some(notice) = service.view().notice {
                say!("{}", terminal_safe(&notice.message));
            }
            Ok(())
        }
    }
}

/// The service for the profile named `profile` (or the config's first), and the views it publishes.
fn open_profile(
    installation: &Installation,
    configs: &Result<Vec<Config>, ConfigError>,
    profile: Option<&str>,
) -> Result<(Arc<ProfileService>, watch::Receiver<AuthView>), Error> {
    let profiles = configs.as_ref().map_err(|e| Error::Config(e.clone()))?;
    open(installation, find_profile(profiles, profile)?)
}

/// The service for `config`, and the views it publishes.
fn open(
    installation: &Installation,
    config: &Config,
) -> Result<(Arc<ProfileService>, watch::Receiver<AuthView>), Error> {
    let (views, receiver) = watch::channel(AuthView::initial("", None));
    let publish = Box::new(move |view: &AuthView| {
        views.send_replace(view.clone());
    });
    let service = ProfileService::new(Ok(config.clone()), installation.keychain(), CliShell, publish);
    Ok((service, receiver))
}

/// The profile named `profile`, or the config's first.
fn find_profile<'a>(profiles: &'a [Config], profile: Option<&str>) -> Result<&'a Config, Error> {
    let found = match profile {
        Some(name) => profiles.iter().find(|c| c.profile == name),
        None => profiles.first(),
    };
    found.ok_or_else(|| Error::UnknownProfile {
        name: profile.unwrap_or_default().to_owned(),
        known: profiles.iter().map(|c| c.profile.clone()).collect(),
    })
}

/// Signs in a profile whose redirect is the app's private-use scheme (RFC 8252 §7.1): only the window's
/// program receives that link (the system hands it to Gatehouse's desktop entry), so the window signs in, and
/// this waits until the session is in the keychain. A Gatehouse already running is handed the sign-in.
async fn sign_in_in_window(service: &ProfileService, config: Option<PathBuf>) -> Result<(), Error> {
    let profile = service.profile().cloned().ok_or_else(|| Error::Internal("no profile".into()))?;
    if service.load().await? {
        return Err(Error::AlreadySignedIn);
    }
    // Over SSH, say: no window could show the sign-in, and nothing would ever arrive.
    if !handover::has_display(|name| std::env::var_os(name)) {
        return Err(Error::NeedsWindow);
    }
    let mut args: Vec<OsString> = Vec::new();
    if let Some(file) = config {
        args.push("--config".into());
        args.push(file.into_os_string());
    }
    args.push(launch::sign_in_arg(Some(&profile.profile)).into());
    let not_started = |why: String| Error::SignInStopped(format!("Gatehouse's window couldn't be started ({why})."));
    let mut window = handover::start_window(&args).map_err(not_started)?;
    say!(
        "This profile signs in through Gatehouse's window, which receives the browser's answer. Finish signing in \
         in your browser; the window shows how it goes. Waiting… (Ctrl+C stops waiting; the sign-in goes on.)"
    );
    // The window's sign-in gives up after the profile's sign-in time; this waits as long, and a little more.
    let give_up = tokio::time::Instant::now() + profile.sign_in_timeout + Duration::from_secs(15);
    let mut started = false;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A window that fails at once (no display it can open) says so by its exit; one that handed the sign-in
        // to a Gatehouse already running ends at once, successfully.
        if !started {
            match window.try_wait() {
                Ok(Some(status)) if !status.success() => {
                    return Err(not_started(format!("it ended with {status}")));
                }
                Ok(Some(_)) => started = true,
                Ok(None) | Err(_) => {}
            }
        }
        if service.load().await? {
            signed_in_as(&service.view());
            return Ok(());
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(Error::SignInStopped(
                "No session arrived: the sign-in in Gatehouse's window didn't complete (the window says why).".into(),
            ));
        }
    }
}

/// Signs in with the browser and waits until the sign-in completes or fails.
async fn sign_in(service: Arc<ProfileService>, mut views: watch::Receiver<AuthView>) -> Result<(), Error> {
    if service.load().await? {
        return Err(Error::AlreadySignedIn);
    }
    service.sign_in().await?;
    // An address pasted on stdin completes the sign-in as the browser's redirect would.
    let mut pasted = pasted_lines();
    loop {
        let view = views.borrow_and_update().clone();
        match view.phase {
            Phase::SignedIn => {
                let who =
                    view.account.and_then(|a| a.name.or(a.subject)).unwrap_or_else(|| "an unnamed account".into());
                say!("Signed in as {}.", terminal_safe(&who));
                return Ok(());
            }
            Phase::SignedOut | Phase::ConfigError => {
                let message = view.notice.map_or_else(|| "the sign-in stopped".to_owned(), |n| n.message);
                return Err(Error::SignInStopped(message));
            }
            _ => {}
        }
        tokio::select! {
            changed = views.changed() => {
                if changed.is_err() {
                    return Err(Error::Internal("the sign-in ended unexpectedly".into()));
                }
            }
            Some(line) = pasted.recv() => {
                if let Err(e) = service.handle_pasted(&line).await {
                    if service.view().phase == Phase::WaitingForBrowser {
                        say!(
                            "That address wasn't taken: {} Paste the address the browser ended on, or keep waiting.",
                            terminal_safe(&e.to_string())
                        );
                    }
                }
            }
        }
    }
}

/// The non-empty lines typed or pasted on stdin, read on a thread of their own (a read can't be cancelled).
fn pasted_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && sender.blocking_send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn signed_in_as(view: &AuthView) {
    let who = view.account.as_ref().and_then(|a| a.name.clone().or_else(|| a.subject.clone()));
    say!("Signed in as {}.", terminal_safe(who.as_deref().unwrap_or("an unnamed account")));
}

/// Starts the system's browser launcher with `url`. Its own output (xdg-open's, a browser's warnings) goes
/// nowhere: stdout is for what was asked, and stderr for Gatehouse's own words.
fn launch_browser(url: &url::Url) -> Result<(), String> {
    let mut why = "no browser launcher was found".to_owned();
    for mut command in open::commands(url.as_str()) {
        command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        command.stderr(std::process::Stdio::null());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                why = e.to_string();
                continue;
            }
        };
        // A launcher that fails (xdg-open with no browser to hand the link to) says so within moments; one still
        // running then has handed it over, or is the browser itself.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    why = format!("{} exited with {status}", command.get_program().to_string_lossy());
                    break;
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Ok(None) => {
                    // Reaped in the background; the sign-in goes on meanwhile.
                    std::thread::spawn(move || child.wait());
                    return Ok(());
                }
                Err(e) => {
                    why = e.to_string();
                    break;
                }
            }
        }
    }
    Err(why)
}

/// Tells the person where to enter the code (RFC 8628 §3.3), on stderr: stdout stays for what was asked.
fn show_device_code(details: &gatehouse_core::auth::flow::DeviceAuthorization) {
    let minutes = details.expires_in().as_secs().div_ceil(60);
    // RFC 8628 §5.4: what the provider sent is shown, never interpreted by the terminal.
    say!("To sign in, open {} on any device and enter the code", terminal_safe(details.verification_uri().as_str()));
    say!();
    say!("    {}", terminal_safe(details.user_code().secret()));
    say!();
    if let Some(complete) = details.verification_uri_complete() {
        // RFC 8628 §3.3.1: the same, with the code filled in, for a device that can follow a link.
        say!("or open {}", terminal_safe(complete.secret()));
    }
    say!("The code works for {minutes} min. Waiting… (Ctrl+C to give up)");
}

/// Writes `lines` to stdout. A closed stdout (`gatehouse token | head -c0`) is an error like any other, never a
/// panic: `println!` would panic, and with `panic = "abort"` abort a process that holds tokens.
///
/// # Errors
/// [`Error::Internal`] when stdout can't be written.
fn out(lines: &[impl AsRef<str>]) -> Result<(), Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    lines
        .iter()
        .try_for_each(|line| writeln!(stdout, "{}", line.as_ref()))
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Internal(format!("couldn't write to standard output: {}", e.kind())))
}

/// Text from a provider or the keychain made safe to print to a terminal: every control character (the C0 and
/// C1 sets, escape included, and DEL) and every bidirectional override becomes U+FFFD, so that a device code,
/// a verification URI or an account name can't move the cursor, rewrite the screen or reorder what is shown
/// (RFC 8628 §5.4 warns of this).
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
            if c.is_control() || bidi {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Prints `error` to stderr and returns its exit code.
fn fail(error: &Error) -> ExitCode {
    say!("gatehouse: error[{}]: {}", error.kind(), terminal_safe(&error.to_string()));
    ExitCode::from(exit_code(error))
}

/// The documented exit code for `error` (see [`EXIT_CODES`]).
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::UnknownProfile { .. } => 2,
        Error::NotSignedIn
        | Error::SessionEnded
        | Error::SignInNeeded
        | Error::OtherProvider { .. }
        | Error::SignedOutElsewhere => 3,
        Error::Config(_) | Error::Setup(_) | Error::NoProvider(_) | Error::UnsupportedClientAuth(_) => 4,
        Error::Keychain(_) | Error::NotSaved(_) | Error::RenewalNotSaved(_) | Error::SaveUnconfirmed => 5,
        Error::Network(_) | Error::BadResponse(_) | Error::TokenEndpoint { .. } | Error::RenewalBusy => 6,
        Error::Callback(_)
        | Error::AccessDenied
        | Error::Authorization { .. }
        | Error::RevocationRefused(_)
        | Error::BrowserOpen(_)
        | Error::AlreadySignedIn
        | Error::SignInTimedOut
        | Error::NeedsWindow
        | Error::NoDeviceFlow
        | Error::SignInStopped(_)
        | Error::PortInUse(_)
        | Error::SignedInElsewhere { .. } => 7,
        Error::LifetimeTooShort { .. } => 6,
        Error::Setting(_) | Error::Internal(_) => 1,
        Error::DpopBound => 8,
        // The profile doesn't allow it: the config is where to change that.
        Error::NotNarrowed(NarrowError::NotListed { .. } | NarrowError::ScopeNotAsked { .. }) => 4,
        Error::NotNarrowed(_) => 9,
        Error::ProgramRefused { .. } => 10,
    }
}

/// The desktop as the command line has it: the browser.
struct CliShell;

impl Shell for CliShell {
    fn open_browser(&self, url: &url::Url) -> Result<(), String> {
        // The link comes first, whatever the browser does: over SSH, in a VM or with no browser at all, it is the
        // way in. (With pushed requests, RFC 9126, it holds only a reference to the request.)
        say!("To sign in, open this link in a browser:\n\n    {}\n", terminal_safe(url.as_str()));
        match launch_browser(url) {
            Ok(()) => say!("Gatehouse opened your browser with it."),
            Err(e) => say!(
                "No browser could be opened here ({}). Open the link above in a browser on any computer.",
                terminal_safe(&e)
            ),
        }
        say!(
            "If the browser ends on a page that doesn't load (it runs on another computer), paste that page's \
             address here and press Enter. Waiting… (Ctrl+C to give up)"
        );
        Ok(())
    }
}

mod credential;
mod log;
mod programs;
mod status;
pub(crate) mod token;

use credential::credential;
use status::status;

#[cfg(test)]
mod tests;
