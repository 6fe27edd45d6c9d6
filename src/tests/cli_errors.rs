//! Bad configuration stops startup with one clear sentence and a non-zero exit, never a panic.

use crate::support::{cli, stderr};
use std::collections::BTreeMap;

/// Runs `serve` with `vars` and returns its one error line.
fn serve_fails(extra_args: &[&str], vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let mut vars: BTreeMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.entry("STI_DATA_DIR".into()).or_insert(data_dir);
    // never the default 127.0.0.1:3000: the console a user runs may hold it
    let mut args = vec!["serve"];
    if !extra_args.contains(&"--addr") {
        args.extend(["--addr", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra_args);
    let output = cli(&args, &vars);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {stderr}");
    lines[0].to_owned()
}

#[test]
fn an_unknown_database_scheme_is_named() {
    let line = serve_fails(&[], &[("STI_DEV_URL", "mysql://root@localhost/app")]);
    assert_eq!(
        line,
        "error: STI_DEV_URL: database URL 'mysql://root@localhost/app' has an unknown scheme: \
         use sqlite:PATH or postgres://USER@HOST/DB"
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let line = serve_fails(&[], &[("STI_CONTROL_URL", "postgres://sti:hunter2@127.0.0.1:1/control")]);
    assert!(
        line.starts_with(
            "error: control database: cannot connect to postgres://sti:***@127.0.0.1:1/control: "
        ),
        "{line}"
    );
    assert!(!line.contains("hunter2"));
}

#[test]
fn an_unwritable_data_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let data_dir = file.join("data").display().to_string();
    let line = serve_fails(&[], &[("STI_DATA_DIR", data_dir.as_str())]);
    assert_eq!(line, format!("error: data folder {data_dir} cannot be used: Not a directory (os error 20)"));
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = serve_fails(&["--addr", addr.as_str()], &[]);
    assert_eq!(line, format!("error: cannot listen on {addr}: Address already in use (os error 98)"));
}

#[test]
fn a_broken_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sti.toml");
    std::fs::write(&path, "control = 42\n").unwrap();
    let path = path.display().to_string();
    let line = serve_fails(&[], &[("STI_CONFIG", path.as_str())]);
    assert!(line.starts_with(&format!("error: config file {path} is not valid: ")), "{line}");
}

#[test]
fn two_environments_naming_one_target_database_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let shared = format!("sqlite:{}/shared.db", dir.path().display());
    let respelled = format!("sqlite://{}/./shared.db", dir.path().display());
    let vars: BTreeMap<String, String> = [
        ("STI_DATA_DIR", data_dir.as_str()),
        ("STI_DEV_URL", shared.as_str()),
        ("STI_STAGING_URL", respelled.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let output = cli(&["migrate"], &vars);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: dev and staging name the same target database (SQLite · "), "{stderr}");
    assert!(!dir.path().join("shared.db").exists(), "nothing was touched");
}
