//! The edges: which git user is answered, a closed stdout, a pasted redirect, and no window toolkit loaded.

use super::*;

/// git's `username` picks the account: with two profiles signed in at one host, each user gets their own token,
/// another user gets nothing (git asks its next helper), and no username is ambiguous there; a single profile
/// answers for no username, the fixed `oauth2`, or its own account, and nobody else.
#[tokio::test]
async fn the_credential_helper_answers_only_for_the_user_git_asks_about() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-credential-users").join("idp.log"));
    let (work, home) = ("cli-credential-users-work", "cli-credential-users-home");
    let config = config_path("cli-credential-users");
    let tables =
        format!("[[profile]]\n{}\n[[profile]]\n{}", idp.bearer_profile_toml(work), idp.bearer_profile_toml(home));
    std::fs::write(&config, &tables).unwrap();
    for (profile, login) in [(work, "alice"), (home, "bob")] {
        let (service, browser) = common::service(&idp.bearer_profile_toml(profile));
        service.start(Vec::new()).await;
        common::sign_in(&service, &browser, login).await;
    }
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let ask = |args: Vec<&'static str>, user: Option<&'static str>| {
        let (config, host) = (config.clone(), host.clone());
        async move {
            let user = user.map(|u| format!("username={u}\n")).unwrap_or_default();
            let input = format!("protocol=http\nhost={host}\n{user}\n");
            let mut all = vec!["credential", "get"];
            all.extend(args);
            let run = gatehouse_with_input(&config, &all, &input).await;
            assert_eq!(run.code, 0, "{run:?}");
            run.stdout
        }
    };
    let answer =
        |user: &str, profile: &str| format!("username={user}\npassword={}\n", keyring::stored(profile, "access_token"));
    assert!(ask(vec![], Some("bob")).await.starts_with(&answer("bob", home)));
    assert!(ask(vec![], Some("alice")).await.starts_with(&answer("alice", work)));
    assert_eq!(ask(vec![], Some("carol")).await, "", "another user gets nothing");
    assert_eq!(ask(vec![], None).await, "", "two accounts and no username: not Gatehouse's to guess");
    assert_eq!(ask(vec![], Some("oauth2")).await, "");
    // One profile: its own account, the fixed name, or none; never another user's name.
    assert_eq!(ask(vec!["--profile", work], Some("bob")).await, "", "USER_B never gets USER_A's token");
    assert!(ask(vec!["--profile", work], None).await.starts_with(&answer("oauth2", work)));
    assert!(ask(vec!["--profile", work], Some("oauth2")).await.starts_with(&answer("oauth2", work)));
    assert!(ask(vec!["--profile", work], Some("alice")).await.starts_with(&answer("alice", work)));
    for profile in [work, home] {
        gatehouse(&config, &["sign-out", "--profile", profile]).await;
    }
    std::fs::remove_file(&config).unwrap();
}

/// Another program's item beside Gatehouse's for one profile, or an entry Gatehouse can't read: every command
/// says what is wrong and what to do, in words (never D-Bus object paths or Rust `Debug` text), and
/// `gatehouse sign-out` clears it, revoking the grant of each item it can read first.
#[tokio::test]
async fn duplicate_or_unreadable_entries_are_explained_and_cleared_by_sign_out() {
    let (idp, config) = signed_in("duplicates").await;
    let profile = profile_of("duplicates");
    let refresh_token = keyring::stored(&profile, "refresh_token");
    keyring::store_duplicate(&profile, "{}");
    assert_eq!(keyring::count_entries(&profile), 2);
    for (args, code) in [(vec!["token"], 5), (vec!["status"], 0)] {
        let run = gatehouse(&config, &args).await;
        assert_eq!(run.code, code, "{run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(said.contains("more than one saved session") && said.contains("sign-out"), "{run:?}");
        for debug in ["/org/freedesktop", "Entry {", "Ambiguous", "Wrapper", "credentials: ["] {
            assert!(!said.contains(debug), "{debug}: {run:?}");
        }
    }
    let cleared = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert_eq!(keyring::count_entries(&profile), 0, "both items are gone");
    // The good one among them was signed out at the provider first, not orphaned alive.
    assert_eq!(idp.introspect(&refresh_token).await["active"], false, "{cleared:?}");

    keyring::store_raw(&profile, "{\"v\": 99, \"truncated");
    let token = gatehouse(&config, &["token"]).await;
    assert_eq!(token.code, 5, "{token:?}");
    assert!(token.stderr.contains("error[keychain_corrupt]"), "{token:?}");
    let cleared = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert!(cleared.stderr.contains("couldn't be read"), "{cleared:?}");
    assert!(keyring::lookup(&profile).is_none());
    std::fs::remove_file(&config).unwrap();
}

/// Large group claims make large tokens. The Secret Service has no limit of its own that a session comes near,
/// so a 20 KB access token stays in the entry (twenty `gatehouse token` at once spend no refresh grant on it),
/// and a 17 KB refresh token is kept whole.
#[tokio::test]
async fn large_tokens_are_kept_whole_and_cost_no_renewal() {
    let (idp, config) = signed_in("large-tokens").await;
    let profile = profile_of("large-tokens");
    let keychain = gatehouse_core::tokens::keychain::Keychain::new(keyring::SERVICE);
    let mut session = keychain.load(&profile).await.unwrap().unwrap();
    let real_refresh_token = session.refresh_token.clone();
    let large_access = "a".repeat(20 * 1024);
    session.access_token = Some(oauth2::AccessToken::new(large_access.clone()));
    session.refresh_token = Some(oauth2::RefreshToken::new("r".repeat(17 * 1024)));
    keychain.save(&profile, &session).await.unwrap();
    let back = gatehouse_core::tokens::keychain::Keychain::new(keyring::SERVICE).load(&profile).await.unwrap().unwrap();
    assert_eq!(back.access_token.unwrap().secret().len(), 20 * 1024, "the access token is kept");
    assert_eq!(back.refresh_token.unwrap().secret().len(), 17 * 1024, "the refresh token is kept whole");

    session.refresh_token = real_refresh_token;
    keychain.save(&profile, &session).await.unwrap();
    let runs = concurrent_tokens(&config, 20).await;
    assert!(runs.iter().all(|run| run.code == 0 && run.stdout.trim_end() == large_access), "every call gets it");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "no renewal for it");
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// A reader that went away (`gatehouse token | head -c0`, a closed pipe): Gatehouse says it couldn't write and
/// exits with an error code. `println!` would panic there, and with the release build's `panic = "abort"` abort a
/// process holding tokens.
#[tokio::test]
async fn a_closed_stdout_is_an_error_not_a_panic() {
    let (_idp, config) = signed_in("closed-stdout").await;
    for args in [vec!["status"], vec!["token"]] {
        let config = config.clone();
        let output = tokio::task::spawn_blocking(move || {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            std::process::Command::new(harness::desktop::app_binary())
                .args(&args)
                .env("GATEHOUSE_CONFIG", &config)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("couldn't write to standard output") && !stderr.contains("panicked"), "{stderr}");
    }
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// `gatehouse sign-in` with no browser to open (none on `PATH`), as over SSH: it prints the link on stderr
/// first, says that no browser could be opened and what to do, and takes the address the browser ended on
/// pasted on stdin, checked as the loopback listener checks it: a forged one is refused and the sign-in waits on;
/// the real one signs in. Nothing but the sign-in's own words reaches the terminal, and stdout stays empty.
#[tokio::test]
async fn sign_in_prints_the_link_and_takes_the_redirect_pasted_back() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-paste").join("idp.log"));
    let config = config_path("cli-paste");
    let profile = profile_of("cli-paste");
    std::fs::write(
        &config,
        idp.profile_toml(&profile).replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback"),
    )
    .unwrap();
    let no_browsers = config.with_extension("empty-path");
    std::fs::create_dir_all(&no_browsers).unwrap();
    let mut child = tokio::process::Command::new(harness::desktop::app_binary())
        .arg("sign-in")
        .env("GATEHOUSE_CONFIG", &config)
        .env("PATH", &no_browsers)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let link = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        said.push(line.clone());
        if let Some(link) = line.trim().strip_prefix("http://127.0.0.1:") {
            break format!("http://127.0.0.1:{link}");
        }
    };
    assert_eq!(said.first().map(String::as_str), Some("To sign in, open this link in a browser:"), "{said:?}");
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        said.push(line.clone());
        if line.contains("paste that page's address here") {
            break;
        }
    }
    let said_text = said.join("\n");
    assert!(said_text.contains("No browser could be opened here"), "{said_text}");

    // The person signs in on another computer; its browser ends on the loopback address, which doesn't load there.
    let answer = harness::user_agent::authorize(&link, "carol", harness::user_agent::Decision::Approve).await.unwrap();
    assert!(answer.starts_with("http://127.0.0.1:"), "{answer}");
    let forged = harness::with_param(&answer, "state", "forged-state");
    stdin.write_all(format!("{forged}\n").as_bytes()).await.unwrap();
    let refused = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        if line.starts_with("That address wasn't taken") {
            break line;
        }
    };
    assert!(refused.contains("from an earlier or another sign-in"), "{refused}");
    assert!(idp.events_named("grant.success", Some("authorization_code")).await.is_empty(), "nothing exchanged");

    stdin.write_all(format!("  {answer}  \n").as_bytes()).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("Signed in as Carol"), "{rest}");
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).await.unwrap();
    assert_eq!(stdout, "", "stdout is for what was asked");
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    assert!(keyring::session(&profile).is_some());
    assert_eq!(gatehouse(&config, &["sign-out"]).await.code, 0);
}

/// `gatehouse status`, `token`, `credential`, `sign-in` (loopback and device) and `sign-out` run without GTK or
/// WebKitGTK: the programs they run (`gatehouse`, and `gatehouse-cli` it hands over to) have neither among their
/// libraries (`ldd`), the dynamic loader loads neither into any of them, at start or later (`LD_DEBUG=libs`),
/// and a sign-in waiting for its browser has neither mapped (`/proc/PID/maps`). The window program, which
/// `gatehouse-cli` hands everything else to, has them all.
#[tokio::test]
async fn the_command_line_loads_no_window_toolkit() {
    let ldd = |binary: std::path::PathBuf| {
        let output = std::process::Command::new("ldd").arg(&binary).output().unwrap();
        assert!(output.status.success(), "ldd {}", binary.display());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let window = ldd(harness::desktop::window_binary());
    for lib in ["libgtk-", "libwebkit2gtk"] {
        assert!(window.contains(lib), "the window program links {lib}:\n{window}");
    }
    for program in [harness::desktop::app_binary(), harness::desktop::command_binary()] {
        let command_line = ldd(program.clone());
        assert!(command_line.contains("libc.so"), "{command_line}");
        assert_eq!(desktop::toolkit_in(&command_line), Vec::<&str>::new(), "{} links no toolkit", program.display());
    }

    let (idp, config) = signed_in("no-toolkit").await;
    let profile = profile_of("no-toolkit");
    let traces = config.with_extension("ld");
    std::fs::create_dir_all(&traces).unwrap();
    let traced = |name: &str| {
        vec![
            ("LD_DEBUG".to_owned(), "libs".to_owned()),
            ("LD_DEBUG_OUTPUT".to_owned(), traces.join(name).display().to_string()),
        ]
    };
    let expect_none = |name: &str| {
        let loaded = loaded_libraries(&traces.join(name));
        assert!(loaded.contains("libc.so"), "{name}: the loader's trace is read:\n{loaded}");
        assert_eq!(desktop::toolkit_in(&loaded), Vec::<&str>::new(), "{name} loaded the window toolkit");
    };

    for (name, args) in [("status", vec!["status"]), ("token", vec!["token"])] {
        let run = harness::cli::gatehouse_with(&config, &args, &traced(name)).await;
        assert_eq!(run.code, 0, "{run:?}");
        expect_none(name);
    }
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let credential = std::process::Command::new(harness::desktop::app_binary())
        .args(["credential", "get"])
        .env("GATEHOUSE_CONFIG", &config)
        .envs(traced("credential"))
        .stdin(
            std::fs::File::open({
                let asked = traces.join("asked");
                std::fs::write(&asked, format!("protocol=http\nhost={host}\n\n")).unwrap();
                asked
            })
            .unwrap(),
        )
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&credential.stdout).contains("password="), "{credential:?}");
    expect_none("credential");
    let run = harness::cli::gatehouse_with(&config, &["sign-out"], &traced("sign-out")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(keyring::lookup(&profile).is_none());
    expect_none("sign-out");

    // A sign-in with a loopback redirect, waiting for the browser: its listener is up, its libraries all mapped.
    let loopback = config.with_extension("loopback.toml");
    std::fs::write(
        &loopback,
        idp.bearer_profile_toml(&profile).replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback"),
    )
    .unwrap();
    let no_browsers = traces.join("empty-path");
    std::fs::create_dir_all(&no_browsers).unwrap();
    let mut child = tokio::process::Command::new(harness::desktop::app_binary())
        .arg("sign-in")
        .env("GATEHOUSE_CONFIG", &loopback)
        .env("PATH", &no_browsers)
        .envs(traced("sign-in"))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncBufReadExt;
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        while let Some(line) = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap()
        {
            if line.contains("paste that page's address here") {
                break;
            }
        }
    }
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id().unwrap())).unwrap();
    assert!(maps.contains("libc.so"), "{maps}");
    assert_eq!(desktop::toolkit_in(&maps), Vec::<&str>::new(), "a waiting sign-in maps no window toolkit");
    child.kill().await.unwrap();
    expect_none("sign-in");

    // A sign-in with a code, approved on "another device", to the end.
    let run = harness::cli::device_sign_in_with(&config, "alice", &traced("device")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(keyring::lookup(&profile).is_some());
    expect_none("device");
    harness::cli::gatehouse(&config, &["sign-out"]).await;
    let _ = std::fs::remove_dir_all(&traces);
    std::fs::remove_file(&loopback).unwrap();
    std::fs::remove_file(&config).unwrap();
}
