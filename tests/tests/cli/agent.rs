//! The token agent of a running Gatehouse (here the light tray, `gatehouse --hidden`), as the user's other
//! programs meet it: `gatehouse token` gets its tokens there without reading the keychain, and callers that send
//! garbage, too much or nothing are answered or dropped without holding anyone up.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::*;

/// One agent at a time: the socket is the user's one place, and a second Gatehouse leaves it to the first.
static ONE_AGENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    harness::cli::gatehouse_with(config, &all, &harness::cli::no_keychain()).await
}

/// Everything the handout log keeps, as it is on disk.
fn handout_log_text() -> String {
    let dir = PathBuf::from(std::env::var_os("XDG_DATA_HOME").unwrap()).join("com.example.gatehouse");
    ["handouts.jsonl", "handouts.jsonl.1"].iter().filter_map(|f| std::fs::read_to_string(dir.join(f)).ok()).collect()
}

#[tokio::test]
async fn the_running_gatehouse_hands_out_tokens_and_stands_up_to_bad_callers() {
    let name = "agent";
    let _one = ONE_AGENT.lock().await;
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
    // A token the agent doesn't give (a resource the profile doesn't list) goes on to `gatehouse-cli`, which says
    // why in its own words, without asking the agent again: the agent's one entry names `gatehouse`, and none
    // names `gatehouse-cli`.
    let elsewhere = "https://elsewhere.example/api";
    let unlisted = token_without_keychain(&config, &["--resource", elsewhere]).await;
    assert_eq!(unlisted.code, 4, "{unlisted:?}");
    assert!(unlisted.stderr.contains("error[resource_not_listed]"), "{}", unlisted.stderr);
    let log = gatehouse(&config, &["log", "--profile", &profile_of(name), "--json"]).await;
    let handouts: Vec<serde_json::Value> = log.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let asked: Vec<&serde_json::Value> = handouts.iter().filter(|h| h["resource"] == elsewhere).collect();
    let by = |program: &Path| asked.iter().filter(|h| h["program"].as_str() == program.to_str()).count();
    assert_eq!(by(&binary), 1, "{asked:?}");
    assert_eq!(by(&desktop::command_binary().canonicalize().unwrap()), 0, "{asked:?}");
    // git, through `gatehouse credential`, is answered by the agent too: for the account git names, and for no
    // other.
    let no_keychain = harness::cli::no_keychain();
    let host = issuer.trim_start_matches("http://");
    let git = |user: &str| format!("protocol=http\nhost={host}\nusername={user}\n\n");
    let args = ["credential", "get"];
    let for_git = harness::cli::gatehouse_with_input_env(&config, &args, &git("alice"), &no_keychain).await;
    assert_eq!(for_git.code, 0, "{for_git:?}");
    let password = for_git.stdout.lines().find_map(|l| l.strip_prefix("password=")).unwrap_or_default().to_owned();
    assert!(for_git.stdout.starts_with("username=alice\n"), "{for_git:?}");
    assert_eq!(resource_status(&issuer, &password).await, 200);
    assert!(for_git.stdout.contains("password_expiry_utc="), "{for_git:?}");
    let for_bob = harness::cli::gatehouse_with_input_env(&config, &args, &git("bob"), &no_keychain).await;
    assert!(!for_bob.stdout.contains("password="), "another account: {for_bob:?}");
    // git's erase goes to the agent too, which holds the session: the token the server refused is never handed out
    // again, and the next get has a renewed one.
    let refused = format!("protocol=http\nhost={host}\nusername=alice\npassword={password}\n\n");
    let erase = ["credential", "erase"];
    let erased = harness::cli::gatehouse_with_input_env(&config, &erase, &refused, &no_keychain).await;
    assert_eq!((erased.code, erased.stdout.as_str()), (0, ""), "{erased:?}");
    let again = harness::cli::gatehouse_with_input_env(&config, &args, &git("alice"), &no_keychain).await;
    let renewed = again.stdout.lines().find_map(|l| l.strip_prefix("password=")).unwrap_or_default().to_owned();
    assert!(!renewed.is_empty() && renewed != password, "{again:?}");
    assert_eq!(resource_status(&issuer, &renewed).await, 200);
    // A token goes only to its profile's resource, whatever the caller's config says: checked before anything else.
    let elsewhere = format!("{{\"origin\":\"http://elsewhere.example\",\"config\":\"{}\"}}\n", config.display());
    assert!(exchange(&socket, elsewhere.as_bytes()).contains("\"kind\":\"other_origin\""));
    let here = format!("{{\"origin\":\"{issuer}\",\"config\":\"{}\"}}\n", config.display());
    assert!(!exchange(&socket, here.as_bytes()).contains("other_origin"));
    let log = gatehouse(&config, &["log", "--profile", &profile_of(name), "--json"]).await;
    assert!(log.stdout.lines().any(|l| l.contains("\"caller\":\"gatehouse credential\"")), "{}", log.stdout);
    let kept = handout_log_text();
    for token in [own.stdout.trim_end(), for_a.stdout.trim_end(), password.as_str(), renewed.as_str()] {
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

/// The agent's figures, side by side in one run (`tests/bin/bench --agent`), alternating so that each meets the
/// same machine: `gatehouse token` through the light tray's agent, `gatehouse token` reading the keychain itself,
/// `secret-tool lookup` of the same entry, and Debian's `oidc-token` through its `oidc-agent`, each with a token
/// that needs no renewal; then the memory (PSS) of the light tray serving `PROFILES` signed-in profiles beside
/// `oidc-agent`'s with as many accounts.
#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --agent"]
async fn print_agent_figures() {
    agent_figures(10, 201, true).await;
}

/// [`print_agent_figures`] small, and without printing: so that the bench and its oidc-agent set-up can't break
/// unseen, and every command it times gives a token the demo resource takes.
#[tokio::test]
async fn the_agent_figures_can_be_taken() {
    agent_figures(2, 3, false).await;
}

async fn agent_figures(profiles: usize, runs: usize, print: bool) {
    use harness::oidc_agent::OidcAgent;
    let name = if print { "agent-figures" } else { "agent-figures-smoke" };
    keyring::require_secret_service();
    let _one = ONE_AGENT.lock().await;
    let idp = Idp::start(&artifacts_dir(name).join("idp.log"));
    let issuer = idp.issuer();
    let profiles: Vec<String> = (0..profiles).map(|i| format!("{}-{i}", profile_of(name))).collect();
    let text: String = profiles.iter().map(|p| format!("[[profile]]\n{}", idp.bearer_profile_toml(p))).collect();
    let config = config_path(name);
    std::fs::write(&config, &text).unwrap();
    // The same profiles in another file, which the agent doesn't serve: `gatehouse token` reads the keychain.
    let elsewhere = config.with_extension("elsewhere.toml");
    std::fs::write(&elsewhere, &text).unwrap();
    for (i, profile) in profiles.iter().enumerate() {
        let (service, browser) = common::service(&idp.bearer_profile_toml(profile));
        service.start(Vec::new()).await;
        common::sign_in(&service, &browser, &format!("person{i}")).await;
    }
    let first = profiles[0].as_str();
    let mut tray = light_tray(&config, &agent_socket(first), name).await;
    let tray_pid = tray.id().unwrap();
    // Each profile's session is taken up by the agent, and gives a token the resource takes.
    for profile in &profiles {
        let run = token_without_keychain(&config, &["--profile", profile]).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(resource_status(&issuer, run.stdout.trim_end()).await, 200);
    }
    // The profiles share one connection to the keychain: the tray's own D-Bus connection and that one, each with
    // its thread, however many profiles there are.
    let connections = std::fs::read_dir(format!("/proc/{tray_pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("zbus::Connectio"))
        .count();
    assert!((1..=2).contains(&connections), "{connections} D-Bus connections for {} profiles", profiles.len());
    let oidc_agent = OidcAgent::start(&artifacts_dir(name).join("oidc-agent"));
    for (i, _) in profiles.iter().enumerate() {
        oidc_agent.add_account(&format!("bench{i}"), &issuer, &format!("person{i}")).await;
    }

    let timed = |mut command: tokio::process::Command| async move {
        let started = std::time::Instant::now();
        let output = command.kill_on_drop(true).output().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let stdout = String::from_utf8_lossy(&output.stdout).trim_end().to_owned();
        assert!(output.status.success() && !stdout.is_empty(), "{output:?}");
        (elapsed, stdout)
    };
    let gatehouse_token = |config: &Path| {
        let mut command = tokio::process::Command::new(desktop::app_binary());
        command.args(["token", "--profile", first]).env("GATEHOUSE_CONFIG", config);
        command
    };
    let lookup = || {
        let mut command = tokio::process::Command::new("secret-tool");
        command.args(["lookup", "service", keyring::SERVICE, "username", first]);
        command
    };
    let labels = [
        "gatehouse token, through the agent",
        "gatehouse token, reading the keychain",
        "secret-tool lookup of the same entry",
        "oidc-token, through oidc-agent",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    let mut tokens: Vec<String> = vec![String::new(); labels.len()];
    for run in 0..runs {
        // Each in turn goes first, so that none always follows the same one.
        for i in (0..labels.len()).map(|i| (i + run) % labels.len()) {
            let command = match i {
                0 => gatehouse_token(&config),
                1 => gatehouse_token(&elsewhere),
                2 => lookup(),
                _ => oidc_agent.token_command("bench0"),
            };
            let (elapsed, stdout) = timed(command).await;
            times[i].push(elapsed);
            tokens[i] = stdout;
        }
    }
    // The agent's answer is the keychain's token; oidc-agent's is its own, and the resource takes both.
    assert_eq!(tokens[0], tokens[1], "the agent hands out the session's token");
    for token in [&tokens[0], &tokens[3]] {
        assert_eq!(resource_status(&issuer, token).await, 200);
    }
    let log = handout_log_text();
    assert!(!log.contains(tokens[0].as_str()), "no token in the handout log");
    let (ours, theirs) = (desktop::tree_pss_mib(tray_pid), desktop::tree_pss_mib(oidc_agent.pid()));
    assert!(ours > 0.0 && theirs > 0.0, "{ours} {theirs}");
    if print {
        let percentile = |times: &[f64], p: f64| {
            let mut sorted = times.to_vec();
            sorted.sort_by(f64::total_cmp);
            sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
        };
        println!("\n{runs} alternating runs each, no renewal needed, {}:", desktop::app_binary().display());
        for (label, times) in labels.iter().zip(&times) {
            println!(
                "  {label:<40} median {:>6.2} ms   p99 {:>6.2} ms",
                percentile(times, 0.5),
                percentile(times, 0.99)
            );
        }
        let (agent, oidc) = (percentile(&times[0], 0.5), percentile(&times[3], 0.5));
        println!("  agent path / oidc-token (medians): {:.2}x (goal: 1x or less)", agent / oidc);
        println!("memory (PSS), {} signed-in profiles or accounts each:", profiles.len());
        println!("  gatehouse --hidden (light tray, agent) {ours:>6.2} MiB");
        println!("  oidc-agent                             {theirs:>6.2} MiB");
        println!("  ratio: {:.2}x (goal: 1x or less)", ours / theirs);
    }
    tray.kill().await.unwrap();
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_file(&elsewhere).unwrap();
}
