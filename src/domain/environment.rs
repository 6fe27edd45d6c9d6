//! The environments a rollout goes through, in order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One deployment environment; the rollout visits them in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

/// A name that is not one of the known environments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment '{0}': expected one of dev, staging, prod")]
pub struct UnknownEnvironment(pub String);

impl Environment {
    /// Every environment, in rollout order.
    pub const ALL: [Environment; 3] = [Environment::Dev, Environment::Staging, Environment::Prod];

    /// Parses the short name used in URLs, the CLI and configuration (`dev`, `staging`, `prod`).
    pub fn parse(name: &str) -> Result<Self, UnknownEnvironment> {
        match name.trim().to_ascii_lowercase().as_str() {
            "dev" => Ok(Self::Dev),
            "staging" => Ok(Self::Staging),
            "prod" => Ok(Self::Prod),
            _ => Err(UnknownEnvironment(name.to_owned())),
        }
    }

    /// The short, stable name (`dev`, `staging`, `prod`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }

    /// The name people read on the console.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dev => "Development",
            Self::Staging => "Staging",
            Self::Prod => "Production",
        }
    }

    /// How many legacy rows the demo data gives this environment on first start.
    pub fn demo_rows(self) -> i64 {
        match self {
            Self::Dev => 10_000,
            Self::Staging => 100_000,
            Self::Prod => 1_000_000,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Environment {
    type Err = UnknownEnvironment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One value for each environment. Total: reading an environment's value cannot fail, so
/// code that holds one (the targets, their policies, the contacts) has no "not configured"
/// branch to get wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerEnv<T>([T; 3]);

impl<T> PerEnv<T> {
    /// The value of each environment, from `value`.
    pub fn from_fn(mut value: impl FnMut(Environment) -> T) -> Self {
        Self(Environment::ALL.map(&mut value))
    }

    pub fn get(&self, env: Environment) -> &T {
        &self.0[env.index()]
    }

    pub fn get_mut(&mut self, env: Environment) -> &mut T {
        &mut self.0[env.index()]
    }

    /// Each environment with its value, in rollout order.
    pub fn iter(&self) -> impl Iterator<Item = (Environment, &T)> {
        Environment::ALL.into_iter().zip(self.0.iter())
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.0.iter_mut()
    }

    /// Another value for each environment, from this one's.
    pub fn map<U>(&self, mut value: impl FnMut(Environment, &T) -> U) -> PerEnv<U> {
        PerEnv::from_fn(|env| value(env, self.get(env)))
    }
}

impl<T> std::ops::Index<Environment> for PerEnv<T> {
    type Output = T;

    fn index(&self, env: Environment) -> &T {
        self.get(env)
    }
}

impl Environment {
    /// The place in [`Environment::ALL`].
    fn index(self) -> usize {
        match self {
            Self::Dev => 0,
            Self::Staging => 1,
            Self::Prod => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_environment_has_its_own_value_in_rollout_order() {
        let mut names = PerEnv::from_fn(|env| env.as_str().to_owned());
        names.get_mut(Environment::Prod).push('!');
        assert_eq!(names[Environment::Dev], "dev");
        assert_eq!(names.get(Environment::Prod), "prod!");
        let order: Vec<_> =
            names.map(|env, name| format!("{env}={name}")).iter().map(|(_, s)| s.clone()).collect();
        assert_eq!(order, ["dev=dev", "staging=staging", "prod=prod!"]);
    }

    #[test]
    fn every_environment_parses_back_from_its_own_name() {
        for env in Environment::ALL {
            assert_eq!(Environment::parse(env.as_str()), Ok(env));
        }
    }

    #[test]
    fn names_are_parsed_case_insensitively_and_trimmed() {
        assert_eq!(Environment::parse(" Prod "), Ok(Environment::Prod));
    }

    #[test]
    fn an_unknown_name_is_rejected_with_the_known_ones_listed() {
        let err = Environment::parse("qa").unwrap_err();
        assert_eq!(err.to_string(), "unknown environment 'qa': expected one of dev, staging, prod");
    }

    #[test]
    fn environments_are_ordered_as_the_rollout_visits_them() {
        let mut shuffled = vec![Environment::Prod, Environment::Dev, Environment::Staging];
        shuffled.sort();
        assert_eq!(shuffled, Environment::ALL.to_vec());
    }
}
