//! [`ConfigError`]: one line that names the setting or flag and says how to fix it. The
//! second half of every message, the hint, comes from the settings table
//! ([`super::rules`]).

use std::path::PathBuf;

use super::rules;

/// A configuration problem. Every message is one line that names the setting and says
/// how to fix it; the binary prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}; check the path given to --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}; fix the syntax (config/default.toml shows every setting)")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A key that is no setting (misspelt, or in the wrong section).
    #[error("{key}: unknown key; the keys allowed here are {expected} (config/default.toml lists every setting)")]
    UnknownKey {
        /// Full path of the unknown key, like `tcp.msss`.
        key: String,
        /// The keys allowed in that section.
        expected: String,
    },
    /// A setting in the file (or the default) has a wrong type or value.
    #[error("{field}: {problem}; {hint}")]
    Invalid {
        /// Path of the setting, like `tcp.time_wait_secs`.
        field: String,
        /// What is wrong with the value.
        problem: String,
        /// Allowed range or form, with an example ([`rules::hint`]).
        hint: String,
    },
    /// A command-line flag has a wrong value.
    #[error("{flag}: {problem}; {hint}")]
    Flag {
        /// The flag, like `--listen`.
        flag: String,
        /// What is wrong with the value.
        problem: String,
        /// Allowed form, with an example ([`rules::flag_hint`]).
        hint: String,
    },
}

impl ConfigError {
    /// The setting path or flag this error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } => Some(key),
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Flag { flag, .. } => Some(flag),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    /// A bad value of setting `field`, with the table's hint.
    pub fn invalid(field: &str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            problem: problem.into(),
            hint: rules::hint(field),
        }
    }

    /// A bad value of `flag`, with the table's hint.
    pub fn flag(flag: &str, problem: impl Into<String>) -> Self {
        ConfigError::Flag {
            flag: flag.to_owned(),
            problem: problem.into(),
            hint: rules::flag_hint(flag),
        }
    }

    /// Turn a serde error from deserializing a `toml::Table` into a path-naming error.
    /// toml records the key path of such errors and prints it as a last line
    /// "in `a.b`" (only when, as here, no source text is attached).
    pub(super) fn from_serde(err: &toml::de::Error) -> Self {
        let text = err.to_string();
        let text = text.trim_end();
        let (message, path) = match text.rsplit_once("\nin `") {
            Some((m, p)) => (m.trim(), p.trim_end_matches('`').to_owned()),
            None => (text, String::new()),
        };
        let join = |base: &str, key: &str| {
            if base.is_empty() {
                key.to_owned()
            } else {
                format!("{base}.{key}")
            }
        };
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((key, tail)) = rest.split_once('`') {
                let expected = tail
                    .trim_start_matches(',')
                    .trim()
                    .trim_start_matches("expected one of ")
                    .trim_start_matches("expected ")
                    .replace('`', "");
                return ConfigError::UnknownKey {
                    key: join(&path, key),
                    expected,
                };
            }
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some((key, _)) = rest.split_once('`') {
                let field = join(&path, key);
                return ConfigError::invalid(&field, "is required but missing");
            }
        }
        let field = if path.is_empty() {
            "(top level)"
        } else {
            &path
        };
        ConfigError::invalid(field, message.replace('\n', " "))
    }
}
