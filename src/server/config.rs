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
    /// Who hears of what happens in each environment (`[[webhooks.prod]]` in the file).
    pub webhooks: PerEnv<Vec<crate::server::webhooks::Webhook>>,
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
    #[serde(default)]
    webhooks: BTreeMap<String, Vec<crate::server::webhooks::WebhookFile>>,
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
            webhooks: PerEnv::default(),
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
            config.apply_file(path, vars)?;
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

    fn apply_file(&mut self, path: &Path, vars: &BTreeMap<String, String>) -> Result<(), ConfigError> {
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
        for (name, hooks) in file.webhooks {
            let env = environment(&name)?;
            let invalid = |message: String| ConfigError::Parse {
                path: path.to_owned(),
                message: format!("webhooks.{name}: {message}"),
            };
            let hooks =
                hooks.into_iter().map(|h| h.resolve(vars)).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
            for (i, hook) in hooks.iter().enumerate() {
                if hooks[..i].iter().any(|h| h.name == hook.name) {
                    return Err(invalid(format!(
                        "two webhooks are called {}: give each its own name",
                        hook.name
                    )));
                }
            }
            *self.webhooks.get_mut(env) = hooks;
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
mod tests;
