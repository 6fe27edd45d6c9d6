//! Tests of `config`.

use super::*;
use crate::db::Dialect;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("sti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn without_configuration_every_database_is_a_sqlite_file_with_demo_data() {
    let config = Config::load_with(Path::new("data"), None, &vars(&[])).unwrap();
    assert_eq!(config.control.describe(), "SQLite · data/control.db");
    assert_eq!(config.targets[Environment::Prod].url.describe(), "SQLite · data/prod.db");
    assert_eq!(config.targets[Environment::Prod].demo_rows, Some(1_000_000));
    assert!(config.uses_data_dir());
}

#[test]
fn the_file_names_databases_and_environment_variables_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        r#"
        control = "postgres://sti@db/control"
        [environments]
        dev = "postgres://sti@db/dev"
        prod = "postgres://sti@db/prod"
        [demo_rows]
        dev = 500
        "#,
    );
    let env = vars(&[("STI_PROD_URL", "postgres://sti@other/prod")]);
    let config = Config::load_with(Path::new("data"), Some(&path), &env).unwrap();
    assert_eq!(config.control.dialect(), Dialect::Postgres);
    assert_eq!(config.targets[Environment::Dev].demo_rows, Some(500));
    assert_eq!(config.targets[Environment::Staging].url.dialect(), Dialect::Sqlite);
    assert_eq!(config.targets[Environment::Prod].url.describe(), "PostgreSQL · other/prod");
    assert_eq!(config.targets[Environment::Prod].demo_rows, None);
}

#[test]
fn contacts_come_from_the_file_in_escalation_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        r#"
        [[contacts.prod]]
        name = "Ana Lima"
        role = "on-call engineer"
        reach = "+351 900 000 001"
        [[contacts.prod]]
        name = "Bo Berg"
        role = "database owner"
        reach = "bo@example.org"
        "#,
    );
    let config = Config::load_with(dir.path(), Some(&file), &vars(&[])).unwrap();
    let prod = &config.contacts[Environment::Prod];
    assert_eq!(prod.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Ana Lima", "Bo Berg"]);
    assert!(config.contacts[Environment::Dev].is_empty());
    let bad = write(&dir, "[[contacts.prod]]\nname = \"\"\nrole = \"x\"\nreach = \"y\"\n");
    let error = Config::load_with(dir.path(), Some(&bad), &vars(&[])).unwrap_err().to_string();
    assert!(error.contains("needs a name and a way to reach them"), "{error}");
}

#[test]
fn the_d_day_comes_from_the_file_then_the_environment_and_must_be_a_real_date() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "d_day = \"2026-12-10\"\n");
    let config = Config::load_with(dir.path(), Some(&file), &vars(&[])).unwrap();
    assert_eq!(config.d_day.map(|d| d.to_string()).as_deref(), Some("2026-12-10"));
    let config = Config::load_with(dir.path(), Some(&file), &vars(&[("STI_D_DAY", "2027-01-04")])).unwrap();
    assert_eq!(config.d_day.map(|d| d.to_string()).as_deref(), Some("2027-01-04"));
    assert_eq!(Config::load_with(dir.path(), None, &vars(&[])).unwrap().d_day, None);

    let bad = write(&dir, "d_day = \"2026-02-30\"\n");
    let error = Config::load_with(dir.path(), Some(&bad), &vars(&[])).unwrap_err().to_string();
    assert!(error.contains("d_day") && error.contains("YYYY-MM-DD"), "{error}");
    let error =
        Config::load_with(dir.path(), None, &vars(&[("STI_D_DAY", "next friday")])).unwrap_err().to_string();
    assert!(error.starts_with("STI_D_DAY: "), "{error}");
}

#[test]
fn an_unknown_scheme_names_where_it_came_from() {
    let err =
        Config::load_with(Path::new("data"), None, &vars(&[("STI_DEV_URL", "mysql://x/y")])).unwrap_err();
    assert!(err.to_string().starts_with("STI_DEV_URL: database URL 'mysql://x/y' has an unknown scheme"));
}

#[test]
fn a_misspelt_key_or_environment_in_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(&dir, "contrl = \"sqlite:x.db\"\n");
    assert!(matches!(
        Config::load_with(Path::new("d"), Some(&typo), &vars(&[])),
        Err(ConfigError::Parse { .. })
    ));
    let qa = write(&dir, "[environments]\nqa = \"sqlite:qa.db\"\n");
    let err = Config::load_with(Path::new("d"), Some(&qa), &vars(&[])).unwrap_err();
    assert!(err.to_string().contains("unknown environment 'qa'"));
}

#[test]
fn a_missing_file_is_one_clear_sentence() {
    let err =
        Config::load_with(Path::new("d"), Some(Path::new("/nonexistent/sti.toml")), &vars(&[])).unwrap_err();
    assert!(err.to_string().starts_with("cannot read config file /nonexistent/sti.toml"));
}
