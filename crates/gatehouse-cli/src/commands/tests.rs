//! Tests of [`super`].

use super::*;

/// git's username may be the account's login, display name or subject, and nothing else.
#[test]
fn git_names_the_account_by_login_name_or_subject() {
    let account = gatehouse_core::tokens::Account {
        subject: Some("248289761001".into()),
        name: Some("Octo Cat".into()),
        login: Some("octocat".into()),
    };
    for user in ["octocat", "Octo Cat", "248289761001"] {
        assert!(account.is_named(user), "{user}");
    }
    assert!(!account.is_named("octodog"));
    assert!(!gatehouse_core::tokens::Account::default().is_named(""));
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn subcommands_are_the_clis_and_everything_else_the_windows() {
    assert!(is_cli(&args(&["gatehouse", "token"])));
    assert!(is_cli(&args(&["gatehouse", "--config", "x.toml", "status", "--json"])));
    assert!(is_cli(&args(&["gatehouse", "--config=x.toml", "sign-out"])));
    assert!(is_cli(&args(&["gatehouse", "--help"])));
    assert!(!is_cli(&args(&["gatehouse"])));
    assert!(!is_cli(&args(&["gatehouse", "--hidden"])));
    assert!(!is_cli(&args(&["gatehouse", "com.example.gatehouse:/callback?code=status&state=token"])));
    assert!(!is_cli(&args(&["gatehouse", "--config", "token"])), "a config file named like a command");
}

#[test]
fn help_follows_clap_conventions() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    for sub in Cli::command().get_subcommands() {
        assert!(COMMANDS.contains(&sub.get_name()), "{} must make a command line the CLI's", sub.get_name());
    }
    let help = Cli::command().render_long_help().to_string();
    for word in ["status", "token", "sign-in", "sign-out", "--config", "Exit codes:"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

/// RFC 8628 §5.4: a device code, a verification URI or an account name from a provider never reaches the
/// terminal as an escape sequence or a reordering mark.
#[test]
fn provider_text_is_made_safe_for_the_terminal() {
    assert_eq!(terminal_safe("WDJB-MJHT"), "WDJB-MJHT");
    assert_eq!(terminal_safe("https://id.example.com/device"), "https://id.example.com/device");
    let hostile = "ABCD\u{1b}[2J\u{1b}]0;owned\u{7}\rEFGH\u{9b}31m\u{202e}gnp.exe\u{7f}";
    let safe = terminal_safe(hostile);
    assert!(!safe.chars().any(|c| c.is_control() || c == '\u{202e}'), "{safe:?}");
    assert!(safe.starts_with("ABCD\u{fffd}[2J") && safe.contains("EFGH"), "{safe:?}");
    assert_eq!(terminal_safe("Zoë Ñandú"), "Zoë Ñandú");
}

/// Every kind of error, each with the exit code its documentation promises: a new variant must be added
/// here, and so decided, before it can be shipped.
#[test]
fn every_error_has_its_documented_exit_code() {
    use gatehouse_core::tokens::keychain::KeychainError;
    let text = String::new;
    let config = gatehouse_core::config::ConfigError { source_name: text(), field: text(), problem: text() };
    let all = [
        (Error::Config(config), 4),
        (Error::Callback(gatehouse_core::auth::callback::CallbackError::TooLong), 7),
        (Error::AccessDenied, 7),
        (Error::Authorization { code: text(), description: None }, 7),
        (Error::TokenEndpoint { code: text(), description: None }, 6),
        (Error::SessionEnded, 3),
        (Error::SignInNeeded, 3),
        (Error::OtherProvider { stored: text(), configured: text() }, 3),
        (Error::RevocationRefused(text()), 7),
        (Error::NotSaved(KeychainError::Locked), 5),
        (Error::SaveUnconfirmed, 5),
        (Error::Network(text()), 6),
        (Error::BadResponse(text()), 6),
        (Error::Keychain(KeychainError::Duplicates), 5),
        (Error::BrowserOpen(text()), 7),
        (Error::NotSignedIn, 3),
        (Error::AlreadySignedIn, 7),
        (Error::SignInTimedOut, 7),
        (Error::RenewalBusy, 6),
        (Error::UnknownProfile { name: text(), known: vec![] }, 2),
        (Error::NeedsWindow, 7),
        (Error::NoDeviceFlow, 7),
        (Error::DpopBound, 8),
        (Error::SignedOutElsewhere, 3),
        (Error::SignedInElsewhere { account: text() }, 7),
        (Error::PortInUse(8765), 7),
        (Error::LifetimeTooShort { lifetime: 600, wanted: 900 }, 6),
        (Error::SignInStopped(text()), 7),
        (Error::Setting(text()), 1),
        (Error::Setup(text()), 4),
        (Error::NoProvider(text()), 4),
        (Error::Internal(text()), 1),
    ];
    let mut kinds = std::collections::HashSet::new();
    for (error, code) in &all {
        assert_eq!(exit_code(error), *code, "{error:?}");
        assert!(EXIT_CODES.contains(&format!("  {code}  ")), "{code} is not documented");
        kinds.insert(std::mem::discriminant(error));
    }
    assert_eq!(kinds.len(), all.len(), "each variant once");
}

/// `gatehouse` answers `token` itself only in the forms it reads (see [`token::plain`]), and reads each as clap
/// does in `gatehouse-cli`; every other form is left to clap, even one clap takes.
#[test]
fn the_front_reads_token_as_clap_does_or_leaves_it() {
    let taken = [
        vec!["token"],
        vec!["--config", "/c.toml", "token", "--profile", "work"],
        vec!["token", "--config=/c.toml", "--min-ttl", "300", "--scope", "read write"],
        vec!["token", "--resource=https://api.example/v1", "--profile=work", "--min-ttl=0"],
    ];
    for list in taken {
        let argv = args(&[&["gatehouse"][..], &list].concat());
        let (config, asked) = token::plain(&argv).unwrap_or_else(|| panic!("{list:?} is left to clap"));
        let cli = Cli::try_parse_from(&argv).unwrap();
        let Command::Token { profile, min_ttl, resource, scope, agent_asked } = cli.command else { panic!() };
        assert_eq!(config, cli.config, "{list:?}");
        assert_eq!((asked.profile, asked.min_ttl, asked.resource, asked.scope), (profile, min_ttl, resource, scope));
        assert!(!agent_asked);
    }
    let left = [
        vec![],
        vec!["status"],
        vec!["token", "--help"],
        vec!["token", "--profile"],
        vec!["token", "--profile", "a", "--profile", "b"],
        vec!["token", "--profile", "-x"],
        vec!["token", "--profile="],
        vec!["token", "--min-ttl", "+5"],
        vec!["token", "--min-ttl", "99999999999999999999999"],
        vec!["token", "--resource", "not a url"],
        vec!["token", "--agent-asked"],
        vec!["token", "token"],
        vec!["token", "--", "--profile"],
        vec!["--profile", "work", "token"],
        vec!["--config", "token"],
    ];
    for list in left {
        assert!(token::plain(&args(&[&["gatehouse"][..], &list].concat())).is_none(), "{list:?} is taken");
    }
    // Text that isn't UTF-8 is clap's to say something about.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt as _;
        let odd = vec!["gatehouse".into(), "token".into(), "--profile".into(), OsString::from_vec(vec![0xff])];
        assert!(token::plain(&odd).is_none());
    }
}
