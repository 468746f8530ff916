//! Setting providers up from the window: Check, Save (with RFC 7591 registration), the details of a saved
//! provider, and Remove (with RFC 7592 deletion). The config file is edited in place.

use super::*;

/// How long setting a provider up waits for its metadata or its registration endpoint.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Setting providers up, editing and removing them, from the window.
impl Accounts {
    pub(super) fn config_file(&self) -> Result<&Path> {
        let file = self.additions.as_ref().and_then(|a| a.config_file.as_deref());
        let file = file.ok_or_else(|| Error::Setup("there is no config file to write here".into()))?;
        if self.services().iter().any(|s| s.profile().is_none()) {
            return Err(Error::Setup("the config file has an error; fix it first (the window says where)".into()));
        }
        Ok(file)
    }

    /// The names a new profile can't have: every account's, and every stored session's.
    pub(super) fn taken_names(&self) -> Vec<String> {
        let mut taken: Vec<String> =
            self.services().iter().filter_map(|s| s.profile().map(|c| c.profile.clone())).collect();
        taken.extend(self.shared.lock().unwrap_or_else(|p| p.into_inner()).removed.iter().cloned());
        taken
    }

    /// The name a draft's profile gets: the one it edits, or a new one.
    pub(super) fn draft_name(&self, editing: Option<&str>, draft: &Draft) -> String {
        editing.map_or_else(|| setup::profile_name(draft, &self.taken_names()), str::to_owned)
    }

    pub(super) fn registrations(&self) -> Keychain {
        self.keychain.for_service(format!("{}.registration", self.keychain.service()))
    }

    /// Where the client secrets providers issue to registrations are kept, never in the config file.
    pub(super) fn client_secrets(&self) -> Keychain {
        self.keychain.for_service(crate::service::client_secrets_service(self.keychain.service()))
    }

    /// What the setup view shows to edit the configured profile `profile` (never its secret).
    ///
    /// # Errors
    /// [`Error::Setup`] when the file can't be read or has no such profile.
    pub fn provider_details(&self, profile: &str) -> Result<Editing> {
        let doc = crate::config_file::read(self.config_file()?)?;
        let table = crate::config_file::profile(&doc, profile)
            .ok_or_else(|| Error::Setup(format!("the config file has no profile called {profile:?}")))?;
        Ok(Editing::of(profile, table))
    }

    /// Check: what the provider `draft` names offers, and what will not work.
    ///
    /// # Errors
    /// Only when no HTTP client can be made; what the provider answers is in the findings.
    pub async fn check_provider(&self, draft: &Draft, editing: Option<&str>) -> Result<Findings> {
        let http = crate::http::Http::system(SETUP_TIMEOUT);
        let name = self.draft_name(editing, draft);
        Ok(setup::check(&self.with_saved_secret(draft, editing), &name, &http, &self.others(editing)).await)
    }

    /// The providers set up besides `editing`, as Check compares a draft with them (added accounts are another
    /// account at one of these).
    pub(super) fn others(&self, editing: Option<&str>) -> Vec<Existing> {
        self.services()
            .iter()
            .filter_map(|s| s.profile().cloned())
            .filter(|c| Some(c.profile.as_str()) != editing && !self.is_added(&c.profile))
            .map(|c| Existing::of(&c))
            .collect()
    }

    /// When editing, an empty secret keeps the saved one, but only for the same client at the same provider: a
    /// secret belongs to one client ID at one provider, and is never sent to another (a changed issuer, preset,
    /// domain, tenant, realm or client ID must be given its own).
    pub(super) fn with_saved_secret(&self, draft: &Draft, editing: Option<&str>) -> Draft {
        let mut draft = draft.clone();
        if let (Some(profile), true) = (editing, draft.client_secret.is_empty()) {
            let saved = self.config_file().ok().and_then(|file| crate::config_file::read(file).ok()).and_then(|doc| {
                let table = crate::config_file::profile(&doc, profile)?;
                let secret = table.get("client_secret").and_then(toml_edit::Item::as_str)?;
                same_client(table, &draft).then(|| secret.to_owned())
            });
            draft.client_secret = saved.unwrap_or_default();
        }
        draft
    }

    /// Save: runs Check, and when it finds nothing that won't work, writes the provider `draft` names into the
    /// config file (as a new profile, or over `editing`'s setup keys), registering Gatehouse first when no client
    /// ID is given, and shows its card. Otherwise, and when the provider refuses the registration, it saves
    /// nothing and says what Check says.
    ///
    /// # Errors
    /// [`Error::Setup`] when the file can't be written; a keychain error when a registration can't be kept.
    pub async fn save_provider(&self, draft: &Draft, editing: Option<&str>) -> Result<SaveOutcome> {
        if self.additions.is_none() {
            return Err(Error::Setup("providers can't be set up here".into()));
        }
        let file = self.config_file()?.to_owned();
        if let Some(profile) = editing {
            self.get(Some(profile))?;
        }
        let draft = self.with_saved_secret(draft, editing);
        let name = self.draft_name(editing, &draft);
        let http = crate::http::Http::system(SETUP_TIMEOUT);
        let (findings, surveyed) = setup::examine(&draft, &name, &http, &self.others(editing)).await;
        let Some(mut surveyed) = surveyed else { return Ok(SaveOutcome::Problems { findings }) };
        let mut fields = std::mem::take(&mut surveyed.fields);
        if let Some(profile) = editing {
            // A redirect written by hand and left as it is stays.
            let doc = crate::config_file::read(&file)?;
            if let Some(table) = crate::config_file::profile(&doc, profile) {
                // The form shows the saved scopes and resource, so an emptied field means the default; a redirect
                // written by hand is offered "as saved", which keeps it.
                let kept = |key: &str| key == "redirect_uri" && draft.redirect.is_empty();
                fields.retain(|(key, _)| !(kept(key) && table.contains_key(key)));
            }
        }
        // An edit that binds the profile to another provider, client or resource (a registration is a new client)
        // signs the old session out, revoking it where the old provider can (RFC 7009): no path would ever revoke
        // it afterwards, and its grant would stay alive with nobody holding it. That happens once the new profile
        // is known to be one the next start takes, just before it is written; a sign-out that fails saves
        // nothing, as with Remove.
        let rebound = match editing {
            Some(profile) => self.rebound(profile, &draft, &surveyed.config)?,
            None => None,
        };
        let registrations = self.registrations();
        let mut registered = None;
        if draft.client_id.trim().is_empty() {
            match register(&http, &surveyed, &mut fields).await? {
                Ok(registration) => registered = Some(registration),
                Err(findings) => return Ok(SaveOutcome::Problems { findings }),
            }
        }
        let keeps_kept_secret = registered.is_none() && self.keeps_kept_secret(&draft, editing);
        if registered.is_none() && !keeps_kept_secret {
            fields.push(("client_secret_in_keychain", None));
        }
        let earlier = match (&registered, editing) {
            (Some(_), Some(profile)) => registrations.load_text(profile).await.ok().flatten(),
            _ => None,
        };
        let saved = self.write_provider(&file, &name, editing, &fields, registered.as_ref(), rebound.as_ref()).await;
        let config = match saved {
            Ok(config) => config,
            Err(e) => {
                // Nothing was saved: a registration made for it is undone, and an earlier one kept.
                if let Some(management) = registered.as_ref().and_then(|r| r.management.as_ref()) {
                    let _ = setup::unregister(&http, management).await;
                    let _ = match &earlier {
                        Some(text) => registrations.save_text(&name, text.clone()).await,
                        None => registrations.delete(&name).await,
                    };
                }
                return Err(e);
            }
        };
        self.forget_replaced(&http, &name, keeps_kept_secret, registered.as_ref(), earlier).await;
        let service = self.make(config);
        self.place(&name, Arc::clone(&service));
        tracing::info!(edited = editing.is_some(), "saved a provider in the config file");
        self.publish();
        service.restore().await;
        Ok(SaveOutcome::Saved { profile: name })
    }

    /// Whether an edit of `editing` keeps the client secret kept in the keychain: a secret stays only with its own
    /// client, so an edit that keeps the client ID and types no secret keeps it, any other drops it.
    fn keeps_kept_secret(&self, draft: &Draft, editing: Option<&str>) -> bool {
        draft.client_secret.is_empty()
            && editing.is_some_and(|profile| {
                self.get(Some(profile))
                    .ok()
                    .and_then(|s| s.profile().cloned())
                    .is_some_and(|c| c.client_secret_in_keychain && c.client_id.as_str() == draft.client_id.trim())
            })
    }

    /// The service of `profile`, which an edit to `config` (or, with no client ID, to a new registration) binds
    /// to another provider, client or resource, if it does: its session is to be signed out.
    fn rebound(&self, profile: &str, draft: &Draft, config: &Config) -> Result<Option<Arc<ProfileService>>> {
        let old = self.get(Some(profile))?;
        let rebinds = draft.client_id.trim().is_empty()
            || old.profile().is_some_and(|c| !Binding::of(c).same_as(&Binding::of(config)));
        Ok(rebinds.then_some(old))
    }

    /// After a save: a kept client secret that no longer belongs to the profile's client goes, and a registration
    /// the new one replaces (`earlier`) is deleted at the provider (RFC 7592 §2.3).
    async fn forget_replaced(
        &self,
        http: &crate::http::Http,
        name: &str,
        keeps_kept_secret: bool,
        registered: Option<&setup::Registered>,
        earlier: Option<String>,
    ) {
        if !keeps_kept_secret && registered.is_none_or(|r| r.client_secret.is_none()) {
            if let Err(e) = self.client_secrets().delete(name).await {
                tracing::warn!(kind = e.kind(), "couldn't remove a client secret that is no longer used");
            }
        }
        if let Some(earlier) = earlier.and_then(|text| serde_json::from_str::<setup::Registration>(&text).ok()) {
            if let Err(e) = setup::unregister(http, &earlier).await {
                tracing::warn!(kind = e.kind(), "couldn't delete the replaced client registration");
            }
        }
    }

    /// Puts `service`, the profile `name` just saved, in its place: over the service it replaces, or after the
    /// configured profiles and before the added accounts.
    fn place(&self, name: &str, service: Arc<ProfileService>) {
        // The shared lock before the services' (as `change` takes them), never the other way round.
        let at = {
            let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            let services = self.services();
            let is_added = |s: &Arc<ProfileService>| {
                s.profile().is_some_and(|c| shared.added.iter().any(|a| a.profile == c.profile))
            };
            services.iter().position(is_added).unwrap_or(services.len())
        };
        let mut services = self.services.write().unwrap_or_else(|p| p.into_inner());
        match services.iter().position(|s| s.profile().is_some_and(|c| c.profile == name)) {
            Some(index) => services[index] = service,
            None => {
                let at = at.min(services.len());
                services.insert(at, service);
            }
        }
    }

    /// Keeps a new registration's secret in the keychain, then writes the profile into `file` (over `editing`'s
    /// keys, or as a new one), and reads it back as the next start will.
    pub(super) async fn write_provider(
        &self,
        file: &Path,
        name: &str,
        editing: Option<&str>,
        fields: &crate::config_file::Fields,
        registered: Option<&setup::Registered>,
        signs_out: Option<&Arc<ProfileService>>,
    ) -> Result<Config> {
        // Kept before the profile is written: without it the registration could never be deleted.
        if let Some(management) = registered.and_then(|r| r.management.as_ref()) {
            let text = serde_json::to_string(management).map_err(|e| Error::Internal(e.to_string()))?;
            self.registrations().save_text(name, text).await?;
        }
        // The issued secret too: the profile written next names the keychain as where it is.
        if let Some(secret) = registered.and_then(|r| r.client_secret.clone()) {
            self.client_secrets().save_text(name, secret).await?;
        }
        // Read as the next start will read it, before it is written: a profile that start would refuse is never
        // kept, so nothing ever needs undoing.
        let source = file.display().to_string();
        let read = |text: &str| -> Result<Config> {
            let configs = Config::parse_all(text, &source)?;
            configs
                .into_iter()
                .find(|c| c.profile == name)
                .ok_or_else(|| Error::Internal("the saved profile is missing".into()))
        };
        let valid = |text: &str| read(text).map(|_| ());
        if let Some(old) = signs_out {
            valid(&crate::config_file::preview(file, editing, name, fields)?)?;
            tracing::info!("the edit changes the provider or client; signing the old session out first");
            old.sign_out().await?;
        }
        let written = match editing {
            Some(profile) => crate::config_file::update_valid(file, profile, fields, valid)?,
            None => crate::config_file::add_valid(file, name, fields, valid)?,
        };
        read(&written)
    }

    /// Removes the configured profile `profile`: signs it out first (revoking at the provider), then deletes it
    /// from the config file, and deletes Gatehouse's registration at the provider where it registered itself
    /// (RFC 7592 §2.3). A sign-out that fails removes nothing.
    ///
    /// Returns what the sign-out said (the card that showed it goes), so the window can say it beside "Removed".
    ///
    /// # Errors
    /// The sign-out's error; [`Error::Setup`] when the file can't be written; [`Error::UnknownProfile`].
    pub async fn remove_provider(&self, profile: &str) -> Result<Option<crate::state::Notice>> {
        let file = self.config_file()?.to_owned();
        let service = self.get(Some(profile))?;
        if self.is_added(profile) {
            return Err(Error::Setup("this is an added account: sign it out, then use Remove account".into()));
        }
        service.sign_out().await?;
        let signed_out = service.view().notice;
        crate::config_file::remove(&file, profile)?;
        if let Err(e) = self.client_secrets().delete(profile).await {
            tracing::warn!(kind = e.kind(), "couldn't remove the provider's client secret from the keychain");
        }
        let registrations = self.registrations();
        match registrations.load_text(profile).await {
            Ok(Some(text)) => match serde_json::from_str::<setup::Registration>(&text) {
                Ok(registration) => {
                    let http = crate::http::Http::system(SETUP_TIMEOUT);
                    match setup::unregister(&http, &registration).await {
                        Ok(()) => {
                            tracing::info!("deleted Gatehouse's registration at the provider (RFC 7592)");
                            let _ = registrations.delete(profile).await;
                        }
                        Err(e) => tracing::warn!(kind = e.kind(), "couldn't delete the client registration"),
                    }
                }
                Err(_) => tracing::warn!("a client registration in the keychain is unreadable"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(kind = e.kind(), "couldn't read the client registration"),
        }
        self.services.write().unwrap_or_else(|p| p.into_inner()).retain(|s| !Arc::ptr_eq(s, &service));
        tracing::info!("removed a provider from the config file");
        self.publish();
        Ok(signed_out)
    }
}

/// Registers Gatehouse at the provider Check `surveyed` (RFC 7591), and fills `fields` in with the new client.
/// A secret the provider issued is this installation's own (RFC 8252 §8.5): it goes to the keychain, and the file
/// only says so (it may be a link into a dotfiles repository). A refusal is the client ID's to fix, said as Check
/// says its problems.
///
/// # Errors
/// What no finding can say.
async fn register(
    http: &crate::http::Http,
    surveyed: &setup::Surveyed,
    fields: &mut crate::config_file::Fields,
) -> Result<std::result::Result<setup::Registered, Findings>> {
    // Check found the registration endpoint, or said so as a problem.
    let endpoint = surveyed
        .endpoints
        .advertised
        .registration
        .as_ref()
        .ok_or_else(|| Error::Internal("no registration endpoint".into()))?;
    let registration = match setup::register(http, endpoint, &surveyed.config, &surveyed.endpoints).await {
        Ok(registration) => registration,
        Err(e @ (Error::Setup(_) | Error::Network(_) | Error::BadResponse(_))) => {
            return Ok(Err(setup::refused_registration(&e)))
        }
        Err(e) => return Err(e),
    };
    tracing::info!("registered Gatehouse at the provider (RFC 7591)");
    for (key, value) in fields.iter_mut() {
        match *key {
            "client_id" => *value = Some(registration.client_id.as_str().into()),
            "client_secret" => *value = None,
            _ => {}
        }
    }
    if !fields.iter().any(|(key, _)| *key == "client_secret") {
        fields.push(("client_secret", None));
    }
    fields.push(("client_secret_in_keychain", registration.client_secret.is_some().then(|| true.into())));
    if let Some(method) = &registration.auth_method {
        fields.push(("token_endpoint_auth_method", Some(method.as_str().into())));
    }
    Ok(Ok(registration))
}

/// Whether `draft` names the same client at the same provider as the saved profile `table`: the same preset (or
/// issuer, for one found by issuer), the same domain, tenant and realm where the preset takes them, and the same
/// client ID (an empty one registers a new client).
fn same_client(table: &toml_edit::Table, draft: &Draft) -> bool {
    let saved = |key: &str| table.get(key).and_then(toml_edit::Item::as_str).unwrap_or_default().trim().to_owned();
    let preset = match saved("preset") {
        preset if preset.is_empty() => "other".to_owned(),
        preset => preset,
    };
    let identity: &[(&str, &str)] = if draft.preset == "other" {
        &[("issuer", &draft.issuer)]
    } else {
        &[("tenant", &draft.tenant), ("domain", &draft.domain), ("realm", &draft.realm)]
    };
    preset == draft.preset.trim()
        && !draft.client_id.trim().is_empty()
        && saved("client_id") == draft.client_id.trim()
        && identity.iter().all(|(key, value)| saved(key) == value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved secret is kept by an edit only for the same client at the same provider.
    #[test]
    fn a_saved_secret_stays_with_its_client_and_provider() {
        let doc: toml_edit::DocumentMut =
            "preset = \"keycloak\"\nclient_id = \"app\"\nclient_secret = \"s\"\ndomain = \"id.example\"\nrealm = \"r\"\n"
                .parse()
                .unwrap();
        let draft = |client_id: &str, domain: &str, realm: &str| Draft {
            preset: "keycloak".into(),
            client_id: client_id.into(),
            domain: domain.into(),
            realm: realm.into(),
            ..Draft::default()
        };
        assert!(same_client(doc.as_table(), &draft("app", "id.example", "r")));
        assert!(same_client(doc.as_table(), &draft(" app ", "id.example ", "r")), "as saved, trimmed");
        assert!(!same_client(doc.as_table(), &draft("app", "id-corp.example", "r")), "another domain");
        assert!(!same_client(doc.as_table(), &draft("app", "id.example", "other")), "another realm");
        assert!(!same_client(doc.as_table(), &draft("app2", "id.example", "r")), "another client");
        assert!(!same_client(doc.as_table(), &draft("", "id.example", "r")), "a new registration");
        let other: toml_edit::DocumentMut =
            "issuer = \"https://a.example\"\nclient_id = \"app\"\nclient_secret = \"s\"\n".parse().unwrap();
        let by_issuer = |issuer: &str| Draft {
            preset: "other".into(),
            issuer: issuer.into(),
            client_id: "app".into(),
            ..Draft::default()
        };
        assert!(same_client(other.as_table(), &by_issuer("https://a.example")));
        assert!(!same_client(other.as_table(), &by_issuer("https://b.example")), "another issuer");
        assert!(!same_client(doc.as_table(), &by_issuer("https://a.example")), "another kind of provider");
    }
}
