#[allow(clippy::expect_used)] // a build script reports failure by panicking
fn main() {
    tauri_build::try_build(tauri_build::Attributes::new()).expect("failed to run tauri-build");
}
