//! This user's Gatehouse: the app identifier, and where the config file, the list of added accounts and the
//! sessions are, found once from the launch's arguments, the environment and the platform's directories. Every
//! program (the command line, the light tray, the window) opens it this one way, so that a session made in one is
//! the others' too.

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_core::accounts::{self, Accounts, Additions, Profiles, Sink};
use gatehouse_core::config::{Config, ConfigError, CONFIG_ENV};
use gatehouse_core::service::{ProfileService, Shell};
use gatehouse_core::tokens::keychain::Keychain;

/// The app identifier: the keychain service the sessions are kept under, the name of the config and data
/// directories, the single-instance name, and the private-use URI scheme (RFC 8252 §7.1). `tauri.conf.json` must
/// say the same; a test checks it.
pub const IDENTIFIER: &str = "com.example.gatehouse";

/// Where this user's Gatehouse keeps its things.
#[derive(Debug, Clone)]
pub struct Installation {
    /// The config file chosen: `--config FILE`, else `GATEHOUSE_CONFIG`, else `config.toml` in the app's config
    /// directory. It need not exist: then nothing is set up yet, and the window creates it.
    pub config_file: Option<PathBuf>,
    /// The config file's profiles, or why they can't be used.
    pub config: std::result::Result<Vec<Config>, ConfigError>,
    /// The list of accounts added in the window, in the app's data directory.
    pub added_file: Option<PathBuf>,
    /// The app's directory for what lives only while this user is logged in.
    pub runtime_dir: Option<PathBuf>,
    /// The log of tokens handed to other programs ([`crate::handouts`]), in the app's data directory.
    pub handout_log: Option<PathBuf>,
    /// The person's decisions about which program may have which profile's tokens, in the app's data directory.
    pub programs_file: Option<PathBuf>,
}

impl Installation {
    /// The installation a launch's arguments (program first) choose with `--config FILE`, if they do.
    pub fn from_args(args: &[String]) -> Installation {
        Installation::locate(args, None)
    }

    /// The installation with the config file `explicit`, when given (the command line's own `--config`).
    pub fn with_config(explicit: Option<PathBuf>) -> Installation {
        Installation::locate(&[], explicit)
    }

    /// The config file [`Installation::with_config`] would read, found without reading it.
    pub fn config_file_for(explicit: Option<PathBuf>) -> Option<PathBuf> {
        let env_path = explicit.or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        Config::file_path(&[], env_path, dirs::config_dir().map(|dir| dir.join(IDENTIFIER)))
    }

    fn locate(args: &[String], explicit: Option<PathBuf>) -> Installation {
        let env_path = explicit.or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let config_dir = dirs::config_dir().map(|dir| dir.join(IDENTIFIER));
        Installation {
            config_file: Config::file_path(args, env_path.clone(), config_dir.clone()),
            config: Config::load(args, env_path, config_dir),
            added_file: dirs::data_dir().map(|dir| dir.join(IDENTIFIER).join(accounts::ADDED_FILE)),
            runtime_dir: dirs::runtime_dir().map(|dir| dir.join(IDENTIFIER)),
            handout_log: dirs::data_dir().map(|dir| dir.join(IDENTIFIER).join("handouts.jsonl")),
            programs_file: dirs::data_dir().map(|dir| dir.join(IDENTIFIER).join("programs.json")),
        }
    }

    /// The log of tokens handed to other programs, if there is a place for it.
    pub fn handouts(&self) -> Option<crate::handouts::Log> {
        self.handout_log.clone().map(crate::handouts::Log::at)
    }

    /// The person's decisions about programs, if there is a place for them.
    #[cfg(unix)]
    pub fn decisions(&self) -> Option<crate::agent::consent::Decisions> {
        self.programs_file.clone().map(crate::agent::consent::Decisions::at)
    }

    /// The keychain the sessions are kept in.
    pub fn keychain(&self) -> Keychain {
        Keychain::new(IDENTIFIER)
    }

    /// Every profile: the config's, then the accounts added in the window. An unreadable list of added accounts
    /// counts as none.
    ///
    /// # Errors
    /// The config file's error.
    pub fn configs(&self) -> std::result::Result<Vec<Config>, ConfigError> {
        let added = self.added_file.as_deref().and_then(accounts::read_added).unwrap_or_default();
        self.config.clone().map(|configs| accounts::with_added(configs, &added))
    }

    /// Opens the accounts of every profile, each service with a shell made by `shell`, their view going to `sink`.
    /// With `setup`, accounts can be added and providers set up (the window); without, they can't (the light
    /// tray).
    pub fn open_accounts<S: Shell>(
        &self,
        shell: impl Fn() -> S + Send + Sync + 'static,
        sink: Sink,
        setup: bool,
    ) -> Arc<Accounts> {
        let profiles: Profiles = accounts::profiles(self.config.clone(), self.added_file.as_deref());
        // One connection to the keychain for every profile.
        let keychain = self.keychain();
        let shared = keychain.for_service(IDENTIFIER);
        let factory: accounts::Factory = Box::new(move |profile, views| {
            ProfileService::new(profile, shared.for_service(IDENTIFIER), shell(), views)
        });
        let additions = match (setup, &self.added_file) {
            (true, Some(file)) => Some(Additions { file: file.clone(), config_file: self.config_file.clone() }),
            _ => None,
        };
        Accounts::new(profiles, factory, keychain, sink, additions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window program takes its identifier from `tauri.conf.json` (the bundle, the deep-link and
    /// single-instance plugins); everything else from [`IDENTIFIER`]. They must be one.
    #[test]
    fn the_window_config_has_this_identifier_and_scheme() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../src-tauri/tauri.conf.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let config: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(config["identifier"], IDENTIFIER, "{path}");
        assert_eq!(config["plugins"]["deep-link"]["desktop"]["schemes"], serde_json::json!([IDENTIFIER]), "{path}");
    }
}
