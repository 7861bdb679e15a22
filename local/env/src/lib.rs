//! `local/ports.env` for the local stand-ins (`local/s3`, `local/dataapi`,
//! `local/runtime`): the one Rust reader of the file that holds the local
//! stack's endpoints and credentials.
//!
//! The file is built into the binaries, so a stand-in started by hand gets
//! the same values as one started by `local/stack`, and no address or key is
//! written down twice. A variable set to a non-empty value in the process
//! environment wins over the file, as in `scripts/env.sh` and
//! `local/stack.py`, so a second checkout runs its own stack on other ports.
//!
//! The format is the subset of shell that all three readers agree on: one
//! `KEY=value` a line, taken literally (no quotes, no expansion); blank lines
//! and lines starting with `#` are skipped.

use thiserror::Error;

/// `local/ports.env` as it was when this binary was built.
pub const PORTS_ENV: &str = include_str!("../../ports.env");

/// A line of the file that is not `KEY=value`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("local/ports.env line {line}: {reason}")]
pub struct Error {
    pub line: usize,
    pub reason: &'static str,
}

/// The entries of one ports.env text, in file order.
#[derive(Debug, Clone)]
pub struct PortsEnv<'a> {
    entries: Vec<(&'a str, &'a str)>,
}

impl PortsEnv<'static> {
    /// The built-in `local/ports.env`.
    pub fn committed() -> Result<Self, Error> {
        Self::parse(PORTS_ENV)
    }
}

impl<'a> PortsEnv<'a> {
    /// Parses a ports.env text. Strict where the shell reader would go wrong
    /// silently: a line without `=`, an empty or non-identifier key, or a key
    /// given twice is an error.
    pub fn parse(text: &'a str) -> Result<Self, Error> {
        let mut entries: Vec<(&str, &str)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason| Error {
                line: i + 1,
                reason,
            };
            let (key, value) = line.split_once('=').ok_or(err("expected KEY=value"))?;
            let ident = key
                .bytes()
                .enumerate()
                .all(|(n, b)| b == b'_' || b.is_ascii_uppercase() || (n > 0 && b.is_ascii_digit()));
            if key.is_empty() || !ident {
                return Err(err(
                    "the key must be A-Z, 0-9 and _, not starting with a digit",
                ));
            }
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(err("the key is given twice"));
            }
            entries.push((key, value));
        }
        Ok(Self { entries })
    }

    /// The file's value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .find_map(|(k, v)| (*k == key).then_some(*v))
    }

    /// Every `(key, value)` in file order.
    pub fn entries(&self) -> &[(&'a str, &'a str)] {
        &self.entries
    }

    /// A lookup that answers from `env` when it holds a non-empty value and
    /// from this file otherwise: what the stand-ins' configs read.
    pub fn under<E>(&self, env: E) -> impl Fn(&str) -> Option<String> + '_
    where
        E: Fn(&str) -> Option<String>,
        E: 'a,
    {
        move |key| {
            env(key)
                .filter(|v| !v.is_empty())
                .or_else(|| self.get(key).map(str::to_owned))
        }
    }
}

/// The process environment over the built-in `local/ports.env`.
pub fn process_env() -> Result<impl Fn(&str) -> Option<String>, Error> {
    let file = PortsEnv::committed()?;
    Ok(move |key: &str| {
        std::env::var(key)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| file.get(key).map(str::to_owned))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_values_with_equals_signs() {
        let text = "# a comment\n\nA=1\n   # indented comment\n  B_2=x=y  \nEMPTY=\n";
        let f = PortsEnv::parse(text).expect("valid");
        assert_eq!(f.entries(), [("A", "1"), ("B_2", "x=y"), ("EMPTY", "")]);
        assert_eq!(f.get("B_2"), Some("x=y"));
        assert_eq!(f.get("a"), None, "keys are case-sensitive");
        assert_eq!(f.get("# a comment"), None);
    }

    #[test]
    fn refuses_what_the_shell_reader_would_misread() {
        let cases = [
            ("A=1\nnot a pair\n", 2),
            ("=1\n", 1),
            ("export A=1\n", 1),
            ("a=1\n", 1),
            ("1A=1\n", 1),
            ("A=1\n\nA=2\n", 3),
        ];
        for (text, line) in cases {
            let e = PortsEnv::parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    #[test]
    fn the_environment_wins_unless_empty() {
        let f = PortsEnv::parse("PIXPORT_S3_ADDR=127.0.0.1:9000\nPIXPORT_REGION=us-east-1\n")
            .expect("valid");
        let env = |k: &str| match k {
            "PIXPORT_S3_ADDR" => Some("127.0.0.1:9200".to_owned()),
            "PIXPORT_REGION" => Some(String::new()),
            "PIXPORT_ONLY_ENV" => Some("x".to_owned()),
            _ => None,
        };
        let get = f.under(env);
        assert_eq!(get("PIXPORT_S3_ADDR").as_deref(), Some("127.0.0.1:9200"));
        assert_eq!(get("PIXPORT_REGION").as_deref(), Some("us-east-1"));
        assert_eq!(get("PIXPORT_ONLY_ENV").as_deref(), Some("x"));
        assert_eq!(get("PIXPORT_NEITHER"), None);
    }

    #[test]
    fn the_committed_file_parses_with_the_stack_s_names() {
        let f = PortsEnv::committed().expect("local/ports.env parses");
        for key in [
            "PIXPORT_REGION",
            "PIXPORT_BUCKET",
            "PIXPORT_S3_ADDR",
            "PIXPORT_DATAAPI_ADDR",
            "PIXPORT_RUNTIME_API_ADDR",
            "PIXPORT_MARIADB_PORT",
            "PIXPORT_DB_NAME",
            "PIXPORT_DB_CLUSTER_ARN",
            "PIXPORT_DB_SECRET_ARN",
            "PIXPORT_FUNCTION_NAME",
            "PIXPORT_LAMBDA_ACCESS_KEY_ID",
            "PIXPORT_DB_RESIZER_SECRET_ARN",
        ] {
            assert!(f.get(key).is_some_and(|v| !v.is_empty()), "{key} missing");
        }
        for key in [
            "PIXPORT_S3_ADDR",
            "PIXPORT_DATAAPI_ADDR",
            "PIXPORT_RUNTIME_API_ADDR",
        ] {
            let addr = f.get(key).unwrap_or_default();
            assert!(
                addr.parse::<std::net::SocketAddr>().is_ok(),
                "{key}={addr} is not host:port"
            );
        }
    }

    #[test]
    fn process_env_reads_the_process() {
        // PATH is set in any test process and absent from the file.
        let get = process_env().expect("committed file parses");
        assert_eq!(
            get("PATH"),
            std::env::var("PATH").ok().filter(|v| !v.is_empty())
        );
        assert!(get("PIXPORT_FUNCTION_NAME").is_some());
    }
}
