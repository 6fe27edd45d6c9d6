//! The console serves a working site however its binary was built. Leptos names the WebAssembly
//! a page loads at compile time (`option_env!("LEPTOS_OUTPUT_NAME")`, which cargo-leptos sets);
//! this test binary's `sti-rollout` is built by plain cargo, so it proves `.cargo/config.toml`
//! names it for every build: every `/pkg/` file a page references is one cargo-leptos writes.

use crate::support::Served;
use std::process::{Command, Stdio};

/// `[package.metadata.leptos] output-name` from Cargo.toml: cargo-leptos writes
/// `<site-root>/pkg/<output-name>.{js,wasm,css}`.
fn output_name() -> String {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let line = manifest.lines().find(|l| l.starts_with("output-name = ")).expect("output-name in Cargo.toml");
    line.trim_start_matches("output-name = ").trim_matches('"').to_owned()
}

/// `serve` on a free port, over small demo data and the site folder `site`.
fn serve(dir: &std::path::Path, site: &std::path::Path) -> Served {
    let config = dir.join("sti.toml");
    std::fs::write(&config, "[demo_rows]\ndev = 10\nstaging = 10\nprod = 10\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sti-rollout"));
    command
        .args(["--data-dir", &dir.join("data").display().to_string()])
        .args(["--config", &config.display().to_string()])
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(dir)
        .env("LEPTOS_SITE_ROOT", site)
        .env("STI_LOG", "warn")
        .env_remove("LEPTOS_OUTPUT_NAME")
        .stderr(Stdio::null());
    Served::start(command)
}

/// Every distinct `/pkg/…` path in `html`.
fn pkg_paths(html: &str) -> Vec<String> {
    let mut paths: Vec<String> = html
        .match_indices("/pkg/")
        .map(|(at, _)| {
            let rest = &html[at..];
            let end =
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || "/_.-".contains(c))).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[tokio::test]
async fn every_file_a_page_loads_from_pkg_is_one_the_build_writes() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let name = output_name();
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    for extension in ["js", "wasm", "css"] {
        std::fs::write(site.join("pkg").join(format!("{name}.{extension}")), b"built").unwrap();
    }
    let server = serve(dir.path(), &site);

    let login = reqwest::get(format!("{}/login", server.address)).await.unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let html = login.text().await.unwrap();
    let paths = pkg_paths(&html);
    for extension in ["js", "wasm", "css"] {
        assert!(paths.iter().any(|p| p.ends_with(extension)), "the page loads a .{extension}: {paths:?}");
    }
    for path in &paths {
        let status = reqwest::get(format!("{}{path}", server.address)).await.unwrap().status();
        assert_eq!(status.as_u16(), 200, "GET {path} (the page references {paths:?})");
    }
}
