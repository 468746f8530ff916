//! The light tray's icon and menu, straight over D-Bus: a StatusNotifierItem (the freedesktop.org draft KDE,
//! GNOME's AppIndicator extension and most panels read) whose menu is served over `com.canonical.dbusmenu`, the
//! way libayatana-appindicator serves the window's. No GTK: the panel draws the menu.
//!
//! The menu is [`gatehouse_app::tray::entries`], the window's tray menu too; a click becomes a [`Request`] for the
//! light tray.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Str};

use gatehouse_app::tray::Entry;

use super::Request;

/// The panel's StatusNotifierWatcher, which items register with.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Where the item and its menu are served.
const ITEM_PATH: &str = "/StatusNotifierItem";
const MENU_PATH: &str = "/MenuBar";

/// What the tray shows, shared by the item and its menu.
#[derive(Default)]
struct Shown {
    entries: Vec<Entry>,
    tooltip: String,
    /// dbusmenu's item IDs, one per entry ID for the life of the menu, so that a click sent while the menu changes
    /// never lands on another item.
    ids: HashMap<String, i32>,
    revision: u32,
}

impl Shown {
    /// The dbusmenu ID of `key`, given one the first time it is asked for (0 is the root).
    fn id(&mut self, key: String) -> i32 {
        let next = i32::try_from(self.ids.len()).unwrap_or(i32::MAX - 1) + 1;
        *self.ids.entry(key).or_insert(next)
    }

    /// The menu's items with their IDs, in order.
    fn items(&mut self) -> Vec<(i32, Entry)> {
        let mut separators = 0;
        let entries = self.entries.clone();
        entries
            .into_iter()
            .map(|entry| {
                let key = match &entry {
                    Entry::Item(id, ..) | Entry::Check(id, ..) => id.clone(),
                    Entry::Separator => {
                        separators += 1;
                        format!("separator {separators}")
                    }
                };
                (self.id(key), entry)
            })
            .collect()
    }
}

fn lock(shown: &Mutex<Shown>) -> MutexGuard<'_, Shown> {
    shown.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The tray icon: serves the item and its menu on `bus`, and registers with the panel's watcher when there is one.
pub struct Tray {
    bus: zbus::Connection,
    shown: Arc<Mutex<Shown>>,
}

impl Tray {
    /// Serves the item, showing `entries` and `tooltip`; clicks go to `requests`.
    ///
    /// # Errors
    /// When the objects can't be served on `bus`.
    pub async fn start(
        bus: &zbus::Connection,
        entries: Vec<Entry>,
        tooltip: String,
        requests: UnboundedSender<Request>,
    ) -> zbus::Result<Tray> {
        let shown = Arc::new(Mutex::new(Shown { entries, tooltip, ..Shown::default() }));
        let server = bus.object_server();
        server.at(ITEM_PATH, Item { shown: Arc::clone(&shown), requests: requests.clone() }).await?;
        server.at(MENU_PATH, DbusMenu { shown: Arc::clone(&shown), requests }).await?;
        let tray = Tray { bus: bus.clone(), shown };
        tray.register().await;
        Ok(tray)
    }

    /// Registers the item with the panel's StatusNotifierWatcher. With no panel, the icon is simply unseen, as
    /// the window's is.
    pub async fn register(&self) {
        let Some(name) = self.bus.unique_name().map(|n| n.to_string()) else { return };
        let registered = self
            .bus
            .call_method(
                Some(WATCHER),
                "/StatusNotifierWatcher",
                Some(WATCHER),
                "RegisterStatusNotifierItem",
                &(name.as_str(),),
            )
            .await;
        match registered {
            Ok(_) => tracing::info!("tray icon registered"),
            Err(e) => tracing::info!("no tray to show the icon in ({e})"),
        }
    }

    /// Shows `entries` and `tooltip`, telling the panel only when something changed.
    pub async fn show(&self, entries: Vec<Entry>, tooltip: String) {
        let (menu_changed, tooltip_changed, revision) = {
            let mut shown = lock(&self.shown);
            let menu_changed = shown.entries != entries;
            let tooltip_changed = shown.tooltip != tooltip;
            if menu_changed {
                shown.revision += 1;
            }
            shown.entries = entries;
            shown.tooltip = tooltip;
            (menu_changed, tooltip_changed, shown.revision)
        };
        let emitted = async {
            if menu_changed {
                let menu = SignalEmitter::new(&self.bus, MENU_PATH)?;
                DbusMenu::layout_updated(&menu, revision, 0).await?;
            }
            if tooltip_changed {
                let item = SignalEmitter::new(&self.bus, ITEM_PATH)?;
                Item::new_tool_tip(&item).await?;
            }
            zbus::Result::Ok(())
        };
        if let Err(e) = emitted.await {
            tracing::warn!("couldn't update the tray: {e}");
        }
    }
}

/// `org.kde.StatusNotifierItem`.
struct Item {
    shown: Arc<Mutex<Shown>>,
    requests: UnboundedSender<Request>,
}

/// An icon as the item sends it: width, height, and ARGB32 pixels in network byte order.
type Pixmap = (i32, i32, Vec<u8>);

#[zbus::interface(name = "org.kde.StatusNotifierItem")]
impl Item {
    /// A click on the icon itself shows the window, as the menu's Show does.
    fn activate(&self, _x: i32, _y: i32) {
        let _ = self.requests.send(Request::Window(Vec::new()));
    }

    fn secondary_activate(&self, _x: i32, _y: i32) {}

    fn context_menu(&self, _x: i32, _y: i32) {}

    fn scroll(&self, _delta: i32, _orientation: &str) {}

    #[zbus(property)]
    fn category(&self) -> &str {
        "ApplicationStatus"
    }

    #[zbus(property)]
    fn id(&self) -> &str {
        "gatehouse"
    }

    #[zbus(property)]
    fn title(&self) -> &str {
        "Gatehouse"
    }

    #[zbus(property)]
    fn status(&self) -> &str {
        "Active"
    }

    #[zbus(property)]
    fn window_id(&self) -> i32 {
        0
    }

    #[zbus(property)]
    fn icon_name(&self) -> &str {
        ""
    }

    #[zbus(property)]
    fn icon_pixmap(&self) -> Vec<Pixmap> {
        icon().into_iter().collect()
    }

    #[zbus(property)]
    fn tool_tip(&self) -> (String, Vec<Pixmap>, String, String) {
        (String::new(), Vec::new(), "Gatehouse".to_owned(), lock(&self.shown).tooltip.clone())
    }

    /// False: a click on the icon calls [`Self::activate`], which shows the window, and the menu is for the
    /// other button (StatusNotifierItem spec). A panel that honours `ItemIsMenu` (KDE Plasma and others) would
    /// otherwise open the menu on a click and never show the window.
    #[zbus(property)]
    fn item_is_menu(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn menu(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(MENU_PATH).unwrap_or_default()
    }

    #[zbus(signal)]
    async fn new_tool_tip(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

/// The app's icon (the one the window's tray shows), as the item sends it.
fn icon() -> Option<Pixmap> {
    let decoder = png::Decoder::new(std::io::Cursor::new(include_bytes!("../../../../icons/32x32.png")));
    let mut reader = decoder.read_info().ok()?;
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut buffer).ok()?;
    if frame.color_type != png::ColorType::Rgba || frame.bit_depth != png::BitDepth::Eight {
        return None;
    }
    let argb = buffer[..frame.buffer_size()].chunks_exact(4).flat_map(|p| [p[3], p[0], p[1], p[2]]).collect();
    Some((i32::try_from(frame.width).ok()?, i32::try_from(frame.height).ok()?, argb))
}

/// One menu item as dbusmenu sends it: its ID, properties and children (none: the menu is flat).
#[derive(Debug, serde::Serialize, zbus::zvariant::Type, zbus::zvariant::Value, zbus::zvariant::OwnedValue)]
struct Node {
    id: i32,
    properties: HashMap<String, OwnedValue>,
    children: Vec<OwnedValue>,
}

/// A label as dbusmenu shows it: `_` marks the access key that follows, so a literal one is doubled.
fn label(text: &str) -> OwnedValue {
    OwnedValue::from(Str::from(text.replace('_', "__")))
}

fn text(text: &str) -> OwnedValue {
    OwnedValue::from(Str::from(text.to_owned()))
}

fn properties(entry: &Entry) -> HashMap<String, OwnedValue> {
    let mut properties = HashMap::new();
    match entry {
        Entry::Item(_, name, enabled) => {
            properties.insert("label".to_owned(), label(name));
            properties.insert("enabled".to_owned(), OwnedValue::from(*enabled));
        }
        Entry::Check(_, name, checked) => {
            properties.insert("label".to_owned(), label(name));
            properties.insert("toggle-type".to_owned(), text("checkmark"));
            properties.insert("toggle-state".to_owned(), OwnedValue::from(i32::from(*checked)));
        }
        Entry::Separator => {
            properties.insert("type".to_owned(), text("separator"));
        }
    }
    properties
}

/// `com.canonical.dbusmenu`, version 3.
struct DbusMenu {
    shown: Arc<Mutex<Shown>>,
    requests: UnboundedSender<Request>,
}

impl DbusMenu {
    /// The entry ID of the item dbusmenu calls `id`.
    fn entry_id(&self, id: i32) -> Option<String> {
        let mut shown = lock(&self.shown);
        shown.items().into_iter().find(|(i, _)| *i == id).and_then(|(_, entry)| match entry {
            Entry::Item(key, _, true) | Entry::Check(key, _, _) => Some(key),
            Entry::Item(_, _, false) | Entry::Separator => None,
        })
    }

    fn event_happened(&self, id: i32, event: &str) -> bool {
        let Some(key) = self.entry_id(id) else { return false };
        if event == "clicked" {
            let _ = self.requests.send(Request::Clicked(key));
        }
        true
    }
}

#[zbus::interface(name = "com.canonical.dbusmenu")]
impl DbusMenu {
    /// The whole menu, whatever part is asked for: it is one level deep.
    fn get_layout(&self, _parent: i32, _depth: i32, _names: Vec<String>) -> (u32, Node) {
        let mut shown = lock(&self.shown);
        let children = shown
            .items()
            .into_iter()
            .filter_map(|(id, entry)| {
                let node = Node { id, properties: properties(&entry), children: Vec::new() };
                OwnedValue::try_from(node).ok()
            })
            .collect();
        let mut root = HashMap::new();
        root.insert("children-display".to_owned(), text("submenu"));
        (shown.revision, Node { id: 0, properties: root, children })
    }

    fn get_group_properties(&self, ids: Vec<i32>, _names: Vec<String>) -> Vec<(i32, HashMap<String, OwnedValue>)> {
        let mut shown = lock(&self.shown);
        shown.items().into_iter().filter(|(id, _)| ids.contains(id)).map(|(id, e)| (id, properties(&e))).collect()
    }

    fn get_property(&self, id: i32, name: &str) -> zbus::fdo::Result<OwnedValue> {
        let mut shown = lock(&self.shown);
        let entry = shown.items().into_iter().find(|(i, _)| *i == id).map(|(_, e)| e);
        entry
            .and_then(|e| properties(&e).remove(name))
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("no property {name} on item {id}")))
    }

    fn event(&self, id: i32, event_id: &str, _data: OwnedValue, _timestamp: u32) {
        self.event_happened(id, event_id);
    }

    fn event_group(&self, events: Vec<(i32, String, OwnedValue, u32)>) -> Vec<i32> {
        events.into_iter().filter(|(id, event, ..)| !self.event_happened(*id, event)).map(|(id, ..)| id).collect()
    }

    fn about_to_show(&self, _id: i32) -> bool {
        false
    }

    fn about_to_show_group(&self, _ids: Vec<i32>) -> (Vec<i32>, Vec<i32>) {
        (Vec::new(), Vec::new())
    }

    #[zbus(property)]
    fn version(&self) -> u32 {
        3
    }

    #[zbus(property)]
    fn text_direction(&self) -> &str {
        "ltr"
    }

    #[zbus(property)]
    fn status(&self) -> &str {
        "normal"
    }

    #[zbus(property)]
    fn icon_theme_path(&self) -> Vec<String> {
        Vec::new()
    }

    #[zbus(signal)]
    async fn layout_updated(emitter: &SignalEmitter<'_>, revision: u32, parent: i32) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, label: &str) -> Entry {
        Entry::Item(id.to_owned(), label.to_owned(), true)
    }

    #[test]
    fn an_item_keeps_its_id_while_the_menu_changes_around_it() {
        let mut shown =
            Shown { entries: vec![item("tray-sign-in", "Sign in"), item("tray-quit", "Quit")], ..Shown::default() };
        let quit = shown.items()[1].0;
        shown.entries =
            vec![item("tray-refresh", "Refresh"), item("tray-sign-out", "Sign out"), item("tray-quit", "Quit")];
        let items = shown.items();
        assert_eq!(items[2], (quit, item("tray-quit", "Quit")), "a click on Quit sent meanwhile still quits");
        assert!(!items.iter().any(|(id, _)| *id == 0), "0 is the root");
        let mut ids: Vec<i32> = items.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn a_label_shows_its_underscores_rather_than_an_access_key() {
        assert_eq!(String::try_from(label("Sign in to my_work")).unwrap(), "Sign in to my__work");
    }

    #[test]
    fn the_icon_is_the_apps_own() {
        let (width, height, pixels) = icon().unwrap();
        assert_eq!((width, height), (32, 32));
        assert_eq!(pixels.len(), 32 * 32 * 4);
    }
}
