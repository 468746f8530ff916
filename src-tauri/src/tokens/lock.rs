//! One renewal at a time per profile, across processes: the window and any number of `gatehouse token`
//! processes share one keychain entry. A provider that rotates refresh tokens with reuse detection revokes the
//! whole grant when a spent refresh token comes back (RFC 9700 §4.14.2), so two processes must never refresh
//! the same session at once.
//!
//! The lock is an OS file lock (`flock` on Linux, `LockFileEx` on Windows) on a file in the user's runtime
//! directory (`$XDG_RUNTIME_DIR`, which only the user can reach), or the cache directory where there is none.
//! The OS releases it when the holder closes the file or dies, so a crashed process never leaves it held.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting process tries the lock again.
const RETRY: Duration = Duration::from_millis(20);

/// A held renewal lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RenewalLock {
    _file: File,
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

/// The directory for `service`'s lock files.
pub fn lock_dir(service: &str) -> Option<PathBuf> {
    dirs::runtime_dir().or_else(dirs::cache_dir).map(|dir| dir.join(service).join("locks"))
}

/// Takes `profile`'s renewal lock in `dir`, waiting at most `patience` for another process to release it.
///
/// # Errors
/// [`LockError::Busy`] after `patience`; [`LockError::Unavailable`] when the lock file can't be opened.
pub async fn acquire(dir: &Path, profile: &str, patience: Duration) -> Result<RenewalLock, LockError> {
    let path = dir.join(format!("{}.lock", file_name(profile)));
    let file = open(dir, &path).map_err(|e| LockError::Unavailable(format!("{}: {e}", path.display())))?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RenewalLock { _file: file }),
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

fn open(dir: &Path, path: &Path) -> std::io::Result<File> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        builder.mode(0o700);
        options.mode(0o600);
    }
    builder.create(dir)?;
    options.open(path)
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
