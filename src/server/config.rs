//! Configuration: which databases the console uses, from defaults, a TOML file and the environment.
//!
//! Precedence, lowest first: defaults (SQLite files in the data folder) → the config file →
//! environment variables (`STI_CONTROL_URL`, `STI_DEV_URL`, `STI_STAGING_URL`, `STI_PROD_URL`).

use crate::db::url::UrlError;
use crate::db::DatabaseUrl;
use crate::domain::calendar::Day;
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::live::Contact;
use crate::domain::policy::Policy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the console keeps its state and which databases each environment uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Folder for the default SQLite files.
    pub data_dir: PathBuf,
    /// The console's own database.
    pub control: DatabaseUrl,
    /// Each environment's target database.
    pub targets: PerEnv<Target>,
    /// A bearer token that may read `/metrics` without signing in (`STI_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// Emergency contacts per environment, in escalation order (`[[contacts.prod]]` in the file).
    pub contacts: PerEnv<Vec<Contact>>,
    /// The rollout's D-day (`d_day = "2026-12-10"` in the file, or `STI_D_DAY`); one set in the
    /// console or with `sti-rollout timeline --set` takes precedence.
    pub d_day: Option<Day>,
    /// How the console meets the web (`[security]` in the file).
    pub security: Security,
}

/// `[security]`: what the console trusts and how long sessions last.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    /// Reverse proxies (addresses, or networks as `10.0.0.0/8`) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed. From anyone else those headers are ignored: the sign-in
    /// throttle counts the peer's own address.
    pub trusted_proxies: Vec<String>,
    /// A session ends after this many minutes without a request (and after 12 hours in any case).
    pub idle_timeout_minutes: u32,
    /// The session cookie without `Secure` and without the `__Host-` prefix, for a console
    /// reached over plain http on another machine than the browser's. Browsers keep `Secure`
    /// cookies from `http://localhost` and `http://127.0.0.1`, so local use does not need it.
    pub plain_http: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self { trusted_proxies: Vec::new(), idle_timeout_minutes: 30, plain_http: false }
    }
}

impl Security {
    fn validate(&self) -> Result<(), String> {
        for proxy in &self.trusted_proxies {
            crate::server::client_address::Network::parse(proxy)
                .map_err(|e| format!("security.trusted_proxies: {e}"))?;
        }
        if !(1..=24 * 60).contains(&self.idle_timeout_minutes) {
            return Err(format!(
                "security.idle_timeout_minutes must be between 1 and 1440, not {}",
                self.idle_timeout_minutes
            ));
        }
        Ok(())
    }
}

/// One environment's target database.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: DatabaseUrl,
    /// Legacy rows of demo data to generate the first time the console starts; `None` for a
    /// database someone configured, which never gets demo data unless the file asks for it.
    pub demo_rows: Option<i64>,
    /// How runs here meet faults and stress (`[policy.<env>]` in the file; defaults otherwise).
    pub policy: Policy,
}

impl Target {
    /// A demo target is the console's own (the embedded default, or one the config file gives
    /// demo rows): created and migrated at start. Any other is the application's database, whose
    /// schema is only checked; `sti-rollout migrate --env E` changes it.
    pub fn is_demo(&self) -> bool {
        self.demo_rows.is_some()
    }
}

/// A configuration we cannot use, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: {source}")]
    Url { origin: String, source: UrlError },
    #[error("{name}: {message}")]
    Variable { name: &'static str, message: String },
    #[error("config file {path} names an unknown environment '{name}': expected dev, staging or prod")]
    UnknownEnvironment { path: PathBuf, name: String },
    #[error("config file {path}: demo_rows for {env} must be between 1 and 50000000, not {rows}")]
    DemoRows { path: PathBuf, env: Environment, rows: i64 },
    #[error(
        "{first} and {second} name the same target database ({database}): each environment needs its own, \
         or a rollback in one deletes the other's rows"
    )]
    SharedTarget { first: Environment, second: Environment, database: String },
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    control: Option<String>,
    #[serde(default)]
    environments: BTreeMap<String, String>,
    #[serde(default)]
    demo_rows: BTreeMap<String, i64>,
    #[serde(default)]
    contacts: BTreeMap<String, Vec<ContactFile>>,
    d_day: Option<String>,
    #[serde(default)]
    policy: BTreeMap<String, Policy>,
    security: Option<Security>,
}

/// A contact as the file spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactFile {
    name: String,
    role: String,
    reach: String,
}

impl Config {
    /// The embedded default: SQLite files in `data_dir`, demo data in every environment.
    pub fn embedded(data_dir: &Path) -> Self {
        let targets = PerEnv::from_fn(|env| {
            let url = DatabaseUrl::sqlite_file(&data_dir.join(format!("{env}.db")));
            Target { url, demo_rows: Some(env.demo_rows()), policy: Policy::default() }
        });
        Self {
            data_dir: data_dir.to_owned(),
            control: DatabaseUrl::sqlite_file(&data_dir.join("control.db")),
            targets,
            metrics_token: None,
            contacts: PerEnv::default(),
            d_day: None,
            security: Security::default(),
        }
    }

    /// Defaults, then the optional file, then the process environment.
    pub fn load(data_dir: &Path, file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with(data_dir, file, &vars)
    }

    /// As [`Config::load`], with the environment variables given (tests pass their own).
    pub fn load_with(
        data_dir: &Path,
        file: Option<&Path>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::embedded(data_dir);
        if let Some(path) = file {
            config.apply_file(path)?;
        }
        config.metrics_token = vars.get("STI_METRICS_TOKEN").filter(|t| !t.is_empty()).cloned();
        if let Some(text) = vars.get("STI_D_DAY").filter(|t| !t.is_empty()) {
            config.d_day = Some(
                Day::parse(text).map_err(|message| ConfigError::Variable { name: "STI_D_DAY", message })?,
            );
        }
        if let Some(url) = vars.get("STI_CONTROL_URL") {
            config.control = parse_url(url, "STI_CONTROL_URL")?;
        }
        for env in Environment::ALL {
            let var = format!("STI_{}_URL", env.as_str().to_ascii_uppercase());
            if let Some(url) = vars.get(&var) {
                let target = config.targets.get_mut(env);
                target.url = parse_url(url, &var)?;
                target.demo_rows = None;
            }
        }
        config.refuse_shared_targets()?;
        Ok(config)
    }

    /// Two environments never share a target database (by what their URLs name).
    fn refuse_shared_targets(&self) -> Result<(), ConfigError> {
        let targets: Vec<_> = self.targets.iter().collect();
        for (i, (first, a)) in targets.iter().enumerate() {
            for (second, b) in &targets[i + 1..] {
                if a.url.identity() == b.url.identity() {
                    return Err(ConfigError::SharedTarget {
                        first: *first,
                        second: *second,
                        database: a.url.describe(),
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let file: File = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.message().to_owned() })?;
        let origin = |what: &str| format!("config file {}: {what}", path.display());
        if let Some(url) = file.control {
            self.control = parse_url(&url, &origin("control"))?;
        }
        let environment = |name: &str| {
            Environment::parse(name)
                .map_err(|_| ConfigError::UnknownEnvironment { path: path.to_owned(), name: name.to_owned() })
        };
        for (name, url) in &file.environments {
            let env = environment(name)?;
            let url = parse_url(url, &origin(&format!("environments.{name}")))?;
            let target = self.targets.get_mut(env);
            target.url = url;
            target.demo_rows = None;
        }
        if let Some(text) = &file.d_day {
            self.d_day = Some(Day::parse(text).map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message: format!("d_day: {message}"),
            })?);
        }
        if let Some(security) = file.security {
            security.validate().map_err(|message| ConfigError::Parse { path: path.to_owned(), message })?;
            self.security = security;
        }
        for (name, contacts) in file.contacts {
            let env = environment(&name)?;
            let contacts = contacts
                .into_iter()
                .map(|c| Contact {
                    name: c.name.trim().to_owned(),
                    role: c.role.trim().to_owned(),
                    reach: c.reach.trim().to_owned(),
                })
                .collect::<Vec<_>>();
            if contacts.iter().any(|c| c.name.is_empty() || c.reach.is_empty()) {
                return Err(ConfigError::Parse {
                    path: path.to_owned(),
                    message: format!("every contact of {env} needs a name and a way to reach them"),
                });
            }
            *self.contacts.get_mut(env) = contacts;
        }
        for (name, policy) in file.policy {
            let env = environment(&name)?;
            policy.validate().map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message: format!("policy.{name}.{message}"),
            })?;
            self.targets.get_mut(env).policy = policy;
        }
        for (name, rows) in &file.demo_rows {
            let env = environment(name)?;
            if !(1..=crate::db::seed::MAX_ROWS).contains(rows) {
                return Err(ConfigError::DemoRows { path: path.to_owned(), env, rows: *rows });
            }
            self.targets.get_mut(env).demo_rows = Some(*rows);
        }
        Ok(())
    }

    /// Whether any database is a SQLite file inside the data folder, which must then exist.
    pub fn uses_data_dir(&self) -> bool {
        let default = Self::embedded(&self.data_dir);
        self.control == default.control
            || self.targets.iter().any(|(env, t)| t.url == default.targets[env].url)
    }
}

fn parse_url(raw: &str, origin: &str) -> Result<DatabaseUrl, ConfigError> {
    DatabaseUrl::parse(raw).map_err(|source| ConfigError::Url { origin: origin.to_owned(), source })
}

#[cfg(test)]
mod tests {
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
        let config =
            Config::load_with(dir.path(), Some(&file), &vars(&[("STI_D_DAY", "2027-01-04")])).unwrap();
        assert_eq!(config.d_day.map(|d| d.to_string()).as_deref(), Some("2027-01-04"));
        assert_eq!(Config::load_with(dir.path(), None, &vars(&[])).unwrap().d_day, None);

        let bad = write(&dir, "d_day = \"2026-02-30\"\n");
        let error = Config::load_with(dir.path(), Some(&bad), &vars(&[])).unwrap_err().to_string();
        assert!(error.contains("d_day") && error.contains("YYYY-MM-DD"), "{error}");
        let error = Config::load_with(dir.path(), None, &vars(&[("STI_D_DAY", "next friday")]))
            .unwrap_err()
            .to_string();
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
        let err = Config::load_with(Path::new("d"), Some(Path::new("/nonexistent/sti.toml")), &vars(&[]))
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot read config file /nonexistent/sti.toml"));
    }
}
