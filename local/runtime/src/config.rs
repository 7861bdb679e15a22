//! One typed configuration from local/ports.env's variables and flags,
//! validated before the emulator starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub function_name: String,
    pub region: String,
    pub account_id: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// The function's `bootstrap` executable; without it the emulator only
    /// queues invocations for an externally started runtime.
    pub bootstrap: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub event_attempts: u32,
    pub retry_delay: Duration,
}

impl Config {
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }

    pub fn load(args: impl IntoIterator<Item = String>) -> Result<Self, Error> {
        Self::from_sources(args, |k| std::env::var(k).ok())
    }

    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let var = |k: &str, d: &str| {
            env(k)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        let mut addr = var("PIXPORT_RUNTIME_API_ADDR", "127.0.0.1:9002");
        let mut bootstrap = env("PIXPORT_BOOTSTRAP").filter(|v| !v.is_empty());
        let mut state_dir = var("PIXPORT_LAMBDA_STATE", ".state/lambda");
        let mut function_name = var("PIXPORT_FUNCTION_NAME", "pixport-resizer");
        let mut timeout = var("PIXPORT_LAMBDA_TIMEOUT", "60");
        let memory = var("PIXPORT_LAMBDA_MEMORY", "1024");
        let retry_ms = var("PIXPORT_LAMBDA_RETRY_DELAY_MS", "1000");

        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| Error::Config(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--addr" => addr = value()?,
                "--bootstrap" => bootstrap = Some(value()?),
                "--state" => state_dir = value()?,
                "--function" => function_name = value()?,
                "--timeout" => timeout = value()?,
                other => {
                    return Err(Error::Config(format!(
                        "unknown argument {other:?}; usage: pixport-local-runtime [--addr A] [--bootstrap PATH] [--state DIR] [--function NAME] [--timeout SECS]"
                    )));
                }
            }
        }
        let num = |name: &str, v: &str| -> Result<u64, Error> {
            v.parse()
                .map_err(|_| Error::Config(format!("{name} must be a number, got {v:?}")))
        };
        let timeout = num("timeout", &timeout)?;
        if !(1..=900).contains(&timeout) {
            return Err(Error::Config(
                "timeout must be 1..=900 seconds, as in Lambda".into(),
            ));
        }
        let memory_mb = u32::try_from(num("memory", &memory)?).unwrap_or(u32::MAX);
        if !(128..=10240).contains(&memory_mb) {
            return Err(Error::Config(
                "memory must be 128..=10240 MB, as in Lambda".into(),
            ));
        }
        if function_name.is_empty()
            || !function_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Config(format!(
                "invalid function name {function_name:?}"
            )));
        }
        let bootstrap = match bootstrap {
            Some(p) => {
                let p = PathBuf::from(p);
                if !p.is_file() {
                    return Err(Error::Config(format!(
                        "bootstrap {} is not a file",
                        p.display()
                    )));
                }
                Some(p)
            }
            None => None,
        };
        Ok(Self {
            addr: addr
                .parse()
                .map_err(|e| Error::Config(format!("address {addr:?}: {e}")))?,
            function_name,
            region: var("PIXPORT_REGION", "us-east-1"),
            account_id: var("PIXPORT_ACCOUNT_ID", "000000000000"),
            timeout: Duration::from_secs(timeout),
            memory_mb,
            bootstrap,
            state_dir: PathBuf::from(state_dir),
            event_attempts: 3,
            retry_delay: Duration::from_millis(num("retry delay", &retry_ms)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_sources(Vec::<String>::new(), |_| None).expect("valid");
        assert_eq!(
            c.function_arn(),
            "arn:aws:lambda:us-east-1:000000000000:function:pixport-resizer"
        );
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert!(c.bootstrap.is_none());
    }

    #[test]
    fn refuses_bad_values() {
        assert!(Config::from_sources(["--timeout".into(), "0".into()], |_| None).is_err());
        assert!(
            Config::from_sources(
                ["--bootstrap".into(), "/nonexistent/bootstrap".into()],
                |_| None
            )
            .is_err()
        );
        assert!(Config::from_sources(["--function".into(), "a b".into()], |_| None).is_err());
        assert!(Config::from_sources(["--what".into()], |_| None).is_err());
    }
}
