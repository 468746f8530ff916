//! One renewal at a time per profile, across processes: the window and any number of `gatehouse token`
//! processes share one keychain entry. A provider that rotates refresh tokens with reuse detection revokes the
//! whole grant when a spent refresh token comes back (RFC 9700 §4.14.2), so two processes must never refresh
//! the same session at once.
//!
//! The lock is an OS file lock (`flock` on Linux, `LockFileEx` on Windows) on a file in a directory only the
//! user can reach. The OS releases it when the holder closes the file or dies, so a crashed process never leaves
//! it held.
//!
//! Every process of a user must lock the same file, whatever its environment: a `gatehouse token` run from
//! cron, `sudo -u`, `su` or an IDE that cleans its environment has no `XDG_RUNTIME_DIR`, and a lock placed by it
//! would let two renewals run at once. So on Linux the place comes from the user ID alone, and no environment
//! variable (not `XDG_RUNTIME_DIR`, `TMPDIR` or `HOME`) moves it:
//! 1. the user's runtime directory `/run/user/UID` where it exists and is the user's (systemd-logind makes it,
//!    mode 0700);
//! 2. else `/tmp/com.example.gatehouse-UID`, always `/tmp` (pam_tmpdir, tmux and nix-shell set `TMPDIR` for some
//!    processes of a user and not others);
//! 3. and when another user made that name first (anyone can, in `/tmp`), `.local/state/com.example.gatehouse`
//!    in the home directory the user database names for the UID, which nobody else can make. Once that exists it
//!    is used from then on, before `/tmp`: the other user removing their directory must not send the next process
//!    back to `/tmp` while one holds the lock at home.
//!
//! A directory or lock file that already exists is used only if it is the user's own (the process's real uid),
//! not a symbolic link, and reachable by nobody else; anything else is refused, never followed.

use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

/// How often a waiting process tries the lock again.
const RETRY: Duration = Duration::from_millis(20);

/// A held renewal lock; dropping it releases the lock.
pub struct RenewalLock {
    _held: Box<dyn Send + Sync>,
}

impl RenewalLock {
    /// A lock held for as long as `held` lives.
    pub fn holding(held: impl Send + Sync + 'static) -> RenewalLock {
        RenewalLock { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for RenewalLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenewalLock")
    }
}

/// Where renewal locks are held: [`FileLocks`], which every process of the user shares, or a test's own.
pub trait Locks: Send + Sync + 'static {
    /// Takes `profile`'s lock, waiting at most `patience` for its holder to let go.
    ///
    /// # Errors
    /// [`LockError::Busy`] after `patience`; [`LockError::Unavailable`] when the lock can't be made.
    fn acquire<'a>(&'a self, profile: &'a str, patience: Duration) -> Waiting<'a>;
}

/// A lock being waited for.
pub type Waiting<'a> = Pin<Box<dyn Future<Output = Result<RenewalLock, LockError>> + Send + 'a>>;

/// OS file locks, one file per profile, in [`lock_dir`] (the place is looked for at each lock, as conditions
/// such as a runtime directory made at login may change while a program runs).
#[derive(Debug, Clone)]
pub struct FileLocks {
    service: String,
}

impl FileLocks {
    /// The locks of the keychain service `service`, in its [`lock_dir`].
    pub fn of_service(service: &str) -> FileLocks {
        FileLocks { service: service.to_owned() }
    }
}

impl Locks for FileLocks {
    fn acquire<'a>(&'a self, profile: &'a str, patience: Duration) -> Waiting<'a> {
        Box::pin(async move {
            let dir = lock_dir(&self.service)
                .ok_or_else(|| LockError::Unavailable("no runtime or cache directory for the renewal lock".into()))?;
            acquire(&dir, profile, patience).await
        })
    }
}

/// Why the lock couldn't be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another process held it for longer than we could wait.
    #[error("another Gatehouse process is renewing this session and hasn't finished")]
    Busy,
    /// The lock file couldn't be made or opened.
    #[error("couldn't use the lock file {0}")]
    Unavailable(String),
}

/// The directory for `service`'s lock files: the same for every process of this user, whatever its
/// environment (see the module's docs). `None` when there is no place this user alone can hold.
pub fn lock_dir(service: &str) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        let uid = crate::os::current_uid();
        // Read only where the runtime directory isn't the user's: every `gatehouse token` finds its agent here.
        let passwd = || std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        choose_dir(service, uid, Path::new(&format!("/run/user/{uid}")), Path::new("/tmp"), passwd)
    }
    #[cfg(not(target_os = "linux"))]
    {
        dirs::runtime_dir().or_else(dirs::cache_dir).map(|dir| dir.join(service).join("locks"))
    }
}

/// [`lock_dir`]'s choice for `uid`, given where its runtime directory and the shared temporary directory are and
/// the user database's text (`/etc/passwd`), read only when the runtime directory won't do.
#[cfg(target_os = "linux")]
fn choose_dir(service: &str, uid: u32, runtime: &Path, tmp: &Path, passwd: impl FnOnce() -> String) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::symlink_metadata(runtime).is_ok_and(|meta| meta.is_dir() && meta.uid() == uid) {
        return Some(runtime.join(service).join("locks"));
    }
    // A place in the user's home, found by uid (never `HOME`), that nobody else can make.
    let home = passwd()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let home = fields.get(5).filter(|home| !home.is_empty())?;
            (fields.get(2)?.parse::<u32>().ok()? == uid).then(|| PathBuf::from(home))
        })
        .filter(|home| home.is_absolute())
        .map(|home| home.join(".local/state").join(service));
    // Used once (because `/tmp`'s name was taken), it stays the place.
    if let Some(home) = home.as_ref().filter(|home| own_and_private(home).is_ok()) {
        return Some(home.join("locks"));
    }
    let shared = tmp.join(format!("{service}-{uid}"));
    // Not there yet (this process makes it), or there and the user's own: the place every process agrees on.
    match std::fs::symlink_metadata(&shared) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(shared.join("locks")),
        Ok(_) if own_and_private(&shared).is_ok() => return Some(shared.join("locks")),
        _ => {}
    }
    // Another user holds the name (or it can't be looked at).
    home.map(|home| home.join("locks"))
}

/// Takes `profile`'s renewal lock in `dir`, waiting at most `patience` for another process to release it. The
/// lock file stays open while it waits.
///
/// # Errors
/// [`LockError::Busy`] after `patience`; [`LockError::Unavailable`] when the lock file can't be opened.
pub async fn acquire(dir: &Path, profile: &str, patience: Duration) -> Result<RenewalLock, LockError> {
    let path = dir.join(format!("{}.lock", file_name(profile)));
    let file = open(dir, &path).map_err(|e| LockError::Unavailable(format!("{}: {e}", path.display())))?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RenewalLock::holding(file)),
            Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY).await;
            }
            Err(TryLockError::WouldBlock) => return Err(LockError::Busy),
            Err(TryLockError::Error(e)) => {
                return Err(LockError::Unavailable(format!("{}: {e}", path.display())));
            }
        }
    }
}

/// Locks held in this process alone: for tests, where no other process shares the sessions.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryLocks {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

#[cfg(test)]
impl MemoryLocks {
    /// Takes `profile`'s lock if nobody holds it.
    pub(crate) fn try_lock(&self, profile: &str) -> Option<RenewalLock> {
        struct Held(MemoryLocks, String);
        impl Drop for Held {
            fn drop(&mut self) {
                self.0.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
            }
        }
        let taken = self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(profile.to_owned());
        taken.then(|| RenewalLock::holding(Held(self.clone(), profile.to_owned())))
    }
}

#[cfg(test)]
impl Locks for MemoryLocks {
    fn acquire<'a>(&'a self, profile: &'a str, patience: Duration) -> Waiting<'a> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                if let Some(lock) = self.try_lock(profile) {
                    return Ok(lock);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(LockError::Busy);
                }
                tokio::time::sleep(RETRY).await;
            }
        })
    }
}

fn open(dir: &Path, path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: a symbolic link planted where the lock file goes is refused, never followed.
        options.mode(0o600).custom_flags(crate::os::NOFOLLOW);
    }
    private_dir(dir)?;
    let file = options.open(path)?;
    #[cfg(unix)]
    own_and_private(path)?;
    Ok(file)
}

/// Makes `dir` (mode 0700) where it isn't there yet, and checks that it, made now or found, is this user's alone;
/// and so is the directory it is in, unless that is a shared sticky directory such as /tmp, where nobody else can
/// rename or remove it. For the lock files, and for what else lives beside them (the token agent's socket).
///
/// # Errors
/// When it can't be made, or is a symbolic link, another user's, or reachable by others.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        own_and_private(dir)?;
        if let Some(parent) = dir.parent() {
            use std::os::unix::fs::PermissionsExt;
            let sticky =
                std::fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o1000 != 0);
            if !sticky {
                own_and_private(parent)?;
            }
        }
    }
    Ok(())
}

/// Refuses `path` unless it is this user's, not a symbolic link, and reachable by nobody else (no group or
/// other permission bits).
#[cfg(unix)]
fn own_and_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let refused = |why: &str| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_owned());
    // The process's own uid on every platform, never the owner of some other file (such as the current
    // directory, which is root's for an app started by macOS's LaunchServices).
    check_private(meta.file_type().is_symlink(), meta.uid(), meta.mode(), crate::os::current_uid()).map_err(refused)
}

/// Why a file of `owner` and `mode` (a symbolic link if `link`) is no place for `me`'s lock, if it isn't.
#[cfg(unix)]
fn check_private(link: bool, owner: u32, mode: u32, me: u32) -> Result<(), &'static str> {
    if link {
        Err("it is a symbolic link")
    } else if owner != me {
        Err("it belongs to another user")
    } else if mode & 0o077 != 0 {
        Err("other users can reach it")
    } else {
        Ok(())
    }
}

/// A file name for `profile` that no profile name can turn into a path: letters, digits, `-` and `_` are
/// kept, and every other byte is written as `.xx`, so distinct names stay distinct.
fn file_name(profile: &str) -> String {
    let mut name = String::with_capacity(profile.len());
    for byte in profile.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!(".{byte:02x}"));
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gatehouse-lock-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = scratch("wait");
        let first = acquire(&dir, "work", Duration::from_secs(1)).await.unwrap();
        assert_eq!(acquire(&dir, "work", Duration::from_millis(100)).await.unwrap_err(), LockError::Busy);
        // Another profile has its own lock.
        let other = acquire(&dir, "home", Duration::from_millis(100)).await.unwrap();
        let waiter = tokio::spawn({
            let dir = dir.clone();
            async move { acquire(&dir, "work", Duration::from_secs(5)).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        drop(other);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn profile_names_never_escape_the_directory_or_collide() {
        assert_eq!(file_name("work-2_a"), "work-2_a");
        assert_eq!(file_name("../etc/passwd"), ".2e.2e.2fetc.2fpasswd");
        assert_ne!(file_name("a.2e"), file_name("a.."));
        assert_ne!(file_name("a b"), file_name("a_b"));
    }

    /// The place doesn't depend on the environment: with no runtime directory it is always under `/tmp` (the
    /// tests' stand-in for it), never `TMPDIR`; and when another user made that name first, or left it open to
    /// others, the user's home as the user database names it, never `HOME`.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_lock_directory_depends_on_the_user_alone() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let root = scratch("choose");
        let (runtime, tmp) = (root.join("run-user"), root.join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        let uid = crate::os::current_uid();
        let home = root.join("home-me");
        let passwd =
            format!("someone:x:{}:1:,,,:/home/someone:/bin/sh\nme:x:{uid}:1:Me:{}:/bin/sh\n", uid + 1, home.display());
        let choose = || choose_dir("com.example.test", uid, &runtime, &tmp, || passwd.clone());

        // No runtime directory: the shared temporary directory, by uid.
        let shared = tmp.join(format!("com.example.test-{uid}"));
        assert_eq!(choose(), Some(shared.join("locks")));
        // The user's own, private one is used as it is.
        std::fs::DirBuilder::new().mode(0o700).create(&shared).unwrap();
        assert_eq!(choose(), Some(shared.join("locks")));
        // One that others can reach (or that another user made) is passed over for the home the user database
        // names for this uid.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let at_home = home.join(".local/state/com.example.test");
        assert_eq!(choose(), Some(at_home.join("locks")));
        // With no entry for the uid there is no place: refused rather than guessed.
        assert_eq!(choose_dir("com.example.test", uid, &runtime, &tmp, String::new), None);
        // Once the place at home is in use, it stays the place, even when `/tmp`'s name is free again.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&at_home).unwrap();
        std::fs::set_permissions(home.join(".local"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_dir(&shared).unwrap();
        assert_eq!(choose(), Some(at_home.join("locks")));
        // The user's runtime directory comes first.
        std::fs::create_dir(&runtime).unwrap();
        assert_eq!(choose(), Some(runtime.join("com.example.test/locks")));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Whose a lock file is, is decided against the process's uid, whatever owns the current directory.
    #[cfg(unix)]
    #[test]
    fn the_owner_check_compares_with_the_process_s_uid() {
        assert_eq!(check_private(false, 501, 0o700, 501), Ok(()));
        assert_eq!(check_private(false, 0, 0o700, 501), Err("it belongs to another user"));
        assert_eq!(check_private(false, 501, 0o700, 0), Err("it belongs to another user"));
        assert_eq!(check_private(false, 501, 0o750, 501), Err("other users can reach it"));
        assert_eq!(check_private(true, 501, 0o700, 501), Err("it is a symbolic link"));
        // What the live check uses: the kernel's uid, so a directory owned by someone else refuses even when
        // the process runs from inside it.
        let me = crate::os::current_uid();
        let dir = scratch("cwd");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        assert!(own_and_private(&dir).is_ok(), "the process's own directory, uid {me}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A lock file planted as a symbolic link, or a directory other users can reach, is refused, never used.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_planted_link_or_an_open_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("planted");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The link points where nothing is yet: a followed link would create the file there, which is what
        // another user's planted link would want (a file of theirs truncated or made in this user's name).
        let target = dir.with_extension("target");
        let _ = std::fs::remove_file(&target);
        std::os::unix::fs::symlink(&target, dir.join("work.lock")).unwrap();
        let planted = acquire(&dir, "work", Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(planted, LockError::Unavailable(_)), "{planted:?}");
        assert!(!target.exists(), "the link was followed: {} was created", target.display());
        std::fs::remove_file(dir.join("work.lock")).unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let open = acquire(&dir, "work", Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(&open, LockError::Unavailable(why) if why.contains("other users")), "{open:?}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(acquire(&dir, "work", Duration::from_millis(100)).await.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&target);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn only_the_user_can_reach_the_lock() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let _lock = acquire(&dir, "work", Duration::from_secs(1)).await.unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join("work.lock")).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
