//! WebKitGTK's helper processes, which outlive the window on Linux.
//!
//! WebKitGTK keeps its network process running while its web context exists, and Tauri keeps the context for
//! the life of the app on Linux (tauri#14626): after the window is closed, that idle process would hold its
//! memory for as long as Gatehouse sits in the tray. With no web view left it serves nothing, so Gatehouse ends
//! it; WebKit starts a new one for the next window, as it does after any network process crash.

use std::time::Duration;

/// The network process's command name, as the kernel keeps it (15 bytes).
const NETWORK_PROCESS: &str = "WebKitNetworkPr";
/// The web process's.
const WEB_PROCESS: &str = "WebKitWebProces";

/// Ends this process's WebKit network process once no web process of its own is left (the web process of a
/// window just destroyed takes a moment to exit), and returns once none of WebKit's processes is left, or after 30
/// s, saying whether none is. `closed` says whether there is still no window: a window made again in the meantime
/// keeps the processes, and this returns at once.
pub fn end_processes(closed: impl Fn() -> bool) -> bool {
    let mut ended = false;
    for _ in 0..300 {
        let children = children();
        if !closed() {
            return false;
        }
        let webkit = |name: &str| name == WEB_PROCESS || name == NETWORK_PROCESS;
        if !children.iter().any(|(_, name)| webkit(name)) {
            return true;
        }
        if !ended && !children.iter().any(|(_, name)| name == WEB_PROCESS) {
            for (pid, _) in children.iter().filter(|(_, name)| name == NETWORK_PROCESS) {
                end(*pid);
            }
            ended = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::debug!("WebKit's processes are still running; left alone");
    false
}

/// This process's running children: their PIDs and command names.
fn children() -> Vec<(i32, String)> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`: the name may itself hold spaces and parentheses.
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let mut fields = rest.split_whitespace();
            // One that has ended (a zombie) is gone but for its exit status, which GLib or the light tray collects.
            let running = fields.next()? != "Z";
            let parent = fields.next()?;
            (running && parent == me).then_some((pid, name))
        })
        .collect()
}

fn end(pid: i32) {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else { return };
    match rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
        Ok(()) => tracing::info!("ended WebKit's idle network process"),
        Err(e) => tracing::warn!("couldn't end WebKit's idle network process: {e}"),
    }
}
