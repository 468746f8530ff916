//! What Gatehouse asks of the operating system, below everything else: the time, who it runs as, files and
//! directories only their owner reads, and that a crash never writes its memory (tokens included) to disk.

use std::time::{SystemTime, UNIX_EPOCH};

/// Makes `dir` and its missing parents, each new one readable by its owner only (0700).
///
/// # Errors
/// When a directory can't be made.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` for writing, readable by its owner only (0600); never opens a file already there.
///
/// # Errors
/// When it is there already, or can't be made.
pub fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `O_NOFOLLOW`, for opening a file Gatehouse owns without following a link planted in its place (Linux's value;
/// macOS and the BSDs use 0x100).
#[cfg(unix)]
pub const NOFOLLOW: i32 = if cfg!(target_os = "linux") { 0o400000 } else { 0x100 };

/// The time a session's expiry is judged by: [`SystemClock`], or a test's.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The computer's clock ([`unix_now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        unix_now()
    }
}

/// This process's real user ID, from the kernel (`getuid`): never from the environment, a file's owner or
/// `/proc/self`, whose owner is root in a process that isn't dumpable.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Turns core dumps off for this process: a session's tokens, a refresh token and a DPoP key live in memory for
/// days, and a crash (or `panic = "abort"`) must not hand them to `systemd-coredump`, apport or a `core` file.
///
/// On Linux the process is made not dumpable (`PR_SET_DUMPABLE` 0), which also keeps other processes of the user
/// from attaching to it, and ends at `exec`: the browser it starts, and the program each `exec` hand-over starts
/// (which turns it off again itself), are left as they are. Elsewhere on Unix the soft core size limit goes to 0,
/// which what Gatehouse starts inherits. Nothing here depends on it: the user ID comes from `getuid`, never from
/// `/proc/self`, whose owner becomes root.
///
/// Best effort: a failure is logged by the caller, and Gatehouse runs on.
///
/// # Errors
/// The OS refused.
pub fn disable_core_dumps() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Core).maximum;
        let none = rustix::process::Rlimit { current: Some(0), maximum: hard };
        rustix::process::setrlimit(rustix::process::Resource::Core, none)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The uid is the kernel's answer, whatever directory the process runs in or owns (the owner of the
    /// current directory was once taken for it on macOS).
    #[cfg(unix)]
    #[test]
    fn the_user_is_the_process_s_own() {
        use std::os::unix::fs::MetadataExt;
        let me = super::current_uid();
        // A file this process creates is owned by its effective uid, which is its real one here.
        let probe = std::env::temp_dir().join(format!("gatehouse-uid-{}", std::process::id()));
        std::fs::write(&probe, b"").unwrap();
        assert_eq!(std::fs::metadata(&probe).unwrap().uid(), me);
        std::fs::remove_file(&probe).unwrap();
    }
}
