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
    serve_binary(std::path::Path::new(env!("CARGO_BIN_EXE_sti-rollout")), dir, site)
}

/// [`serve`] with the binary at `binary`.
fn serve_binary(binary: &std::path::Path, dir: &std::path::Path, site: &std::path::Path) -> Served {
    let config = dir.join("sti.toml");
    std::fs::write(&config, "[demo_rows]\ndev = 10\nstaging = 10\nprod = 10\n").unwrap();
    let mut command = Command::new(binary);
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

/// A site as `cargo leptos build --release --precompress` with `hash-files` writes it: the
/// WebAssembly, JS and CSS named after their content, a `.br` and a `.gz` beside each, and
/// `hash.txt` beside the binary (here a hard link to the test's `sti-rollout` in a folder of
/// its own). Returns the folder, the site and the hashed names.
fn hashed_site() -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    // under target/, the binary's own file system, so that a hard link works
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::hard_link(env!("CARGO_BIN_EXE_sti-rollout"), bin.join("sti-rollout")).unwrap();
    let name = output_name();
    let pkg = dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let mut hashes = String::new();
    let mut names = Vec::new();
    for (extension, hash) in [
        ("js", "Aa0h3Xg2m6RZrW1vdyK1QA"),
        ("wasm", "Bb0h3Xg2m6RZrW1vdyK1QA"),
        ("css", "Cc0h3Xg2m6RZrW1vdyK1QA"),
    ] {
        let file = format!("{name}.{hash}.{extension}");
        std::fs::write(pkg.join(&file), format!("plain {extension} ").repeat(200)).unwrap();
        std::fs::write(pkg.join(format!("{file}.br")), format!("brotli {extension}")).unwrap();
        std::fs::write(pkg.join(format!("{file}.gz")), format!("gzip {extension}")).unwrap();
        hashes.push_str(&format!("{extension}: {hash}\n"));
        names.push(file);
    }
    std::fs::write(bin.join("hash.txt"), hashes).unwrap();
    let site = dir.path().join("site");
    (dir, site, names)
}

#[tokio::test]
async fn content_named_files_are_served_precompressed_and_cached_for_a_year() {
    let (dir, site, names) = hashed_site();
    let server = serve_binary(&dir.path().join("bin/sti-rollout"), dir.path(), &site);
    let client = reqwest::Client::new();

    let html = client.get(format!("{}/login", server.address)).send().await.unwrap().text().await.unwrap();
    let paths = pkg_paths(&html);
    for name in &names {
        assert!(paths.contains(&format!("/pkg/{name}")), "the page loads /pkg/{name}: {paths:?}");
    }
    for name in &names {
        let url = format!("{}/pkg/{name}", server.address);
        let extension = name.rsplit('.').next().unwrap();
        for (accept, encoding, body) in [
            ("gzip, deflate, br", Some("br"), format!("brotli {extension}")),
            ("gzip", Some("gzip"), format!("gzip {extension}")),
            ("identity", None, format!("plain {extension} ").repeat(200)),
        ] {
            let answer = client.get(&url).header("accept-encoding", accept).send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 200, "{url} ({accept})");
            let header = |h: &str| answer.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(header("content-encoding").as_deref(), encoding, "{url} ({accept})");
            assert_eq!(header("cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
            assert_eq!(header("vary").as_deref(), Some("accept-encoding"));
            assert_eq!(answer.text().await.unwrap(), body, "{url} ({accept})");
        }
    }
}

#[tokio::test]
async fn pages_are_compressed_never_cached_and_carry_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(
        site.join("pkg").join(format!("{}.css", output_name())),
        "body { color: black }\n".repeat(50),
    )
    .unwrap();
    let server = serve(dir.path(), &site);
    let client = reqwest::Client::new();

    let page =
        client.get(format!("{}/login", server.address)).header("accept-encoding", "br").send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["content-encoding"], "br");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    let gzip = client
        .get(format!("{}/login", server.address))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    assert_ne!(gzip.headers()["x-request-id"], id.as_str(), "a new id per request");
    let mine = client
        .get(format!("{}/health", server.address))
        .header("x-request-id", "my-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "my-trace-42", "the caller's id is kept");

    // a file without a content hash is revalidated: an ETag, and 304 while it matches
    let url = format!("{}/pkg/{}.css", server.address, output_name());
    let first = client.get(&url).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(first.headers()["cache-control"], "no-cache");
    assert_eq!(first.headers()["content-encoding"], "gzip", "compressed as it is served: no .gz beside it");
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(again.headers()["etag"], tag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    let other = client.get(&url).header("if-none-match", "\"something else\"").send().await.unwrap();
    assert_eq!(other.status().as_u16(), 200);

    // a body over the limit is refused before anything reads it: the answer comes to the
    // headers alone (a client still sending 2 MB would meet a closed connection)
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket =
        tokio::net::TcpStream::connect(server.address.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_is_never_compressed_and_its_first_event_arrives_at_once() {
    let (config, _dir) = crate::support::config(crate::support::Backend::Sqlite, [1, 1, 1]).await;
    let app = crate::support::TestApp::start(&config).await;
    let mut stream = app
        .client
        .get(format!("{}/events/dev", app.address))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(stream.headers().get("content-encoding").is_none(), "a compressor would hold events back");
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await;
    let chunk = first.expect("an event within 5 s").unwrap().expect("a first chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("data:"), "{chunk:?}");
    // what is made per request is compressed: the audit log's JSON export
    let answer = app
        .client
        .get(format!("{}/audit.json", app.address))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.headers()["content-encoding"], "gzip");
}
