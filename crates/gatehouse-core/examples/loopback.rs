//! Signs in through a loopback redirect (RFC 8252 §7.3) with a shell of its own, shows who signed in and what
//! the resource said, then signs out.
//!
//! ```sh
//! cargo run -p gatehouse-core --example loopback -- ISSUER CLIENT_ID RESOURCE_URL
//! ```
//!
//! The shell prints the authorization link on stderr and, when `GATEHOUSE_EXAMPLE_BROWSER` names a command,
//! runs it with the link (the system browser otherwise: open the link yourself). The session is kept in the
//! OS keychain under the service `com.example.gatehouse-example` until the sign-out at the end.

use std::error::Error;

use gatehouse_core::config::Config;
use gatehouse_core::service::{ProfileService, Shell};
use gatehouse_core::state::{AuthView, Phase};
use gatehouse_core::tokens::keychain::Keychain;
use tokio::sync::watch;

/// The example's desktop: a terminal.
struct Terminal;

impl Shell for Terminal {
    fn open_browser(&self, url: &url::Url) -> Result<(), String> {
        eprintln!("Sign in at: {url}");
        match std::env::var_os("GATEHOUSE_EXAMPLE_BROWSER") {
            Some(browser) => std::process::Command::new(browser).arg(url.as_str()).spawn().map(drop),
            None => Ok(()),
        }
        .map_err(|e| e.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, client_id, resource] = args.as_slice() else {
        return Err("usage: loopback ISSUER CLIENT_ID RESOURCE_URL".into());
    };
    // A profile, as a config file would have it: the loopback redirect gets a free port for each sign-in.
    let profile = format!(
        "profile = \"example\"\nissuer = \"{issuer}\"\nclient_id = \"{client_id}\"\n\
         scopes = [\"openid\", \"profile\"]\nredirect_uri = \"http://127.0.0.1/callback\"\nresource_url = \"{resource}\"\n"
    );
    let config = Config::parse(&profile, "the example's profile")?;
    let (views, mut seen) = watch::channel(AuthView::initial("example", None));
    let publish = Box::new(move |view: &AuthView| {
        views.send_replace(view.clone());
    });
    let service = ProfileService::new(Ok(config), Keychain::new("com.example.gatehouse-example"), Terminal, publish);

    service.sign_in().await?;
    loop {
        let view = seen.borrow_and_update().clone();
        match view.phase {
            Phase::SignedIn => {
                let who = view.account.and_then(|a| a.name.or(a.subject)).unwrap_or_default();
                println!("signed in as {who}");
                println!("resource: {}", view.resource.unwrap_or_default());
                break;
            }
            Phase::SignedOut | Phase::ConfigError => {
                let why = view.notice.map(|n| n.message).unwrap_or_else(|| "the sign-in stopped".into());
                return Err(why.into());
            }
            _ => seen.changed().await?,
        }
    }
    service.sign_out().await?;
    println!("signed out");
    Ok(())
}
