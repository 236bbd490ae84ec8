//! Builds the dashboard (web/, a yew app) for wasm32, generates its JS glue
//! with wasm-bindgen, and leaves index.html, app.js and app_bg.wasm in
//! OUT_DIR/dist for `src/assets.rs` to embed. Also records the git commit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    record_git_commit(&manifest_dir);
    build_web(&manifest_dir, &out_dir);
}

fn record_git_commit(root: &Path) {
    let head = root.join(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(h) = std::fs::read_to_string(&head) {
            if let Some(r) = h.trim().strip_prefix("ref: ") {
                let ref_file = root.join(".git").join(r);
                if ref_file.exists() {
                    println!("cargo:rerun-if-changed={}", ref_file.display());
                }
            }
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VIGIL_GIT_COMMIT={commit}");
}

/// `cargo run` on a fresh rustup install must work, so the wasm target is
/// added here if its standard library is missing.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib/wasm32-unknown-unknown").is_dir());
    if installed {
        return;
    }
    println!("cargo:warning=installing the wasm32-unknown-unknown target with rustup (needed for the dashboard)");
    let ok = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the wasm32-unknown-unknown target is missing and `rustup target add wasm32-unknown-unknown` failed");
}

fn build_web(root: &Path, out_dir: &Path) {
    ensure_wasm_target();
    let web = root.join("web");
    for p in ["src", "static", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    // web/ depends on the dashboards crate.
    for p in [
        "dashboards/src",
        "dashboards/builtin",
        "dashboards/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    // The nested build needs its own target dir: the outer cargo holds the
    // lock on ours. Keep it next to ours so CI caches and cleans it together.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("web");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--manifest-path",
        ])
        .arg(web.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Host flags must not leak into the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo} to build web/: {e}"));
    assert!(
        status.success(),
        "building web/ for wasm32-unknown-unknown failed; is the target installed? (rustup target add wasm32-unknown-unknown)"
    );
    let wasm = target_dir.join("wasm32-unknown-unknown/release/vigil-web.wasm");
    let dist = out_dir.join("dist");
    std::fs::create_dir_all(&dist).expect("create OUT_DIR/dist");
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .expect("select the web target")
        .typescript(false)
        // The library defaults to omitting the wasm URL; the page needs it.
        .omit_default_module_path(false)
        .out_name("app")
        .generate(&dist)
        .unwrap_or_else(|e| panic!("wasm-bindgen on {}: {e}", wasm.display()));
    std::fs::copy(web.join("static/index.html"), dist.join("index.html")).expect("copy index.html");
}
