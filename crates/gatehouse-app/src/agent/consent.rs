//! Consent per program: the first time a program asks the agent for a token of a profile, the person decides,
//! in the window when it is open, else in a desktop notification with Allow and Deny
//! (org.freedesktop.Notifications over D-Bus, no GTK). The decision
//! is remembered per (program, profile) in `programs.json` in the app's data directory (0600), listed and changed
//! with `gatehouse programs`, `gatehouse allow` and `gatehouse deny`. With no notification server, or no answer in
//! time, the program is refused, with the command that allows it.
//!
//! Gatehouse's own commands (`gatehouse token`, and git through `gatehouse credential`) are allowed by default;
//! a profile with `trust_gatehouse_commands = false` makes them ask too, as the program that ran them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A person's decision for a program and a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// It may have the profile's tokens.
    Allow,
    /// It may not, and is refused without asking again.
    Deny,
}

/// One remembered decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The program: its executable, as the kernel names it.
    pub program: PathBuf,
    /// The profile.
    pub profile: String,
    /// What was decided.
    pub decision: Decision,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
}

/// The decisions kept in a file.
#[derive(Debug, Clone)]
pub struct Decisions {
    file: PathBuf,
}

impl Decisions {
    /// The decisions kept in `file`.
    pub fn at(file: PathBuf) -> Decisions {
        Decisions { file }
    }

    /// Every decision, in the order made. A file that can't be read is no decision: nothing is allowed on a guess.
    pub fn list(&self) -> Vec<Remembered> {
        std::fs::read(&self.file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// The decisions about `profile`'s tokens.
    pub fn of_profile(&self, profile: &str) -> Vec<Remembered> {
        self.list().into_iter().filter(|r| r.profile == profile).collect()
    }

    /// The decision for `program` and `profile`, if one was made.
    pub fn of(&self, program: &Path, profile: &str) -> Option<Decision> {
        self.list().into_iter().find(|r| r.program == program && r.profile == profile).map(|r| r.decision)
    }

    /// Remembers `decision` for `program` and `profile`, replacing an earlier one; `None` forgets it.
    ///
    /// # Errors
    /// When the file can't be written.
    pub fn set(&self, program: &Path, profile: &str, decision: Option<Decision>) -> std::io::Result<()> {
        // One change at a time across processes (the running Gatehouse and `gatehouse allow`), so that two made
        // at once both stay: the read, the change and the rename are one step under the lock.
        let _changing = self.lock()?;
        // A file that is there but can't be read is never written over: its denials would go with it.
        let mut all: Vec<Remembered> = match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!("{} can't be read ({e}); fix or remove it", self.file.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        all.retain(|r| !(r.program == program && r.profile == profile));
        if let Some(decision) = decision {
            let at = gatehouse_core::os::unix_now();
            all.push(Remembered { program: program.to_owned(), profile: profile.to_owned(), decision, at });
        }
        write_private(&self.file, &serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?)
    }

    /// The lock every change holds: an exclusive `flock` of `programs.json.lock` beside the file, let go when the
    /// file is closed.
    fn lock(&self) -> std::io::Result<std::fs::File> {
        let dir = self.file.parent().ok_or_else(|| std::io::Error::other("no directory"))?;
        gatehouse_core::os::create_private_dir(dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options.open(self.file.with_extension("json.lock"))?;
        // Bounded: a holder that never lets go (a stopped `gatehouse allow`) makes this change fail, said as
        // such, rather than hold up the agent or the window.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(lock),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::other("another program is changing the decisions; try again"));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// How long a change of the decisions waits for another's.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// Writes `bytes` to `file` whole or not at all (a temporary file renamed over it), readable by its owner only.
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = file.parent().ok_or_else(|| std::io::Error::other("no directory"))?;
    gatehouse_core::os::create_private_dir(dir)?;
    // One name per write, even for two writers in one process (the window and its agent).
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = file.with_extension(format!("tmp.{}.{write}", std::process::id()));
    let written =
        gatehouse_core::os::private_file(&temporary).and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    std::fs::rename(&temporary, file)
}

/// How many callers may wait for a person's answer at once; more are told the agent is busy.
const MAX_WAITING: usize = 4;

/// A caller, as the kernel names it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its process ID.
    pub pid: Option<i32>,
    /// Its executable.
    pub program: Option<PathBuf>,
}

impl Caller {
    /// The caller of process `pid`, by `/proc/PID/exe`.
    pub fn of(pid: Option<i32>) -> Caller {
        Caller { pid, program: pid.and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok()) }
    }

    /// The process that started this one, read from `/proc/PID/stat`.
    fn parent(&self) -> Caller {
        let stat = self.pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok());
        Caller::of(stat.as_deref().and_then(parent_in_stat))
    }
}

/// The parent's process ID in a `/proc/PID/stat` line: its fourth field, read after the command name, which may
/// hold spaces and parentheses. `None` for init (1): a process left to it by a parent that exited has no parent
/// to name, and init is not taken for the program that asked.
fn parent_in_stat(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse::<i32>().ok().filter(|&ppid| ppid > 1)
}

/// A question the agent puts to the person: may `program` have `profile`'s tokens?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// Which question this is: an answer names it, so that it can't land on the next one.
    pub id: u64,
    /// The program that asks, by its whole path.
    pub program: PathBuf,
    /// The profile whose tokens it asks for.
    pub profile: String,
    /// What for, such as " for https://api…" (empty for the profile's own token).
    pub detail: String,
}

/// Shows a question in the window (`Some`) or takes it away (`None`); whether a window showed it.
pub type Window = Box<dyn Fn(Option<&Question>) -> bool + Send + Sync>;

/// What the agent asks before it hands out a token: whether the person let this program have this profile's.
pub struct Consent {
    decisions: Decisions,
    /// Gatehouse's own command-line programs (`gatehouse`, `gatehouse-cli`), allowed by default.
    own_commands: Vec<PathBuf>,
    /// One question at a time: a second caller of the same program finds the first's answer.
    asking: tokio::sync::Mutex<()>,
    waiting: tokio::sync::Semaphore,
    patience: Duration,
    /// The window, which asks instead of a notification while it is open.
    window: std::sync::Mutex<Option<std::sync::Arc<Window>>>,
    /// The question being asked, and where its answer goes.
    pending: std::sync::Mutex<Option<(Question, tokio::sync::oneshot::Sender<Decision>)>>,
    /// The next question's [`Question::id`].
    questions: std::sync::atomic::AtomicU64,
}

impl Consent {
    /// Decisions kept in `decisions`, asked for within `patience`, with `own_commands` allowed by default.
    pub fn new(decisions: Decisions, own_commands: Vec<PathBuf>, patience: Duration) -> Consent {
        Consent {
            decisions,
            own_commands: own_commands.into_iter().map(|p| p.canonicalize().unwrap_or(p)).collect(),
            asking: tokio::sync::Mutex::new(()),
            waiting: tokio::sync::Semaphore::new(MAX_WAITING),
            patience,
            window: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(None),
            questions: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Asks in `window` from now on, whenever it shows the question (it is open); else in a notification.
    pub fn ask_in(&self, window: Window) {
        *lock(&self.window) = Some(std::sync::Arc::new(window));
    }

    /// The question being asked, if any: for a window that opens while it is.
    pub fn pending(&self) -> Option<Question> {
        lock(&self.pending).as_ref().map(|(question, _)| question.clone())
    }

    /// The person's `decision` in the window about the question `id` being asked, which must be about `program`
    /// and `profile`. Whether it was: then the waiting caller has its answer, and the decision is remembered.
    pub fn answer(&self, id: u64, program: &Path, profile: &str, decision: Decision) -> bool {
        let answer = {
            let mut pending = lock(&self.pending);
            match pending.take() {
                Some((question, answer))
                    if question.id == id && question.program == program && question.profile == profile =>
                {
                    answer
                }
                other => {
                    *pending = other;
                    return false;
                }
            }
        };
        // Remembered before the caller has its answer, so that the window's list shows it at once.
        if let Err(e) = self.decisions.set(program, profile, Some(decision)) {
            tracing::warn!("couldn't remember the decision: {e}");
        }
        answer.send(decision).is_ok()
    }

    /// The window closed with a question in it: the caller is told nobody answered, at once.
    pub fn withdraw(&self) {
        lock(&self.pending).take();
    }

    /// Asks the person `question`: in the window if it shows it, else in a notification. `None` when nobody
    /// answered.
    async fn ask(&self, question: Question) -> Option<Decision> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        *lock(&self.pending) = Some((question.clone(), answer));
        let window = lock(&self.window).clone();
        let shown = window.as_ref().is_some_and(|window| window(Some(&question)));
        let decision = if shown {
            tracing::info!(program = %question.program.display(), "asking in the window");
            tokio::time::timeout(self.patience, answered).await.ok().and_then(Result::ok)
        } else {
            // A window opened meanwhile shows the question too (`pending`), and may answer it first.
            notify(&question, self.patience, answered).await
        };
        lock(&self.pending).take();
        // Taken away wherever it is shown, also in a window that found it pending.
        if let Some(window) = window {
            window(None);
        }
        decision
    }

    /// Whether `caller` may have a token of `profile` (for `detail`, such as " for https://api…"): by the
    /// decision remembered, else by asking the person. Gatehouse's own commands may, unless `trust_own` is off;
    /// they then ask as the program that ran them.
    ///
    /// # Errors
    /// A refusal that says how to allow the program.
    pub async fn check(
        &self,
        caller: &Caller,
        profile: &str,
        trust_own: bool,
        detail: &str,
    ) -> Result<(), super::Refusal> {
        let own = caller.program.as_ref().is_some_and(|program| self.own_commands.contains(program));
        if own && trust_own {
            tracing::info!(profile, "one of Gatehouse's own commands, allowed");
            return Ok(());
        }
        let asking = if own { caller.parent() } else { caller.clone() };
        let Some(program) = asking.program else {
            return Err(refused(
                "program_unknown",
                "Gatehouse couldn't tell which program asks for a token, so it gave none.",
            ));
        };
        let remembered = self.decisions.of(&program, profile);
        tracing::info!(program = %program.display(), profile, ?remembered, "whether this program may have the tokens");
        match remembered {
            Some(Decision::Allow) => return Ok(()),
            Some(Decision::Deny) => return Err(denied(&program, profile)),
            None => {}
        }
        let Ok(_waiting) = self.waiting.try_acquire() else {
            return Err(refused("busy", "Gatehouse is already asking about other programs; try again."));
        };
        let _one = self.asking.lock().await;
        // Decided while this caller waited its turn.
        let decided = match self.decisions.of(&program, profile) {
            Some(decision) => Some(decision),
            None => {
                let id = self.questions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let question =
                    Question { id, program: program.clone(), profile: profile.to_owned(), detail: detail.to_owned() };
                let decision = self.ask(question).await;
                tracing::info!(program = %program.display(), profile, ?decision, "the person's answer");
                if let Some(decision) = decision {
                    // Off the agent's thread: the file's lock may have to wait for another program.
                    let (decisions, program, profile) = (self.decisions.clone(), program.clone(), profile.to_owned());
                    let remembered =
                        tokio::task::spawn_blocking(move || decisions.set(&program, &profile, Some(decision))).await;
                    if let Ok(Err(e)) | Err(e) = remembered.map_err(std::io::Error::other) {
                        tracing::warn!("couldn't remember the decision: {e}");
                    }
                }
                decision
            }
        };
        match decided {
            Some(Decision::Allow) => Ok(()),
            Some(Decision::Deny) => Err(denied(&program, profile)),
            None => Err(refused(
                "program_not_allowed",
                &format!(
                    "{} hasn't been allowed the tokens of {profile}, and nobody answered Gatehouse's question (no notification server, the window closed, or no answer in time). To allow it: gatehouse allow {} --profile {profile}",
                    program.display(),
                    program.display()
                ),
            )),
        }
    }
}

/// `mutex`'s value, also after a panic elsewhere (each value here is whole between statements).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn denied(program: &Path, profile: &str) -> super::Refusal {
    refused(
        "program_denied",
        &format!(
            "{} was denied the tokens of {profile}. To allow it: gatehouse allow {} --profile {profile}",
            program.display(),
            program.display()
        ),
    )
}

fn refused(kind: &str, message: &str) -> super::Refusal {
    super::Refusal { kind: kind.to_owned(), message: message.to_owned() }
}

/// `text` with the characters the notification spec's body markup gives meaning to escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Without a notification bus, only a window can answer.
#[cfg(not(target_os = "linux"))]
async fn notify(
    _question: &Question,
    patience: Duration,
    answered: tokio::sync::oneshot::Receiver<Decision>,
) -> Option<Decision> {
    tokio::time::timeout(patience, answered).await.ok().and_then(Result::ok)
}
/// Asks the person, in a desktop notification with Allow and Deny (org.freedesktop.Notifications), whether
/// `program` may have `profile`'s tokens. `None` when nobody can be asked (no notification server, or one
/// without actions), or nobody answered within `patience`; the notification is then taken back.
/// A window that finds the question pending may answer it meanwhile (`answered`): then the notification is taken
/// back.
#[cfg(target_os = "linux")]
async fn notify(
    question: &Question,
    patience: Duration,
    mut answered: tokio::sync::oneshot::Receiver<Decision>,
) -> Option<Decision> {
    use futures_util::StreamExt as _;
    let Question { program, profile, detail, .. } = question;
    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";
    let bus = zbus::Connection::session().await.ok()?;
    let proxy = zbus::Proxy::new(&bus, NAME, PATH, NAME).await.ok()?;
    let capabilities: Vec<String> = proxy.call("GetCapabilities", &()).await.ok()?;
    if !capabilities.iter().any(|c| c == "actions") {
        return None;
    }
    // Listening before the notification is shown, so that no answer comes before the ear.
    let mut invoked = proxy.receive_signal("ActionInvoked").await.ok()?;
    let mut closed = proxy.receive_signal("NotificationClosed").await.ok()?;
    // The whole path: a program named like a trusted one elsewhere (`/tmp/x/git`) must not pass for it. Servers
    // may read the body as markup, so its text is escaped.
    let summary = format!("Allow {} to use your {profile} account?", program.display());
    let body = escape(&format!(
        "{} asks Gatehouse for a token of {profile}{detail}. Your answer counts for every token of this account.",
        program.display()
    ));
    let actions = vec!["allow", "Allow", "deny", "Deny"];
    let mut hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    // Critical: it stays until answered, as a question must.
    hints.insert("urgency", zbus::zvariant::Value::U8(2));
    let timeout = i32::try_from(patience.as_millis()).unwrap_or(i32::MAX);
    let id: u32 =
        proxy.call("Notify", &("Gatehouse", 0u32, "gatehouse", summary, body, actions, hints, timeout)).await.ok()?;
    // The answer, and whether the notification is still up.
    let answer = async {
        loop {
            tokio::select! {
                decision = &mut answered => return (decision.ok(), true),
                Some(signal) = invoked.next() => {
                    let Ok((about, action)) = signal.body().deserialize::<(u32, String)>() else { continue };
                    if about == id {
                        return match action.as_str() {
                            "allow" => (Some(Decision::Allow), false),
                            "deny" => (Some(Decision::Deny), false),
                            _ => (None, true),
                        };
                    }
                }
                Some(signal) = closed.next() => {
                    // Dismissed without an answer: nothing is decided.
                    if signal.body().deserialize::<(u32, u32)>().is_ok_and(|(about, _)| about == id) {
                        return (None, false);
                    }
                }
                else => return (None, true),
            }
        }
    };
    let (decision, still_up) = tokio::time::timeout(patience, answer).await.unwrap_or((None, true));
    if still_up || decision.is_none() {
        let _ = proxy.call::<_, _, ()>("CloseNotification", &(id,)).await;
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions are remembered per (program, profile), replaced, forgotten, and kept owner-only; a file that
    /// can't be read allows nothing.
    #[test]
    fn decisions_are_kept_per_program_and_profile() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("gatehouse-programs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let decisions = Decisions::at(dir.join("programs.json"));
        let kubectl = Path::new("/usr/bin/kubectl");
        assert_eq!(decisions.of(kubectl, "work"), None);
        decisions.set(kubectl, "work", Some(Decision::Allow)).unwrap();
        decisions.set(kubectl, "home", Some(Decision::Deny)).unwrap();
        assert_eq!(decisions.of(kubectl, "work"), Some(Decision::Allow));
        assert_eq!(decisions.of(kubectl, "home"), Some(Decision::Deny));
        assert_eq!(decisions.of(Path::new("/usr/bin/skopeo"), "work"), None);
        decisions.set(kubectl, "work", Some(Decision::Deny)).unwrap();
        assert_eq!(decisions.of(kubectl, "work"), Some(Decision::Deny));
        assert_eq!(decisions.list().len(), 2);
        decisions.set(kubectl, "home", None).unwrap();
        assert_eq!(decisions.of(kubectl, "home"), None);
        assert_eq!(std::fs::metadata(dir.join("programs.json")).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(dir.join("programs.json"), "not json").unwrap();
        assert_eq!(decisions.of(kubectl, "work"), None, "an unreadable file allows nothing");
        assert!(decisions.set(kubectl, "work", Some(Decision::Allow)).is_err(), "and is never written over");
        assert_eq!(std::fs::read_to_string(dir.join("programs.json")).unwrap(), "not json");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Changes made at once (here by threads; by processes the lock is the same `flock`) all stay.
    #[test]
    fn decisions_made_at_once_all_stay() {
        let dir = std::env::temp_dir().join(format!("gatehouse-programs-at-once-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let decisions = Decisions::at(dir.join("programs.json"));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let decisions = decisions.clone();
                std::thread::spawn(move || {
                    for round in 0..10 {
                        let program = PathBuf::from(format!("/usr/bin/tool-{i}-{round}"));
                        decisions.set(&program, "work", Some(Decision::Allow)).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(decisions.list().len(), 80);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With a window open, the question is asked there: only an answer naming the question, its program and its
    /// profile is taken, it is remembered, and a window that closes leaves the caller refused at once (long before
    /// the hour it would otherwise wait).
    #[tokio::test]
    async fn the_window_answers_the_question_it_shows() {
        const SOON: Duration = Duration::from_secs(10);
        let dir = std::env::temp_dir().join(format!("gatehouse-window-question-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let decisions = Decisions::at(dir.join("programs.json"));
        let consent = std::sync::Arc::new(Consent::new(decisions.clone(), Vec::new(), Duration::from_secs(3600)));
        let shown: std::sync::Arc<std::sync::Mutex<Vec<Option<Question>>>> = std::sync::Arc::default();
        let seen = std::sync::Arc::clone(&shown);
        consent.ask_in(Box::new(move |question| {
            lock(&seen).push(question.cloned());
            true
        }));
        let me = Caller::of(Some(i32::try_from(std::process::id()).unwrap()));
        let program = me.program.clone().unwrap();
        async fn asked(consent: &Consent) -> Question {
            loop {
                if let Some(question) = consent.pending() {
                    return question;
                }
                tokio::task::yield_now().await;
            }
        }
        let asking = {
            let (consent, me) = (std::sync::Arc::clone(&consent), me.clone());
            tokio::spawn(async move { consent.check(&me, "work", true, "").await })
        };
        let question = tokio::time::timeout(SOON, asked(&consent)).await.unwrap();
        let id = question.id;
        assert!(!consent.answer(id, Path::new("/usr/bin/other"), "work", Decision::Allow), "another program");
        assert!(!consent.answer(id, &program, "home", Decision::Allow), "another profile");
        assert!(!consent.answer(id + 1, &program, "work", Decision::Allow), "another question");
        assert!(consent.answer(id, &program, "work", Decision::Allow));
        assert!(tokio::time::timeout(SOON, asking).await.unwrap().unwrap().is_ok());
        assert_eq!(decisions.of(&program, "work"), Some(Decision::Allow));
        assert_eq!(*lock(&shown), [Some(question), None], "shown, then taken away");

        let asking = {
            let consent = std::sync::Arc::clone(&consent);
            tokio::spawn(async move { consent.check(&me, "home", true, "").await })
        };
        tokio::time::timeout(SOON, asked(&consent)).await.unwrap();
        consent.withdraw();
        let refused = tokio::time::timeout(SOON, asking).await.expect("refused at once").unwrap();
        assert_eq!(refused.unwrap_err().kind, "program_not_allowed");
        assert_eq!(decisions.of(&program, "home"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The parent is read from `/proc/PID/stat` past the command name, which may hold spaces and parentheses.
    #[test]
    fn a_caller_s_parent_is_the_process_that_started_it() {
        let me = Caller::of(Some(i32::try_from(std::process::id()).unwrap()));
        assert_eq!(me.program, std::env::current_exe().ok());
        let parent = me.parent();
        let expected = rustix_free_ppid();
        assert_eq!(parent.pid, Some(expected));
    }

    /// A command name with spaces and parentheses doesn't move the fields; a parent of 1 (an orphan's) is none.
    #[test]
    fn a_parent_is_read_past_the_command_name_and_is_never_init() {
        assert_eq!(parent_in_stat("4243 (my (odd) tool) S 4242 4243 4243 0 -1"), Some(4242));
        assert_eq!(parent_in_stat("4243 (orphan) S 1 4243 4243 0 -1"), None);
        assert_eq!(parent_in_stat("4243 (no fields"), None);
    }

    /// This process's parent, from `/proc/self/status`'s `PPid:` line (another reading than the one tested).
    fn rustix_free_ppid() -> i32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().parse().unwrap()
    }
}
