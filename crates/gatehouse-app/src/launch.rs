//! What a launch's arguments (program first) ask of Gatehouse, read once here for both programs: the light tray
//! (`--hidden`), a sign-in (`--sign-in[=PROFILE]`), a sign-in link, and the config file (`--config FILE`).
//!
//! A first launch reads its own arguments; a second launch's are handed to the running program
//! ([`crate::handover`]), which reads them the same way.

use std::ffi::{OsStr, OsString};

/// Starts the light tray: Gatehouse in the tray with no window, and no window toolkit loaded, until a person asks
/// for the window. The autostart entry passes it.
pub const LIGHT_TRAY_FLAG: &str = "--hidden";

/// Opens the window and starts a sign-in there, for the first profile or (`--sign-in=PROFILE`) the one named: what
/// the tray's Sign in asks of the window.
pub const SIGN_IN_FLAG: &str = "--sign-in";

/// Says to the window that it was started for a sign-in link it can't have been waiting for (a link that started
/// Gatehouse, or one the light tray got): the window says so. It stands in for the link, which would otherwise
/// stay in the long-lived window's command line, readable by every local user (`/proc/PID/cmdline`).
pub const STALE_LINK_FLAG: &str = "--stale-link";

/// The config file option, followed by its value or joined to it with `=`.
const CONFIG_FLAG: &str = "--config";

/// What a launch asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Launch {
    /// [`LIGHT_TRAY_FLAG`]: the light tray, no window.
    pub light_tray: bool,
    /// [`SIGN_IN_FLAG`]: a sign-in to the first profile (`Some(None)`) or to the one named.
    pub sign_in: Option<Option<String>>,
    /// [`STALE_LINK_FLAG`]: started for a sign-in link that answered no sign-in.
    pub stale_link: bool,
    /// A sign-in link (an argument that is neither a flag nor `--config`'s value).
    pub link: bool,
}

impl Launch {
    /// Reads `args`, a command line, program first. Only whole flags count: the program's own name is none, and
    /// neither is a link that contains one.
    pub fn parse<S: AsRef<OsStr>>(args: &[S]) -> Launch {
        let mut launch = Launch::default();
        let mut rest = args.iter().skip(1).map(|arg| arg.as_ref().to_string_lossy());
        while let Some(arg) = rest.next() {
            if arg == CONFIG_FLAG {
                rest.next();
            } else if arg == LIGHT_TRAY_FLAG {
                launch.light_tray = true;
            } else if arg == STALE_LINK_FLAG {
                launch.stale_link = true;
            } else if let Some(profile) = sign_in_flag(&arg) {
                launch.sign_in.get_or_insert(profile);
            } else if !arg.starts_with('-') {
                launch.link = true;
            }
        }
        launch
    }

    /// What `args`, arguments with no program name before them (those of [`Launch::window_args`]), ask for.
    pub fn parse_args(args: &[String]) -> Launch {
        let with_program: Vec<&str> = std::iter::once("").chain(args.iter().map(String::as_str)).collect();
        Launch::parse(&with_program)
    }

    /// What the window is to be asked for, as its arguments: the sign-in, and [`STALE_LINK_FLAG`] for a link. Never
    /// the link itself, the light tray or the config file, which the running program has chosen already.
    pub fn window_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self.sign_in.iter().map(|profile| sign_in_arg(profile.as_deref())).collect();
        if self.link || self.stale_link {
            args.push(STALE_LINK_FLAG.to_owned());
        }
        args
    }
}

/// The argument that asks for a sign-in to `profile`, or to the first profile.
pub fn sign_in_arg(profile: Option<&str>) -> String {
    profile.map_or_else(|| SIGN_IN_FLAG.to_owned(), |p| format!("{SIGN_IN_FLAG}={p}"))
}

/// What `arg` asks for if it is [`SIGN_IN_FLAG`]: the first profile (`Some(None)`) or the one named.
fn sign_in_flag(arg: &str) -> Option<Option<String>> {
    if arg == SIGN_IN_FLAG {
        Some(None)
    } else {
        arg.strip_prefix(SIGN_IN_FLAG).and_then(|rest| rest.strip_prefix('=')).map(|p| Some(p.to_owned()))
    }
}

/// `args` (program first) with every sign-in link (an argument that is neither a flag nor `--config`'s value)
/// replaced by one [`STALE_LINK_FLAG`]; `None` when there is none.
pub fn without_links<S: AsRef<OsStr> + From<&'static str> + Clone>(args: &[S]) -> Option<Vec<S>> {
    let mut kept = Vec::with_capacity(args.len());
    let mut linked = false;
    let mut rest = args.iter();
    kept.extend(rest.next().cloned());
    while let Some(arg) = rest.next() {
        let text = arg.as_ref().to_string_lossy();
        if text == CONFIG_FLAG {
            kept.push(arg.clone());
            kept.extend(rest.next().cloned());
        } else if text.starts_with('-') {
            kept.push(arg.clone());
        } else if !linked {
            linked = true;
            kept.push(S::from(STALE_LINK_FLAG));
        }
    }
    linked.then_some(kept)
}

/// The program name and config choice (`--config FILE`, `--config=FILE`) of `args`, a command line.
pub fn config_args(args: &[OsString]) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut rest = args.iter();
    kept.extend(rest.next().cloned());
    while let Some(arg) = rest.next() {
        if arg == CONFIG_FLAG {
            kept.push(arg.clone());
            kept.extend(rest.next().cloned());
        } else if arg.to_str().is_some_and(|a| a.starts_with("--config=")) {
            kept.push(arg.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(args: &[&str]) -> Launch {
        Launch::parse(args)
    }

    #[test]
    fn only_whole_flags_count_never_the_program_name_or_a_link() {
        assert!(launch(&["gatehouse", "--hidden"]).light_tray);
        assert!(!launch(&["gatehouse"]).light_tray);
        assert!(!launch(&["--hidden"]).light_tray, "the program's own name is not a flag");
        let linked = launch(&["gatehouse", "com.example.gatehouse:/cb?x=--hidden"]);
        assert!(!linked.light_tray && linked.link && !linked.stale_link);
        assert!(launch(&["gatehouse", "--stale-link"]).stale_link);
        assert!(!launch(&["gatehouse", "--config", "--hidden"]).light_tray, "a config file named like a flag");
    }

    #[test]
    fn a_sign_in_is_asked_for_by_the_flag_alone() {
        assert_eq!(launch(&["gatehouse", "--sign-in"]).sign_in, Some(None));
        assert_eq!(launch(&["gatehouse", "--config", "x", "--sign-in=work"]).sign_in, Some(Some("work".into())));
        assert_eq!(launch(&["gatehouse"]).sign_in, None);
        assert_eq!(launch(&["gatehouse", "--sign-inx"]).sign_in, None);
        assert_eq!(launch(&["--sign-in"]).sign_in, None, "the program's own name is not a flag");
        assert_eq!(launch(&["gatehouse", "--sign-in=a", "--sign-in=b"]).sign_in, Some(Some("a".into())));
    }

    #[test]
    fn a_second_launch_hands_over_what_it_asks_never_a_link_or_its_config() {
        let argv = ["gatehouse", "--config", "/other.toml", "com.example.gatehouse:/cb?code=a", "--x"];
        assert_eq!(launch(&argv).window_args(), ["--stale-link"], "the link's code never reaches the window's argv");
        assert_eq!(launch(&["gatehouse", "--sign-in"]).window_args(), ["--sign-in"]);
        assert_eq!(
            launch(&["gatehouse", "--stale-link", "--sign-in=w"]).window_args(),
            ["--sign-in=w", "--stale-link"]
        );
        assert!(launch(&["gatehouse", "--hidden"]).window_args().is_empty());
        let asked = launch(&["gatehouse", "--sign-in=w", "x:/y"]);
        assert_eq!(Launch::parse_args(&asked.window_args()), Launch { link: false, stale_link: true, ..asked });
    }

    #[test]
    fn links_are_replaced_and_the_config_choice_kept() {
        let args = ["gatehouse", "--config", "/c/x.toml", "com.example.gatehouse:/cb?code=1", "x:/y"];
        assert_eq!(without_links(&args), Some(vec!["gatehouse", "--config", "/c/x.toml", "--stale-link"]));
        assert_eq!(without_links(&["gatehouse", "--hidden"]), None);
        let os = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let args = os(&["gatehouse", "--hidden", "--config", "/c/x.toml", "--sign-in"]);
        assert_eq!(config_args(&args), os(&["gatehouse", "--config", "/c/x.toml"]));
        assert_eq!(
            config_args(&os(&["gatehouse", "--config=/c/y.toml", "x"])),
            os(&["gatehouse", "--config=/c/y.toml"])
        );
    }
}
