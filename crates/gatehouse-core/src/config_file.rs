//! The config file, changed in place when a provider is set up, edited or removed in the window.
//!
//! The file stays the user's: it is edited with `toml_edit`, which keeps every comment, blank line and
//! hand-written key it doesn't touch, and is replaced atomically (a new file, synced, renamed over the old one),
//! readable by its owner only. A file with one profile written at the top level is turned into a list of
//! `[[profile]]` tables when a second is added; its keys and their comments move into the first table.

use std::io::Write;
use std::path::Path;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

use crate::error::{Error, Result};

/// One profile's keys, as setting a provider up writes them, in order. `None` removes the key.
pub type Fields = Vec<(&'static str, Option<toml_edit::Value>)>;

/// Each change reads, edits and replaces the whole file: one at a time in this process, so that none is lost.
static EDITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How often an edit starts over when the file changed under it (another Gatehouse, or a person's editor).
const EDIT_ATTEMPTS: usize = 3;

/// Reads the file; a missing one is an empty document.
///
/// # Errors
/// [`Error::Setup`] when it can't be read or is not TOML: the window then says to fix it by hand first.
pub fn read(path: &Path) -> Result<DocumentMut> {
    parse(path, read_text(path)?.as_deref().unwrap_or_default())
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned()
}

/// The names of the profiles in `doc`, in order.
pub fn profile_names(doc: &DocumentMut) -> Vec<String> {
    match doc.get("profile") {
        Some(Item::ArrayOfTables(list)) => list.iter().map(table_name).collect(),
        _ if is_empty(doc) => Vec::new(),
        _ => vec![table_name(doc.as_table())],
    }
}

/// A profile's name: its `profile` key, or `default` (as [`crate::config::Config::parse`] names it).
fn table_name(table: &Table) -> String {
    table.get("profile").and_then(Item::as_str).unwrap_or("default").to_owned()
}

/// Whether `doc` has no keys at all (comments alone are no profile).
fn is_empty(doc: &DocumentMut) -> bool {
    doc.as_table().is_empty()
}

/// The table of the profile called `name`.
pub fn profile<'a>(doc: &'a DocumentMut, name: &str) -> Option<&'a Table> {
    match doc.get("profile") {
        Some(Item::ArrayOfTables(list)) => list.iter().find(|t| table_name(t) == name),
        _ if !is_empty(doc) && table_name(doc.as_table()) == name => Some(doc.as_table()),
        _ => None,
    }
}

fn profile_mut<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut Table> {
    if let Some(Item::ArrayOfTables(_)) = doc.get("profile") {
        let list = doc.get_mut("profile").and_then(Item::as_array_of_tables_mut)?;
        return list.iter_mut().find(|t| table_name(t) == name);
    }
    (!is_empty(doc) && table_name(doc.as_table()) == name).then(|| doc.as_table_mut())
}

/// Adds the profile `name` with `fields` at the end of the file at `path`, creating the file if there is none.
///
/// # Errors
/// [`Error::Setup`] when the file can't be read, parsed or written, or already has a profile called `name`.
pub fn add(path: &Path, name: &str, fields: &Fields) -> Result<()> {
    edit(path, |doc| add_to(doc, name, fields), |_| Ok(())).map(|_| ())
}

/// [`add`], written only if `valid` accepts the new file's text; returns that text.
///
/// # Errors
/// As [`add`], and `valid`'s error, when nothing is written.
pub fn add_valid(path: &Path, name: &str, fields: &Fields, valid: impl Fn(&str) -> Result<()>) -> Result<String> {
    edit(path, |doc| add_to(doc, name, fields), valid)
}

fn add_to(doc: &mut DocumentMut, name: &str, fields: &Fields) -> Result<()> {
    if profile_names(doc).iter().any(|n| n == name) {
        return Err(Error::Setup(format!("the config file already has a profile called {name:?}")));
    }
    let mut table = Table::new();
    table.insert("profile", Item::Value(name.into()));
    set(&mut table, fields);
    match doc.get("profile") {
        Some(Item::ArrayOfTables(_)) => {}
        _ if is_empty(doc) => {
            doc.remove("profile");
            doc.insert("profile", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        // One profile at the top level: it becomes the first of a list, with its keys and comments.
        _ => {
            let mut first = std::mem::take(doc.as_table_mut());
            if first.get("profile").is_none() {
                first.insert("profile", Item::Value("default".into()));
            }
            first.set_implicit(false);
            let mut list = ArrayOfTables::new();
            list.push(first);
            doc.insert("profile", Item::ArrayOfTables(list));
        }
    }
    let list = doc
        .get_mut("profile")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| Error::Internal("the profile list vanished".into()))?;
    if !list.is_empty() {
        table.decor_mut().set_prefix("\n");
    }
    list.push(table);
    Ok(())
}

/// Changes the keys `fields` names in the profile `name`: each `Some` is set in place, keeping its comments,
/// and each `None` removed. Every other key stays as the person wrote it.
///
/// # Errors
/// [`Error::Setup`] when the file can't be read, parsed or written, or has no profile called `name`.
pub fn update(path: &Path, name: &str, fields: &Fields) -> Result<()> {
    update_valid(path, name, fields, |_| Ok(())).map(|_| ())
}

/// [`update`], written only if `valid` accepts the new file's text; returns that text.
///
/// # Errors
/// As [`update`], and `valid`'s error, when nothing is written.
pub fn update_valid(path: &Path, name: &str, fields: &Fields, valid: impl Fn(&str) -> Result<()>) -> Result<String> {
    edit(path, |doc| update_in(doc, name, fields), valid)
}

fn update_in(doc: &mut DocumentMut, name: &str, fields: &Fields) -> Result<()> {
    let table = profile_mut(doc, name)
        .ok_or_else(|| Error::Setup(format!("the config file has no profile called {name:?} any more")))?;
    set(table, fields);
    Ok(())
}

/// Removes the profile `name`, with its comments; the file's other profiles and comments stay.
///
/// # Errors
/// [`Error::Setup`] when the file can't be read, parsed or written.
pub fn remove(path: &Path, name: &str) -> Result<()> {
    edit(path, |doc| remove_from(doc, name), |_| Ok(())).map(|_| ())
}

fn remove_from(doc: &mut DocumentMut, name: &str) -> Result<()> {
    let names = profile_names(doc);
    if !names.iter().any(|n| n == name) {
        return Ok(());
    }
    if let Some(list) = doc.get_mut("profile").and_then(Item::as_array_of_tables_mut) {
        let at = list.iter().position(|t| table_name(t) == name).unwrap_or_default();
        // The comments above the first table are the file's own (a heading): they stay at the top.
        let heading = list.get(at).filter(|_| at == 0).and_then(|t| t.decor().prefix()).and_then(|p| p.as_str());
        let heading = heading.map(str::to_owned);
        list.remove(at);
        let orphan = match (heading, list.get_mut(0)) {
            (Some(heading), Some(next)) => {
                next.decor_mut().set_prefix(heading);
                None
            }
            (heading, _) => heading,
        };
        if list.is_empty() {
            doc.remove("profile");
            if let Some(heading) = orphan {
                doc.set_trailing(heading);
            }
        }
    } else {
        // The one profile at the top level: its keys go, the file's comments stay.
        let keys: Vec<String> = doc.as_table().iter().map(|(k, _)| k.to_owned()).collect();
        for key in keys {
            doc.remove(&key);
        }
    }
    Ok(())
}

/// The file's text as [`update`] (`editing`) or [`add`] would write it now, without writing it.
///
/// # Errors
/// As those.
pub fn preview(path: &Path, editing: Option<&str>, name: &str, fields: &Fields) -> Result<String> {
    let mut doc = read(path)?;
    match editing {
        Some(profile) => update_in(&mut doc, profile, fields)?,
        None => add_to(&mut doc, name, fields)?,
    }
    Ok(doc.to_string())
}

/// Reads the file, applies `change`, and replaces the file with the result, as one edit, if `valid` accepts the
/// new text (so that a file the next start would refuse is never written, and nothing needs undoing): no other
/// Gatehouse edits it meanwhile (an OS lock on a file beside it), and a change made by anyone else meanwhile (a
/// person's editor) is never overwritten: the file is compared with what was read just before the new one
/// replaces it, and on a difference the edit starts over from the file as it is now. Returns the text written.
fn edit(
    path: &Path,
    change: impl Fn(&mut DocumentMut) -> Result<()>,
    valid: impl Fn(&str) -> Result<()>,
) -> Result<String> {
    edit_checked(path, change, valid, || {})
}

/// [`edit`], with `meanwhile` run between the read and the write (a test's stand-in for another editor).
fn edit_checked(
    path: &Path,
    change: impl Fn(&mut DocumentMut) -> Result<()>,
    valid: impl Fn(&str) -> Result<()>,
    meanwhile: impl Fn(),
) -> Result<String> {
    let _one_at_a_time = EDITS.lock().unwrap_or_else(|p| p.into_inner());
    let _other_processes = edit_lock(path)?;
    for _ in 0..EDIT_ATTEMPTS {
        let before = read_text(path)?;
        let mut doc = parse(path, before.as_deref().unwrap_or_default())?;
        change(&mut doc)?;
        let text = doc.to_string();
        valid(&text)?;
        meanwhile();
        match write_if_unchanged(path, &text, Some(before.as_deref().unwrap_or_default()))? {
            true => return Ok(text),
            false => tracing::info!("the config file changed while it was being edited; starting over"),
        }
    }
    Err(Error::Setup(format!("{} kept changing while Gatehouse edited it; try again", path.display())))
}

/// An OS lock on a file beside the config file, held while one Gatehouse process edits it.
fn edit_lock(path: &Path) -> Result<std::fs::File> {
    let failed = |e: std::io::Error| Error::Setup(format!("couldn't lock {} for editing ({e})", path.display()));
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::os::create_private_dir(dir).map_err(failed)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("config.toml");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(format!(".{name}.lock")))
        .map_err(failed)?;
    lock.lock().map_err(failed)?;
    Ok(lock)
}

/// The file's text, or `None` when there is no file.
fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Setup(format!("couldn't read {} ({e})", path.display()))),
    }
}

fn parse(path: &Path, text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        Error::Setup(format!("{} is not valid TOML; fix it by hand first ({})", path.display(), one_line(&e)))
    })
}

/// Sets `fields` in `table`, keeping the comments of a key that is already there.
fn set(table: &mut Table, fields: &Fields) {
    for (key, value) in fields {
        match value {
            None => {
                table.remove(key);
            }
            Some(value) => {
                let mut value = value.clone();
                if let Some(old) = table.get(key).and_then(Item::as_value) {
                    *value.decor_mut() = old.decor().clone();
                }
                table.insert(key, Item::Value(value));
            }
        }
    }
}

/// Replaces the file at `path` with `text`, atomically and readable by its owner only, if it still holds
/// `expected` (`None`: no check); returns whether it did. A config file that is a symbolic link (kept in a
/// dotfiles repository, say) stays one: the file it points to is replaced.
fn write_if_unchanged(path: &Path, text: &str, expected: Option<&str>) -> Result<bool> {
    let failed = |e: std::io::Error| Error::Setup(format!("couldn't write {} ({e})", path.display()));
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let path = target.as_path();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::os::create_private_dir(dir).map_err(failed)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config.toml");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let temporary = dir.join(format!(".{name}.{}-{nanos}.new", std::process::id()));
    let result = (|| {
        let mut file = crate::os::private_file(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        // Compare-and-swap: the file as read, still; else someone else's change would be lost.
        if let Some(expected) = expected {
            let now = match std::fs::read_to_string(path) {
                Ok(now) => now,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e),
            };
            if now != expected {
                return Ok(false);
            }
        }
        std::fs::rename(&temporary, path)?;
        // The rename itself must outlive a crash.
        std::fs::File::open(dir)?.sync_all()?;
        Ok(true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An edit never loses a change someone else made to the file while it was under way (a person's editor, or
    /// another Gatehouse): it starts over from the file as it is then.
    #[test]
    fn an_edit_keeps_a_change_made_meanwhile() {
        let dir = std::env::temp_dir().join(format!("gatehouse-config-cas-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "# mine\nprofile = \"a\"\nissuer = \"https://a.example\"\n").unwrap();
        let edited = std::cell::Cell::new(false);
        let fields: Fields = vec![("client_id", Some("new-id".into()))];
        edit_checked(
            &path,
            |doc| {
                let table = profile_mut(doc, "a").ok_or_else(|| Error::Setup("no a".into()))?;
                set(table, &fields);
                Ok(())
            },
            |_| Ok(()),
            || {
                // The person's editor saves once, while the first attempt is under way.
                if !edited.replace(true) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    std::fs::write(&path, format!("{text}# added by hand\n")).unwrap();
                }
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# added by hand"), "the concurrent change was lost: {text}");
        assert!(text.contains("client_id = \"new-id\""), "{text}");
        // A file that never stops changing is refused, not overwritten.
        let stubborn = edit_checked(
            &path,
            |_| Ok(()),
            |_| Ok(()),
            || std::fs::write(&path, format!("# {:?}\n", std::time::Instant::now())).unwrap(),
        );
        assert!(matches!(stubborn, Err(Error::Setup(_))), "{stubborn:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A change the validator refuses (a profile the next start would refuse) is never written: the file stays
    /// byte for byte as it was, with nothing to undo.
    #[test]
    fn a_refused_edit_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("gatehouse-config-valid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let text = "# mine\nprofile = \"a\"\nissuer = \"https://a.example\"\n";
        std::fs::write(&path, text).unwrap();
        let fields: Fields = vec![("issuer", Some("http://evil.example".into()))];
        let refused = update_valid(&path, "a", &fields, |_| Err(Error::Setup("refused".into())));
        assert!(matches!(refused, Err(Error::Setup(_))), "{refused:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // A preview is what the edit will write, and writes nothing.
        let previewed = preview(&path, Some("a"), "a", &fields).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let written = update_valid(&path, "a", &fields, |_| Ok(())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
        assert_eq!(previewed, written);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn fields(client_id: &str) -> Fields {
        vec![("preset", Some("google".into())), ("client_id", Some(client_id.into())), ("client_secret", None)]
    }

    fn scratch(name: &str, text: Option<&str>) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gatehouse-config-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        path
    }

    fn configs(path: &Path) -> Vec<crate::config::Config> {
        crate::config::Config::parse_all(&std::fs::read_to_string(path).unwrap(), "test").unwrap()
    }

    #[test]
    fn a_new_file_gets_a_profile_list_readable_by_its_owner_only() {
        let path = scratch("new", None);
        add(&path, "google", &fields("one.apps.googleusercontent.com")).unwrap();
        add(&path, "google", &fields("two.apps.googleusercontent.com")).unwrap_err();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("[[profile]]\nprofile = \"google\"\npreset = \"google\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Google needs a secret: the file says what the setup wrote, and the config names what is missing.
        let error = crate::config::Config::parse_all(&text, "t").unwrap_err();
        assert_eq!(error.field, "[[profile]] number 1, client_secret");
    }

    #[test]
    fn adding_editing_and_removing_keep_the_users_comments_and_keys() {
        let original = "# My providers\n\n[[profile]]\n# work account\nprofile = \"work\" # the name\npreset = \"gitlab\"\nclient_id = \"abc\" # from the console\ndomain = \"git.example.com\"\nsign_in_timeout_secs = 60\n";
        let path = scratch("edit", Some(original));
        let added = vec![
            ("name", Some("Example".into())),
            ("issuer", Some("https://id.example.com".into())),
            ("client_id", Some("xyz".into())),
            ("scopes", Some(toml_edit::Value::Array(["openid"].into_iter().collect()))),
            ("resource_url", Some("https://id.example.com/userinfo".into())),
        ];
        add(&path, "example", &added).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(original), "{text}");
        assert_eq!(profile_names(&read(&path).unwrap()), ["work", "example"]);

        let edit = vec![("preset", Some("gitlab".into())), ("client_id", Some("def".into())), ("domain", None)];
        update(&path, "work", &edit).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("client_id = \"def\" # from the console"), "{text}");
        assert!(text.contains("# work account\nprofile = \"work\" # the name"), "{text}");
        assert!(text.contains("sign_in_timeout_secs = 60"), "a key the edit doesn't name stays: {text}");
        assert!(!text.contains("domain"), "a key set to None is removed: {text}");

        remove(&path, "work").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# My providers\n"), "{text}");
        assert!(!text.contains("work"), "{text}");
        assert_eq!(profile_names(&read(&path).unwrap()), ["example"]);
        remove(&path, "example").unwrap();
        assert!(profile_names(&read(&path).unwrap()).is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "# My providers");
    }

    #[test]
    fn a_single_profile_file_becomes_a_list_with_its_comments() {
        let original = "# hand-written\npreset = \"gitlab\" # gitlab.com\nclient_id = \"abc\"\n";
        let path = scratch("single", Some(original));
        assert_eq!(profile_names(&read(&path).unwrap()), ["default"]);
        add(&path, "other", &vec![("preset", Some("gitlab".into())), ("client_id", Some("def".into()))]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# hand-written"), "{text}");
        assert!(text.contains("preset = \"gitlab\" # gitlab.com"), "{text}");
        let names: Vec<String> = configs(&path).into_iter().map(|c| c.profile).collect();
        assert_eq!(names, ["default", "other"]);
    }

    #[test]
    fn a_broken_file_is_left_alone() {
        let path = scratch("broken", Some("client_id = \n"));
        let error = add(&path, "x", &fields("y")).unwrap_err();
        assert_eq!(error.kind(), "setup_failed");
        assert!(error.to_string().contains("fix it by hand"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "client_id = \n");
    }
}
