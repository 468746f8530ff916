//! The Debian package that `tests/bin/package --debug` builds (`tests/bin/test` builds it first): what it
//! installs, what it depends on, and a desktop entry that receives the sign-in redirect. The installed-app
//! scenario (e2e s21) runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

use std::path::PathBuf;
use std::process::Command;

/// The newest .deb the bundler made.
fn package() -> PathBuf {
    harness::desktop::debian_package()
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A scratch directory, removed when dropped (also after a failed assertion).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The packaged desktop entry, read out of the .deb (only that file: the package holds a debug build of
/// hundreds of MiB), and a copy of it on disk for `desktop-file-validate`.
fn desktop_entry() -> (Scratch, PathBuf, String) {
    let member = "usr/share/applications/Gatehouse.desktop";
    let tar = Command::new("dpkg-deb").arg("--fsys-tarfile").arg(package()).output().unwrap();
    assert!(tar.status.success(), "dpkg-deb --fsys-tarfile: {}", String::from_utf8_lossy(&tar.stderr));
    let mut extract = Command::new("tar")
        .args(["-xO", member])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        // tar stops reading once it has the member; a closed pipe after that is fine.
        let _ = extract.stdin.take().unwrap().write_all(&tar.stdout);
    }
    let output = extract.wait_with_output().unwrap();
    assert!(output.status.success(), "{member} missing from the package");
    let text = String::from_utf8(output.stdout).unwrap();
    let scratch = Scratch(std::env::temp_dir().join(format!("gatehouse-package-test-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let path = scratch.0.join("Gatehouse.desktop");
    std::fs::write(&path, &text).unwrap();
    (scratch, path, text)
}

#[test]
fn the_package_installs_both_programs_icons_and_desktop_entry() {
    let listing = run("dpkg-deb", &["-c", package().to_str().unwrap()]);
    let files: Vec<&str> = listing.lines().filter_map(|line| line.split_whitespace().last()).collect();
    for wanted in [
        "usr/bin/gatehouse",
        "usr/bin/gatehouse-cli",
        "usr/bin/gatehouse-window",
        "usr/share/applications/Gatehouse.desktop",
        "usr/share/icons/hicolor/32x32/apps/gatehouse.png",
        "usr/share/icons/hicolor/128x128/apps/gatehouse.png",
    ] {
        assert!(files.iter().any(|f| f.trim_start_matches("./") == wanted), "{wanted} missing from {files:?}");
    }
    // Each is the program built for it: `gatehouse` the small one that hands over to `gatehouse-cli` (the command
    // line's crate), not a copy of another.
    let size = |name: &str| {
        let path = format!("usr/bin/{name}");
        let line =
            listing.lines().find(|l| l.split_whitespace().last().map(|f| f.trim_start_matches("./")) == Some(&path));
        let line = line.unwrap_or_else(|| panic!("no {path} in {listing}"));
        line.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap()
    };
    let built = |path: PathBuf| std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len();
    assert_eq!(size("gatehouse"), built(harness::desktop::app_binary()), "usr/bin/gatehouse");
    assert_eq!(size("gatehouse-cli"), built(harness::desktop::command_binary()), "usr/bin/gatehouse-cli");
    assert_eq!(size("gatehouse-window"), built(harness::desktop::window_binary()), "usr/bin/gatehouse-window");
}

#[test]
fn the_package_depends_on_what_the_app_loads() {
    let depends = run("dpkg-deb", &["-f", package().to_str().unwrap(), "Depends"]);
    for wanted in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libayatana-appindicator3-1", "xdg-utils"] {
        assert!(depends.contains(wanted), "{wanted} missing from Depends: {depends}");
    }
}

/// Tauri's own template writes `Exec=gatehouse` with no `%u` (tauri#15928): the OS would then start the app
/// without the redirect. The packaged entry must pass the URL and claim the scheme.
#[test]
fn the_desktop_entry_receives_the_redirect_and_validates() {
    let (_scratch, path, entry) = desktop_entry();
    let lines: Vec<&str> = entry.lines().collect();
    assert!(lines.contains(&"Exec=gatehouse %u"), "{entry}");
    assert!(lines.contains(&"MimeType=x-scheme-handler/com.example.gatehouse;"), "{entry}");
    assert!(lines.contains(&"StartupWMClass=gatehouse"), "{entry}");
    // The icon the package installs as usr/share/icons/hicolor/*/apps/gatehouse.png.
    assert!(lines.contains(&"Icon=gatehouse"), "{entry}");
    assert!(lines.iter().any(|l| l.starts_with("Categories=") && l.ends_with(';')), "{entry}");
    let output = Command::new("desktop-file-validate").arg(&path).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "desktop-file-validate: {said}");
}

/// Only the window program holds a window toolkit: no Tauri, GTK, WebKit or wry anywhere in what the core, the app
/// layer or the command line link (their normal and build dependencies), and neither front end depends on the other.
#[test]
fn only_the_window_program_depends_on_a_window_toolkit() {
    let tree = |package: &str| {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["tree", "--offline", "--locked", "-p", package, "-e", "normal,build", "--prefix", "none"])
            .current_dir(harness::tests_dir().parent().unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let toolkit = |tree: &str| -> Vec<String> {
        let names = ["tauri", "gtk", "webkit", "wry", "gdk", "javascriptcore"];
        let found =
            tree.lines().filter(|line| names.iter().any(|name| line.split(' ').next().unwrap_or("").contains(name)));
        found.map(str::to_owned).collect()
    };
    let core = tree("gatehouse-core");
    assert!(core.contains("keyring-core") && core.contains("oauth2"), "{core}");
    assert_eq!(toolkit(&core), Vec::<String>::new(), "the core crate links a window toolkit");
    let app = tree("gatehouse-app");
    assert!(app.contains("gatehouse-core"), "{app}");
    assert_eq!(toolkit(&app), Vec::<String>::new(), "the app layer links a window toolkit");
    let cli = tree("gatehouse-cli");
    assert!(cli.contains("gatehouse-app") && !cli.contains("gatehouse-window"), "{cli}");
    assert_eq!(toolkit(&cli), Vec::<String>::new(), "the command line links a window toolkit");
    let window = tree("gatehouse-window");
    assert!(!toolkit(&window).is_empty(), "the window program is the one that does");
    assert!(window.contains("gatehouse-app") && !window.contains("gatehouse-cli"), "{window}");
}
