//! The desktop seen from outside the app: its windows on the X server, its processes, their memory, ports and
//! mapped libraries, and files left on disk.

use super::*;

/// Whether a window titled `title` is on screen (mapped and viewable), as the X server sees it: `xwininfo`
/// from x11-utils, which the test set-up installs.
pub fn window_on_screen(title: &str) -> bool {
    !viewable_windows(title).is_empty()
}

/// The X IDs of the viewable windows titled `title`.
pub(super) fn viewable_windows(title: &str) -> Vec<u32> {
    let output = Command::new("xwininfo").args(["-root", "-tree"]).output();
    let tree = String::from_utf8_lossy(&output.unwrap_or_else(|e| panic!("xwininfo: {e}")).stdout).into_owned();
    let quoted = format!("\"{title}\":");
    tree.lines()
        .filter(|line| line.contains(&quoted))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|id| {
            Command::new("xwininfo")
                .args(["-id", id])
                .output()
                .is_ok_and(|info| String::from_utf8_lossy(&info.stdout).contains("Map State: IsViewable"))
        })
        .filter_map(|id| u32::from_str_radix(id.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// Closes the window titled `title` as its title bar's close button does: the window manager's
/// `WM_DELETE_WINDOW` request (ICCCM §4.2.8.1), which the app may act on as it likes.
///
/// # Panics
/// When there is no such window on screen, or no X display.
pub fn close_window(title: &str) {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
    let ids = viewable_windows(title);
    assert!(!ids.is_empty(), "no window {title:?} on screen to close");
    let (conn, _) = x11rb::connect(None).unwrap_or_else(|e| panic!("X display: {e}"));
    let atom = |name: &str| {
        let reply = conn.intern_atom(false, name.as_bytes()).ok().and_then(|cookie| cookie.reply().ok());
        reply.unwrap_or_else(|| panic!("X atom {name}")).atom
    };
    let (protocols, delete) = (atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW"));
    for id in ids {
        let event = ClientMessageEvent::new(32, id, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
        conn.send_event(false, id, EventMask::NO_EVENT, event).unwrap_or_else(|e| panic!("X send_event: {e}"));
    }
    conn.flush().unwrap_or_else(|e| panic!("X flush: {e}"));
}

/// WebKit's processes started by process `root`: its web and network processes.
pub fn webkit_processes(root: u32) -> Vec<u32> {
    descendants(root)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| matches!(comm.trim(), "WebKitWebProces" | "WebKitNetworkPr"))
        })
        .collect()
}

/// Every process below `root`.
pub(super) fn descendants(root: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
    for pid in processes_where(|_| true) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            found.push(*child);
            stack.push(*child);
        }
    }
    found
}

/// The resident memory of process `root` and its WebKit descendants (the web and network processes), in MiB.
/// Other descendants, such as a browser the app opened, are not the app's and are left out.
pub fn tree_rss_mib(root: u32) -> f64 {
    sum_mib(root, "/status", "VmRSS:")
}

/// The proportional set size of process `root` and its WebKit processes, in MiB: each shared page counted
/// once across them all (`/proc/PID/smaps_rollup`).
pub fn tree_pss_mib(root: u32) -> f64 {
    sum_mib(root, "/smaps_rollup", "Pss:")
}

/// The sum over `root` and its WebKit processes of the kB figure on the line starting `key` in
/// `/proc/PID<file>`, in MiB.
pub(super) fn sum_mib(root: u32, file: &str, key: &str) -> f64 {
    let kib = |pid: u32| {
        let text = std::fs::read_to_string(format!("/proc/{pid}{file}")).unwrap_or_default();
        let value = text.lines().find_map(|l| l.strip_prefix(key));
        value.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    (kib(root) + webkit_processes(root).into_iter().map(kib).sum::<f64>()) / 1024.0
}

/// The TCP ports on 127.0.0.1 that the processes `pids` listen on, read from `/proc` as `ss -ltnp` would.
pub fn listening_loopback_ports(pids: &[u32]) -> Vec<u16> {
    let mut ports = Vec::new();
    for pid in pids {
        // The socket inodes this process holds open.
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        let inodes: Vec<String> = fds
            .filter_map(|fd| fd.ok())
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|target| {
                let target = target.to_string_lossy().into_owned();
                target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')).map(str::to_owned)
            })
            .collect();
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, and the inode is the tenth field.
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let Some((ip, port)) = local.split_once(':') else { continue };
            if *state == "0A" && ip == "0100007F" && inodes.iter().any(|i| i == inode) {
                if let Ok(port) = u16::from_str_radix(port, 16) {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The running processes of the app: the debug build, or a packaged copy of it, whatever its path.
pub fn app_processes() -> Vec<u32> {
    processes_where(|pid| {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
            let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.strip_suffix(" (deleted)").unwrap_or(&name);
            matches!(name, "gatehouse" | "gatehouse-cli" | "gatehouse-window")
        })
    })
}

/// The running processes of `binary`, and nothing else.
pub fn processes_of(binary: &Path) -> Vec<u32> {
    processes_where(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary))
}

/// The running processes for which `matches(pid)` holds.
pub(super) fn processes_where(matches: impl Fn(u32) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| matches(*pid))
        .collect()
}

pub(super) fn terminate(pids: Vec<u32>) {
    for pid in pids {
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    }
}

/// Stops the browser scripts still at work (and, through them, their Chromium).
pub(super) fn terminate_browsers(script: &Path) {
    let script = script.display().to_string();
    terminate(processes_where(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&script))
    }));
}

/// Waits until no instance of the app runs, so the next launch is not forwarded to an old one.
pub async fn wait_for_no_app() {
    wait_for("the app to exit", UI_TIMEOUT, || async { app_processes().is_empty().then_some(()) }).await;
}

/// A D-Bus session bus with nothing on it: no Secret Service, and no way to start one.
pub struct BareBus {
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    child: Child,
    _dir: PathBuf,
}

impl BareBus {
    /// Starts the bus.
    pub fn start(scratch: &Path) -> BareBus {
        let dir = scratch.join("bare-bus");
        let services = dir.join("services");
        std::fs::create_dir_all(&services).unwrap_or_else(|e| panic!("bus dir: {e}"));
        let config = dir.join("session.conf");
        // Like the standard session bus, but its only service directory is empty, so nothing can be
        // activated: in particular not gnome-keyring as org.freedesktop.secrets.
        let text = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir = dir.display(),
            services = services.display()
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("bus config: {e}"));
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("dbus-daemon: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("dbus-daemon has no stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .unwrap_or_else(|e| panic!("bus address: {e}"));
        BareBus { address: line.trim().to_owned(), child, _dir: dir }
    }
}

impl Drop for BareBus {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Every file under `dir` whose bytes contain a base64url run whose SHA-256 is in `hashes`.
pub fn files_containing_tokens(dir: &Path, hashes: &[String]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if meta.is_file() {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let runs = bytes.split(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
            if runs
                .filter(|run| run.len() >= 20)
                .any(|run| hashes.contains(&crate::sha256_hex(&String::from_utf8_lossy(run))))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The token hashes the provider issued, from its `grant.success` events.
pub fn issued_token_hashes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "grant.success")
        .flat_map(|e| [e["access_token_sha256"].as_str(), e["refresh_token_sha256"].as_str()])
        .flatten()
        .map(str::to_owned)
        .collect()
}

/// The libraries that make a window: GTK and GDK, WebKitGTK and its JavaScriptCore and libsoup, the tray's
/// AppIndicator.
pub const WINDOW_TOOLKIT: [&str; 6] =
    ["libgtk-", "libgdk-", "libwebkit2gtk", "libjavascriptcoregtk", "libsoup-", "appindicator"];

/// The lines of `libraries` (a library list, a loader trace or a process's maps) that name the window toolkit.
pub fn toolkit_in(libraries: &str) -> Vec<&str> {
    libraries.lines().filter(|line| WINDOW_TOOLKIT.iter().any(|lib| line.contains(lib))).collect()
}

/// The window toolkit's libraries that process `pid` has mapped, each once.
pub fn toolkit_mapped(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut libraries: Vec<String> =
        toolkit_in(&maps).iter().filter_map(|line| line.split_whitespace().nth(5)).map(str::to_owned).collect();
    libraries.dedup();
    libraries
}
