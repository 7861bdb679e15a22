//! One typed configuration, read from local/ports.env's variables (exported by
//! local/stack) and optional flags, validated before anything starts.

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
        Self::from_sources(args, |k| std::env::var(k).ok())
    }

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

        let mut addr = var("PIXPORT_S3_ADDR", "127.0.0.1:9000");
        let mut root = var("PIXPORT_S3_ROOT", ".state/s3");
        let mut notifications = var("PIXPORT_S3_NOTIFICATIONS", "local/s3/notifications.json");
        let runtime = var("PIXPORT_RUNTIME_API_ADDR", "127.0.0.1:9002");
        let mut lambda_endpoint = var("PIXPORT_LAMBDA_ENDPOINT", &format!("http://{runtime}"));

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
        let buckets: Vec<String> = var("PIXPORT_BUCKET", "pixport-local")
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
            region: var("PIXPORT_REGION", "us-east-1"),
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

    fn env(k: &str) -> Option<String> {
        match k {
            "PIXPORT_IAM_POLICIES" => Some("/tmp/iam.json".into()),
            _ => None,
        }
    }

    #[test]
    fn defaults_and_flags() {
        let c =
            Config::from_sources(["--root".to_owned(), "/tmp/x".to_owned()], env).expect("valid");
        assert_eq!(c.root, PathBuf::from("/tmp/x"));
        assert_eq!(c.lambda_endpoint, "http://127.0.0.1:9002");
        assert_eq!(c.buckets, vec!["pixport-local".to_owned()]);
    }

    #[test]
    fn missing_keys_and_bad_values_refused() {
        assert!(Config::from_sources(Vec::<String>::new(), |_| None).is_err());
        assert!(Config::from_sources(["--addr".to_owned(), "nope".to_owned()], env).is_err());
        assert!(Config::from_sources(["--bogus".to_owned()], env).is_err());
    }
}
