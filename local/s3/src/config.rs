//! One typed configuration, read from local/ports.env's variables (the
//! environment over the built-in file, `pixport-local-env`) and optional
//! flags, validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Folder holding one sub-folder per bucket.
    pub root: PathBuf,
    pub buckets: Vec<String>,
    pub region: String,
    /// The identities, their keys and policies (local/iam.py writes it from
    /// deploy/template.yaml); every request is authorized against it.
    pub iam_policies: PathBuf,
    pub notifications: PathBuf,
    /// Base URL of the Lambda Invoke API that events go to.
    pub lambda_endpoint: String,
    pub owner_id: String,
    pub delivery_attempts: u32,
}

const USAGE: &str = "pixport-local-s3 [--addr HOST:PORT] [--root DIR] [--notifications FILE] [--lambda-endpoint URL]
environment: PIXPORT_S3_ADDR PIXPORT_S3_ROOT PIXPORT_BUCKET PIXPORT_REGION PIXPORT_IAM_POLICIES
             PIXPORT_S3_NOTIFICATIONS PIXPORT_LAMBDA_ENDPOINT PIXPORT_RUNTIME_API_ADDR";

impl Config {
    pub fn load(args: impl IntoIterator<Item = String>) -> Result<Self, Error> {
        Self::from_sources(args, pixport_local_env::process_env()?)
    }

    /// `env` answers every variable, local/ports.env's included: `load`
    /// hands it the process environment over the file.
    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let var = |k: &str, default: &str| {
            env(k)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let need = |k: &str| {
            env(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{k} is not set")))
        };

        let mut addr = need("PIXPORT_S3_ADDR")?;
        let mut root = var("PIXPORT_S3_ROOT", ".state/s3");
        let mut notifications = var("PIXPORT_S3_NOTIFICATIONS", "local/s3/notifications.json");
        let mut lambda_endpoint = match env("PIXPORT_LAMBDA_ENDPOINT").filter(|v| !v.is_empty()) {
            Some(url) => url,
            None => format!("http://{}", need("PIXPORT_RUNTIME_API_ADDR")?),
        };

        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--addr" => &mut addr,
                "--root" => &mut root,
                "--notifications" => &mut notifications,
                "--lambda-endpoint" => &mut lambda_endpoint,
                "-h" | "--help" => return Err(Error::Config(USAGE.to_owned())),
                other => {
                    return Err(Error::Config(format!(
                        "unknown argument {other:?}\n{USAGE}"
                    )));
                }
            };
            *slot = args
                .next()
                .ok_or_else(|| Error::Config(format!("{flag} needs a value")))?;
        }

        let addr = addr
            .parse()
            .map_err(|e| Error::Config(format!("address {addr:?}: {e}")))?;
        if !lambda_endpoint.starts_with("http://") {
            return Err(Error::Config(format!(
                "lambda endpoint must be http://…, got {lambda_endpoint:?}"
            )));
        }
        let buckets: Vec<String> = need("PIXPORT_BUCKET")?
            .split(',')
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        for b in &buckets {
            let ok = (3..=63).contains(&b.len())
                && b.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
                });
            if !ok {
                return Err(Error::Config(format!("invalid bucket name {b:?}")));
            }
        }
        Ok(Self {
            addr,
            root: PathBuf::from(root),
            buckets,
            region: need("PIXPORT_REGION")?,
            iam_policies: PathBuf::from(need("PIXPORT_IAM_POLICIES")?),
            notifications: PathBuf::from(notifications),
            lambda_endpoint,
            owner_id: var("PIXPORT_S3_OWNER_ID", "A3NL1KOZZKPIXPORTLOCAL"),
            delivery_attempts: 6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixport_local_env::PortsEnv;

    fn iam_only(k: &str) -> Option<String> {
        (k == "PIXPORT_IAM_POLICIES").then(|| "/tmp/iam.json".into())
    }

    fn with_file(
        args: &[&str],
        env: impl Fn(&str) -> Option<String> + 'static,
    ) -> Result<Config, Error> {
        let file = PortsEnv::committed().expect("local/ports.env parses");
        Config::from_sources(args.iter().map(|a| (*a).to_owned()), file.under(env))
    }

    #[test]
    fn ports_env_defaults_and_flags() {
        let file = PortsEnv::committed().expect("local/ports.env parses");
        let c = with_file(&["--root", "/tmp/x"], iam_only).expect("valid");
        assert_eq!(c.root, PathBuf::from("/tmp/x"));
        assert_eq!(
            c.addr.to_string(),
            file.get("PIXPORT_S3_ADDR").unwrap_or_default()
        );
        assert_eq!(
            c.lambda_endpoint,
            format!(
                "http://{}",
                file.get("PIXPORT_RUNTIME_API_ADDR").unwrap_or_default()
            )
        );
        assert_eq!(
            c.buckets,
            vec![file.get("PIXPORT_BUCKET").unwrap_or_default().to_owned()]
        );
        assert_eq!(c.region, file.get("PIXPORT_REGION").unwrap_or_default());
    }

    #[test]
    fn the_environment_wins_over_ports_env() {
        let env = |k: &str| match k {
            "PIXPORT_S3_ADDR" => Some("127.0.0.1:9200".to_owned()),
            "PIXPORT_RUNTIME_API_ADDR" => Some("127.0.0.1:9202".to_owned()),
            _ => iam_only(k),
        };
        let c = with_file(&[], env).expect("valid");
        assert_eq!(c.addr.to_string(), "127.0.0.1:9200");
        assert_eq!(c.lambda_endpoint, "http://127.0.0.1:9202");
    }

    #[test]
    fn missing_keys_and_bad_values_refused() {
        let err = Config::from_sources(Vec::<String>::new(), iam_only).expect_err("no address");
        assert!(err.to_string().contains("PIXPORT_S3_ADDR"), "{err}");
        let err = with_file(&[], |_| None).expect_err("no IAM file");
        assert!(err.to_string().contains("PIXPORT_IAM_POLICIES"), "{err}");
        assert!(with_file(&["--addr", "nope"], iam_only).is_err());
        assert!(with_file(&["--bogus"], iam_only).is_err());
        let bucket = |k: &str| {
            (k == "PIXPORT_BUCKET")
                .then(|| "No_Such".to_owned())
                .or_else(|| iam_only(k))
        };
        assert!(with_file(&[], bucket).is_err());
    }
}
