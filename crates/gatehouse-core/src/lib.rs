//! The sign-in of a native app, the way RFC 8252 says it should be done, without a window toolkit: the
//! authorization code flow with PKCE (RFC 7636) in the system browser, a one-time `state`, a private-use scheme or
//! loopback redirect, `iss` checked (RFC 9207), ID tokens verified, DPoP (RFC 9449) and pushed requests (RFC 9126)
//! where the provider offers them, the device grant (RFC 8628), and sessions kept in the operating system's
//! keychain, one renewal at a time across processes.
//!
//! An app gives a [`service::Shell`] (how to open the browser, how to bring its window forward) and a
//! [`service::Views`] (where views go), and gets a [`service::ProfileService`] per profile; [`accounts::Accounts`] holds
//! several and takes in their views. A service's requests, renewal lock and clock are its [`service::Effects`]: the
//! real ones, unless a test gives its own. See the README beside this crate, and
//! `examples/loopback.rs` for a sign-in with a shell of its own.
//!
//! The modules are layered, each using only those above it in this list:
//! - [`error`], [`os`], [`presets`]: the errors, the clock and user ID, the provider presets;
//! - [`dpop`]: DPoP keys and proofs; [`http`]: the HTTP client and the requests that carry proofs;
//! - [`config`]: the profile and its checks; [`tokens`]: the stored session, the keychain, the renewal lock;
//! - [`auth`]: PKCE, the pending attempt, callbacks, the loopback listener, discovery, token requests, ID tokens;
//! - [`api`]: the protected resource; [`state`]: the views a window shows;
//! - [`service`]: every action on one profile; [`config_file`], [`setup`]: setting providers up;
//! - [`accounts`]: every profile side by side.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod config;
pub mod config_file;
pub mod dpop;
pub mod error;
pub mod http;
pub mod os;
pub mod presets;
pub mod service;
pub mod setup;
pub mod state;
pub mod tokens;

/// The settings of every property test: 10,000 generated cases each and a fixed seed, so that a CI run is
/// repeatable. The long campaign (`tests/bin/fuzz`) sets `PROPTEST_CASES` and a seed of its own
/// (`PROPTEST_RNG_SEED`), which win over these.
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 10_000;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x6a7e_4f0e);
    }
    // A failing case is printed, shrunk, and not written into the source tree.
    config.failure_persistence = None;
    config
}
