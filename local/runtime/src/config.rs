//! One typed configuration from local/ports.env's variables (the environment
//! over the built-in file, `pixport-local-env`) and flags, validated before
//! the emulator starts.

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
    /// Waits before the retries of a failed `Event` invoke: Lambda's async
    /// schedule by default (1 and 2 minutes), seconds in tests.
    pub retry_delays: Vec<Duration>,
    /// Period of the EventBridge-style scheduled invocation (the template's
    /// redrive rule); `None` when off.
    pub schedule: Option<Duration>,
    /// What the bootstrap gets as the function's role: Lambda hands the
    /// execution role's credentials to the function as `AWS_*`, and the
    /// template sets its `PIXPORT_DB_SECRET_ARN` to its own user's secret.
    /// Locally those are the Lambda's key pair and the resizer's secret from
    /// local/ports.env, so the bootstrap gets exactly the template's
    /// permissions, whatever `AWS_*` the shell that started the stack holds.
    pub role_env: Vec<(&'static str, String)>,
}

/// The bootstrap's variable -> the local/ports.env variable it is set from.
const ROLE_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "PIXPORT_LAMBDA_ACCESS_KEY_ID"),
    ("AWS_SECRET_ACCESS_KEY", "PIXPORT_LAMBDA_SECRET_ACCESS_KEY"),
    ("PIXPORT_DB_SECRET_ARN", "PIXPORT_DB_RESIZER_SECRET_ARN"),
];

/// Lambda's async retries: two, about one and two minutes after a failure.
const AWS_RETRY_DELAYS_MS: &str = "60000,120000";
/// deploy/template.yaml's redrive rule: `rate(5 minutes)`.
const AWS_SCHEDULE_MS: &str = "300000";

impl Config {
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }

    pub fn load(args: impl IntoIterator<Item = String>) -> Result<Self, Error> {
        Self::from_sources(args, pixport_local_env::process_env()?)
    }

    /// `env` answers every variable, local/ports.env's included: `load`
    /// hands it the process environment over the file.
    pub fn from_sources(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let var = |k: &str, d: &str| {
            env(k)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        let need = |k: &str| {
            env(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{k} is not set (local/ports.env)")))
        };
        let mut addr = need("PIXPORT_RUNTIME_API_ADDR")?;
        let mut bootstrap = env("PIXPORT_BOOTSTRAP").filter(|v| !v.is_empty());
        let mut state_dir = var("PIXPORT_LAMBDA_STATE", ".state/lambda");
        let mut function_name = need("PIXPORT_FUNCTION_NAME")?;
        let mut timeout = var("PIXPORT_LAMBDA_TIMEOUT", "60");
        let memory = var("PIXPORT_LAMBDA_MEMORY", "1024");
        // PIXPORT_LAMBDA_RETRY_DELAY_MS (one step, multiplied per retry) is
        // the older knob; the list says each wait.
        let retry_delays = match (
            env("PIXPORT_LAMBDA_RETRY_DELAYS_MS").filter(|v| !v.is_empty()),
            env("PIXPORT_LAMBDA_RETRY_DELAY_MS").filter(|v| !v.is_empty()),
        ) {
            (Some(list), _) => list,
            (None, Some(step)) => {
                let step: u64 = step.parse().map_err(|_| {
                    Error::Config(format!(
                        "PIXPORT_LAMBDA_RETRY_DELAY_MS must be a number, got {step:?}"
                    ))
                })?;
                format!("{step},{}", step.saturating_mul(2))
            }
            (None, None) => AWS_RETRY_DELAYS_MS.to_owned(),
        };
        let schedule_ms = var("PIXPORT_LAMBDA_SCHEDULE_MS", AWS_SCHEDULE_MS);

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
            region: need("PIXPORT_REGION")?,
            account_id: var("PIXPORT_ACCOUNT_ID", "000000000000"),
            timeout: Duration::from_secs(timeout),
            memory_mb,
            bootstrap,
            state_dir: PathBuf::from(state_dir),
            retry_delays: parse_delays(&retry_delays)?,
            schedule: match num("PIXPORT_LAMBDA_SCHEDULE_MS", &schedule_ms)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            role_env: ROLE_ENV
                .iter()
                .filter_map(|(to, from)| env(from).filter(|v| !v.is_empty()).map(|v| (*to, v)))
                .collect(),
        })
    }
}

/// `60000,120000`: one wait per retry, in ms; `none` for no retries. Lambda
/// allows at most two.
fn parse_delays(list: &str) -> Result<Vec<Duration>, Error> {
    if list.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let delays = list
        .split(',')
        .map(|d| d.trim().parse::<u64>().map(Duration::from_millis))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::Config(format!(
                "PIXPORT_LAMBDA_RETRY_DELAYS_MS={list:?}: expected ms like 60000,120000 or none"
            ))
        })?;
    if delays.len() > 2 {
        return Err(Error::Config(
            "PIXPORT_LAMBDA_RETRY_DELAYS_MS: Lambda retries an async invoke at most twice".into(),
        ));
    }
    Ok(delays)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pixport_local_env::PortsEnv;

    /// `Config::from_sources` over the built-in local/ports.env, as `load`.
    pub(crate) fn with_file(
        args: &[&str],
        env: impl Fn(&str) -> Option<String> + 'static,
    ) -> Result<Config, Error> {
        let file = PortsEnv::committed().expect("local/ports.env parses");
        Config::from_sources(args.iter().map(|a| (*a).to_owned()), file.under(env))
    }

    #[test]
    fn defaults() {
        let file = PortsEnv::committed().expect("local/ports.env parses");
        let c = with_file(&[], |_| None).expect("valid");
        assert_eq!(
            c.function_arn(),
            format!(
                "arn:aws:lambda:{}:000000000000:function:{}",
                file.get("PIXPORT_REGION").unwrap_or_default(),
                file.get("PIXPORT_FUNCTION_NAME").unwrap_or_default()
            )
        );
        assert_eq!(
            c.addr.to_string(),
            file.get("PIXPORT_RUNTIME_API_ADDR").unwrap_or_default()
        );
        let role: Vec<_> = c.role_env.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            role,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "PIXPORT_DB_SECRET_ARN"
            ]
        );
        assert_eq!(
            Some(c.role_env[0].1.as_str()),
            file.get("PIXPORT_LAMBDA_ACCESS_KEY_ID")
        );
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert!(c.bootstrap.is_none());
        assert_eq!(
            c.retry_delays,
            [Duration::from_secs(60), Duration::from_secs(120)]
        );
        assert_eq!(c.schedule, Some(Duration::from_secs(300)));
    }

    #[test]
    fn fast_schedules_for_tests() {
        let env = |k: &str| match k {
            "PIXPORT_LAMBDA_RETRY_DELAYS_MS" => Some("1000, 2000".to_owned()),
            "PIXPORT_LAMBDA_SCHEDULE_MS" => Some("0".to_owned()),
            _ => None,
        };
        let c = with_file(&[], env).expect("valid");
        assert_eq!(
            c.retry_delays,
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(c.schedule, None);
        let step = |k: &str| (k == "PIXPORT_LAMBDA_RETRY_DELAY_MS").then(|| "50".to_owned());
        let c = with_file(&[], step).expect("valid");
        assert_eq!(
            c.retry_delays,
            [Duration::from_millis(50), Duration::from_millis(100)]
        );
        assert!(parse_delays("none").unwrap().is_empty());
        assert!(parse_delays("1,2,3").is_err());
        assert!(parse_delays("1s").is_err());
    }

    #[test]
    fn refuses_bad_values() {
        let err = Config::from_sources(Vec::<String>::new(), |_| None).expect_err("no address");
        assert!(
            err.to_string().contains("PIXPORT_RUNTIME_API_ADDR"),
            "{err}"
        );
        assert!(with_file(&["--timeout", "0"], |_| None).is_err());
        assert!(with_file(&["--bootstrap", "/nonexistent/bootstrap"], |_| None).is_err());
        assert!(with_file(&["--function", "a b"], |_| None).is_err());
        assert!(with_file(&["--what"], |_| None).is_err());
    }

    #[test]
    fn the_environment_wins_over_ports_env() {
        let env = |k: &str| match k {
            "PIXPORT_RUNTIME_API_ADDR" => Some("127.0.0.1:9202".to_owned()),
            "PIXPORT_LAMBDA_ACCESS_KEY_ID" => Some("OTHERKEY".to_owned()),
            _ => None,
        };
        let c = with_file(&[], env).expect("valid");
        assert_eq!(c.addr.to_string(), "127.0.0.1:9202");
        assert_eq!(c.role_env[0], ("AWS_ACCESS_KEY_ID", "OTHERKEY".to_owned()));
    }
}
