//! The authorization code flow with PKCE for a native app (RFC 6749 §4.1, RFC 7636, RFC 8252).
//!
//! - `pkce`: the attempt's one-time secrets;
//! - `pending`: the single attempt in progress and its one-time `state` check;
//! - `callback`: parsing and checking the redirect (pure);
//! - `loopback`: the one-shot listener for a loopback redirect;
//! - `discovery`: provider metadata;
//! - `flow`: the token endpoint and revocation calls;
//! - `id_token`: the claims that say who signed in.

pub mod callback;
pub mod discovery;
pub mod flow;
pub mod id_token;
pub mod loopback;
pub mod narrow;
pub mod pending;
pub mod pkce;
