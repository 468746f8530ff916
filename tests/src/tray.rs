//! The tray, for real and headless: a StatusNotifier host on the test's session bus, which is all an
//! AppIndicator needs to show its icon, and a client for the registered item's menu over
//! `com.canonical.dbusmenu`, which reads the menu the way a panel does and clicks its items.
//!
//! The host is one per test process (it owns `org.kde.StatusNotifierWatcher`); it must be started before the
//! app builds its tray.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// The items that registered: the bus name that owns each, and its object path.
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] header: zbus::message::Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // libayatana-appindicator passes its object path; other items pass a bus name.
        let item = if service.starts_with('/') {
            (sender, service.to_owned())
        } else {
            (service.to_owned(), "/StatusNotifierItem".to_owned())
        };
        self.items.lock().unwrap_or_else(|p| p.into_inner()).push(item);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.iter().map(|(name, path)| format!("{name}{path}")).collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The tray host of this test process.
pub struct TrayHost {
    connection: Connection,
    items: Items,
}

impl TrayHost {
    /// Starts the host on the session bus, once per process.
    pub fn start() -> &'static TrayHost {
        static HOST: OnceLock<TrayHost> = OnceLock::new();
        HOST.get_or_init(|| {
            let items: Items = Arc::default();
            let connection = zbus::blocking::connection::Builder::session()
                .and_then(|b| b.name("org.kde.StatusNotifierWatcher"))
                .and_then(|b| b.serve_at("/StatusNotifierWatcher", Watcher { items: Arc::clone(&items) }))
                .and_then(|b| b.build())
                .unwrap_or_else(|e| panic!("the tray host couldn't start on the session bus: {e}"));
            TrayHost { connection, items }
        })
    }

    /// How many items have registered so far.
    pub fn registered(&self) -> usize {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The menu of the item registered last, which follows the app from process image to process image: the
    /// window and the light tray each register their own item as they take over.
    pub fn latest_menu(&'static self) -> Option<TrayMenu> {
        let menu = TrayMenu { host: self };
        menu.locate()?;
        Some(menu)
    }

    /// The menu of an item registered after the first `before` (see [`TrayHost::registered`]): the app's, once it
    /// has registered, waited for as long as anything in the window is.
    pub async fn menu_after(&'static self, before: usize) -> TrayMenu {
        crate::wait_for("the app's tray item to register", crate::desktop::UI_TIMEOUT, || async move {
            (self.registered() > before).then(|| self.latest_menu()).flatten()
        })
        .await
    }

    /// The `ItemIsMenu` property of the item registered last: whether a panel opens the menu on a click (true)
    /// or calls `Activate` (false).
    pub fn latest_item_is_menu(&self) -> Option<bool> {
        let (name, path) = self.items.lock().unwrap_or_else(|p| p.into_inner()).last().cloned()?;
        let properties = zbus::blocking::fdo::PropertiesProxy::builder(&self.connection)
            .destination(name)
            .ok()?
            .path(path)
            .ok()?
            .build()
            .ok()?;
        let value = properties.get("org.kde.StatusNotifierItem".try_into().ok()?, "ItemIsMenu").ok()?;
        bool::try_from(value).ok()
    }

    /// The bus name and menu path of the item registered last.
    fn latest_item_menu(&self) -> Option<(String, OwnedObjectPath)> {
        let (name, path) = self.items.lock().unwrap_or_else(|p| p.into_inner()).last().cloned()?;
        let properties = zbus::blocking::fdo::PropertiesProxy::builder(&self.connection)
            .destination(name.clone())
            .ok()?
            .path(path)
            .ok()?
            .build()
            .ok()?;
        let menu = properties.get("org.kde.StatusNotifierItem".try_into().ok()?, "Menu").ok()?;
        Some((name, OwnedObjectPath::try_from(menu).ok()?))
    }
}

/// One entry of a tray menu, as a panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    /// The dbusmenu item ID.
    pub id: i32,
    /// Its label (empty for a separator).
    pub label: String,
    /// Whether it can be clicked.
    pub enabled: bool,
    /// For a check item, whether it is checked.
    pub checked: Option<bool>,
    /// Whether a separator comes before it.
    pub after_separator: bool,
}

/// The app's tray menu: that of the item registered last.
pub struct TrayMenu {
    host: &'static TrayHost,
}

#[derive(Debug, serde::Deserialize, zbus::zvariant::Type, zbus::zvariant::OwnedValue)]
struct Layout {
    id: i32,
    properties: HashMap<String, OwnedValue>,
    children: Vec<OwnedValue>,
}

impl TrayMenu {
    fn locate(&self) -> Option<(String, OwnedObjectPath)> {
        self.host.latest_item_menu()
    }

    /// The visible items, in order, separators left out; none while no item answers (one process image hands
    /// over to the next).
    ///
    /// # Panics
    /// When the menu's layout can't be understood.
    pub fn entries(&self) -> Vec<MenuEntry> {
        let Some((name, path)) = self.locate() else { return Vec::new() };
        let reply = self.host.connection.call_method(
            Some(name.as_str()),
            &path,
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0i32, -1i32, Vec::<String>::new()),
        );
        let Ok(reply) = reply else { return Vec::new() };
        let (_revision, root): (u32, Layout) = reply.body().deserialize().unwrap_or_else(|e| panic!("layout: {e}"));
        let mut entries = Vec::new();
        let mut separator = false;
        for child in root.children {
            let Ok(Layout { id, properties, .. }) = Layout::try_from(child) else { continue };
            let string = |key: &str| properties.get(key).and_then(|v| String::try_from(v.clone()).ok());
            let flag = |key: &str| properties.get(key).and_then(|v| bool::try_from(v.clone()).ok()).unwrap_or(true);
            if !flag("visible") {
                continue;
            }
            if string("type").as_deref() == Some("separator") {
                separator = !entries.is_empty();
                continue;
            }
            let label = string("label").unwrap_or_default().replace('_', "");
            let checked = (string("toggle-type").as_deref() == Some("checkmark"))
                .then(|| properties.get("toggle-state").and_then(|v| i32::try_from(v.clone()).ok()) == Some(1));
            entries.push(MenuEntry { id, label, enabled: flag("enabled"), checked, after_separator: separator });
            separator = false;
        }
        entries
    }

    /// The labels of the visible items, with `(disabled)` after those that can't be clicked, and `[x]` or
    /// `[ ]` after check items.
    pub fn summary(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .map(|e| {
                let mut text = e.label;
                match e.checked {
                    Some(true) => text.push_str(" [x]"),
                    Some(false) => text.push_str(" [ ]"),
                    None => {}
                }
                if !e.enabled {
                    text.push_str(" (disabled)");
                }
                text
            })
            .collect()
    }

    /// The menu drawn as a panel shows it, as HTML, under an icon from `icon` (a PNG file): separators,
    /// disabled lines greyed, check marks.
    ///
    /// # Panics
    /// When the menu can't be read.
    pub fn to_html(&self, icon: &std::path::Path) -> String {
        let mut rows = String::new();
        for entry in self.entries() {
            if entry.after_separator {
                rows.push_str("<hr>");
            }
            let mark = match entry.checked {
                Some(true) => "&#x2611;",
                Some(false) => "&#x2610;",
                None => "",
            };
            let class = if entry.enabled { "" } else { " class=\"off\"" };
            let label = crate::desktop::html_text(&entry.label);
            rows.push_str(&format!("<div{class}><span class=\"mark\">{mark}</span>{label}</div>"));
        }
        format!(
            "<!doctype html><meta charset=utf-8><style>body{{margin:0;background:#3c3f41;font:14px 'DejaVu Sans',sans-serif}}\
             .bar{{height:30px;background:#222;display:flex;justify-content:flex-end;align-items:center;padding:0 12px}}\
             .bar img{{width:20px;height:20px;background:#444;border-radius:4px;padding:2px}}\
             .menu{{position:absolute;right:8px;top:32px;width:250px;background:#fff;color:#222;border-radius:6px;\
             padding:5px 0;box-shadow:0 4px 14px rgba(0,0,0,.45)}}.menu div{{padding:5px 14px}}.off{{color:#888}}\
             .mark{{display:inline-block;width:22px}}hr{{border:0;border-top:1px solid #ddd;margin:4px 0}}</style>\
             <div class=bar><img src=\"file://{}\"></div><div class=menu>{rows}</div>",
            icon.display()
        )
    }

    /// Clicks the item labelled `label`, as a panel does, waiting up to 10 s for the app's item to have it: after
    /// a hand-over between the window and the light tray, the new process image registers its item a moment later.
    ///
    /// # Panics
    /// When there is no such item, or the click can't be sent.
    pub fn click(&self, label: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let entry = loop {
            if let Some(entry) = self.entries().into_iter().find(|e| e.label == label) {
                break entry;
            }
            if std::time::Instant::now() >= deadline {
                panic!("no tray item {label:?} in {:?}", self.summary());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let Some((name, path)) = self.locate() else { return };
        let _ = self.host.connection.call_method(
            Some(name.as_str()),
            &path,
            Some("com.canonical.dbusmenu"),
            "Event",
            &(entry.id, "clicked", Value::from(0i32), 0u32),
        );
    }
}
