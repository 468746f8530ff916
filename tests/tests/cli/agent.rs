//! The token agent of a running Gatehouse (here the light tray, `gatehouse --hidden`), as the user's other
//! programs meet it: `gatehouse token` gets its tokens there without reading the keychain, and callers that send
//! garbage, too much or nothing are answered or dropped without holding anyone up.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::*;

/// Where the agent listens, as the README says: `agent/agent.sock` beside the renewal locks' directory.
fn agent_socket(profile: &str) -> PathBuf {
    renewal_lock_path(profile).parent().unwrap().parent().unwrap().join("agent").join("agent.sock")
}

/// The light tray for `config`, as a login start runs it, once its agent answers at `socket`.
async fn light_tray(config: &Path, socket: &Path, name: &str) -> tokio::process::Child {
    let log = std::fs::File::create(artifacts_dir(name).join(format!("light-tray-{}.log", unix_now()))).unwrap();
    let child = tokio::process::Command::new(desktop::app_binary())
        .arg("--hidden")
        .env("GATEHOUSE_CONFIG", config)
        .env("GATEHOUSE_LOG", "info")
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for("the agent's socket", Duration::from_secs(30), || async {
        UnixStream::connect(socket).is_ok().then_some(())
    })
    .await;
    child
}

/// One line sent on a new connection, and the line the agent answers (empty when it answers nothing).
fn exchange(socket: &Path, line: &[u8]) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(line);
    let mut answer = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut answer);
    answer
}

/// `gatehouse token args…` with no session bus, so no keychain: only an agent can answer it.
async fn token_without_keychain(config: &Path, args: &[&str]) -> harness::cli::Run {
    let env = [("DBUS_SESSION_BUS_ADDRESS".to_owned(), "unix:path=/nonexistent/bus".to_owned())];
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    harness::cli::gatehouse_with(config, &all, &env).await
}

/// Everything the handout log keeps, as it is on disk.
fn handout_log_text() -> String {
    let dir = PathBuf::from(std::env::var_os("XDG_DATA_HOME").unwrap()).join("com.example.gatehouse");
    ["handouts.jsonl", "handouts.jsonl.1"].iter().filter_map(|f| std::fs::read_to_string(dir.join(f)).ok()).collect()
}

#[tokio::test]
async fn the_running_gatehouse_hands_out_tokens_and_stands_up_to_bad_callers() {
    let name = "agent";
    let (idp, config) = signed_in_with(name, super::narrowed::narrowing_profile).await;
    let issuer = idp.issuer();
    let socket = agent_socket(&profile_of(name));
    // Before it starts, a symbolic link planted where the socket goes: removed, never followed.
    let planted = artifacts_dir(name).join("planted-target");
    std::fs::write(&planted, "keep").unwrap();
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(socket.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let _ = std::fs::remove_file(&socket);
    std::os::unix::fs::symlink(&planted, &socket).unwrap();
    let mut tray = light_tray(&config, &socket, name).await;
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "keep", "the link's target is untouched");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket(), "a socket, not the link");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // Without a keychain, only the agent can give these.
    let own = token_without_keychain(&config, &[]).await;
    assert_eq!(own.code, 0, "{own:?}");
    assert_eq!(resource_status(&issuer, own.stdout.trim_end()).await, 200);
    let for_a = token_without_keychain(&config, &["--resource", &format!("{issuer}/api/a")]).await;
    assert_eq!(for_a.code, 0, "{for_a:?}");
    assert_eq!(resource_answer(&issuer, "/api/a", for_a.stdout.trim_end()).await.0, 200);

    // Both handouts are in the log, with the program that asked (here `gatehouse token`), and no token is.
    let log = gatehouse(&config, &["log", "--profile", &profile_of(name), "--json"]).await;
    assert_eq!(log.code, 0, "{log:?}");
    let handouts: Vec<serde_json::Value> = log.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let binary = desktop::app_binary().canonicalize().unwrap();
    assert!(handouts.iter().any(|h| h["resource"].is_null() && h["caller"] == "gatehouse token"), "{handouts:?}");
    let narrowed = handouts.iter().find(|h| h["resource"] == format!("{issuer}/api/a")).unwrap();
    assert_eq!(narrowed["program"].as_str(), binary.to_str(), "{narrowed}");
    assert_eq!(narrowed["outcome"], "renewed");
    let kept = handout_log_text();
    for token in [own.stdout.trim_end(), for_a.stdout.trim_end()] {
        assert!(!kept.contains(token) && !kept.contains(&token[..token.len().min(24)]), "a token in the log");
    }

    // A caller that says nothing holds nobody up; garbage, a request for something else and a line past the
    // limit are answered with a typed error.
    let silent = UnixStream::connect(&socket).unwrap();
    assert!(exchange(&socket, b"not json\n").contains("\"kind\":\"bad_request\""));
    assert!(exchange(&socket, b"{\"refresh_token\":true}\n").contains("\"kind\":\"bad_request\""));
    assert!(exchange(&socket, &vec![b'x'; 20_000]).contains("\"kind\":\"bad_request\""));
    let elsewhere = format!("{{\"config\":\"{}\"}}\n", artifacts_dir(name).join("other.toml").display());
    assert!(exchange(&socket, elsewhere.as_bytes()).contains("\"kind\":\"other_config\""));
    let meanwhile = token_without_keychain(&config, &[]).await;
    assert_eq!(meanwhile.code, 0, "served beside a silent caller: {meanwhile:?}");
    // Sixteen callers are answered at once; with sixteen silent ones, the next is told so at once.
    let mut silent: Vec<UnixStream> = std::iter::once(silent).collect();
    silent.extend((0..15).map(|_| UnixStream::connect(&socket).unwrap()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(exchange(&socket, b"{}\n").contains("\"kind\":\"busy\""));
    drop(silent);
    wait_for("the agent to serve again", Duration::from_secs(10), || async {
        (token_without_keychain(&config, &[]).await.code == 0).then_some(())
    })
    .await;

    // A Gatehouse that dies leaves its socket behind: the next one replaces it.
    tray.kill().await.unwrap();
    assert!(std::fs::symlink_metadata(&socket).is_ok(), "left behind");
    assert!(token_without_keychain(&config, &[]).await.code != 0, "nobody answers a dead socket");
    // The next one asks about Gatehouse's own commands too (as the program that ran them: this test).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}trust_gatehouse_commands = false\n")).unwrap();
    let mut tray = light_tray(&config, &socket, name).await;
    consent(&config, &socket, &profile_of(name)).await;
    tray.kill().await.unwrap();
    std::fs::remove_file(&config).unwrap();
}

/// The first request of a program for a profile waits for the person's answer in a desktop notification, which
/// is remembered; with nobody to ask, the program is refused with the command that allows it; a denied program is
/// refused without asking again.
async fn consent(config: &Path, socket: &Path, profile: &str) {
    let me = std::env::current_exe().unwrap().canonicalize().unwrap();
    let me_text = me.to_str().unwrap();
    let request = format!("{{\"config\":\"{}\"}}\n", config.display());
    // No notification server on the bus yet: nobody can be asked.
    let refused = exchange(socket, request.as_bytes());
    assert!(refused.contains("\"kind\":\"program_not_allowed\"") && refused.contains("gatehouse allow"), "{refused}");
    let run = token_without_keychain(config, &[]).await;
    assert_eq!(run.code, 10, "a refusal of the agent's is not worked around: {run:?}");
    assert!(run.stderr.contains("error[program_not_allowed]"), "{}", run.stderr);

    // The person allows it in the notification: a token, and no question the next time.
    let desktop = harness::notifications::Notifications::start();
    desktop.answer_with(Some("allow"));
    assert!(exchange(socket, request.as_bytes()).contains("\"token\""));
    let shown = desktop.shown();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].summary.contains(profile) && shown[0].body.contains(me_text), "{shown:?}");
    assert_eq!(shown[0].actions, ["allow", "Allow", "deny", "Deny"]);
    assert!(exchange(socket, request.as_bytes()).contains("\"token\""));
    assert_eq!(token_without_keychain(config, &[]).await.code, 0, "gatehouse token, run by the same program");
    assert_eq!(desktop.shown().len(), 1, "asked once");

    // Denied with the command line: refused at once, without a question, and listed.
    let deny = gatehouse(config, &["deny", me_text, "--profile", profile]).await;
    assert_eq!(deny.code, 0, "{deny:?}");
    assert!(exchange(socket, request.as_bytes()).contains("\"kind\":\"program_denied\""));
    let run = token_without_keychain(config, &[]).await;
    assert_eq!(run.code, 10, "{run:?}");
    assert!(run.stderr.contains("error[program_denied]"), "{}", run.stderr);
    assert_eq!(desktop.shown().len(), 1, "no second question");
    let listed = gatehouse(config, &["programs", "--json"]).await;
    let listed: Vec<serde_json::Value> = listed.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(listed.iter().any(|p| p["program"] == me_text && p["profile"] == profile && p["decision"] == "deny"));
    let log = gatehouse(config, &["log", "--profile", profile, "--json"]).await;
    assert!(log.stdout.lines().any(|l| l.contains("\"error\":\"program_denied\"")), "{}", log.stdout);

    // Allowed again with the command line.
    assert_eq!(gatehouse(config, &["allow", me_text, "--profile", profile]).await.code, 0);
    assert!(exchange(socket, request.as_bytes()).contains("\"token\""));
    assert_eq!(desktop.shown().len(), 1);
}
