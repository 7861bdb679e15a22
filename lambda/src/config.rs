//! The bootstrap's whole configuration, read from the environment once.
//!
//! Everything is validated before the first `/next` poll: a typo in the
//! template should fail the init phase (visible as an init error in
//! CloudWatch), not every invocation.

use std::path::PathBuf;
use std::time::Duration;

use pixport_aws::{Credentials, DataApiConfig, Region, S3Config, S3Endpoint};
use pixport_contract::{ImageLimits, OutputSet, Recipe};

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::wake::WakeConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub bucket: String,
    pub s3: S3Config,
    pub data_api: DataApiConfig,
    pub credentials: Credentials,
    /// `.cwasm` (precompiled for this CPU; loaded without compiling) or `.wasm`.
    pub module_path: PathBuf,
    pub memory_cap_bytes: usize,
    pub time_cap: Duration,
    pub widths: Vec<u32>,
    pub quality: u8,
    /// Which formats the resizer writes at which width
    /// (`PIXPORT_VARIANT_FORMATS`, e.g. `auto,webp,avif:640`); handed to it
    /// as `--formats`.
    pub formats: OutputSet,
    /// What an original may be: bytes (bigger ones fail as `over_limits`
    /// before they are downloaded, by the size in the event), pixels and
    /// pixels per side; all handed to the resizer.
    pub limits: ImageLimits,
    /// When a passing failure is tried again, and when it is given up.
    pub retry: RetryPolicy,
    /// The wake-up call to the edge worker after an image is settled
    /// (`crate::wake`); `None`: events wait for the worker's cron.
    pub wake: Option<WakeConfig>,
}

/// Environment lookup, injectable so tests do not mutate process state.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn required(env: &dyn Env, name: &str) -> Result<String> {
    env.get(name)
        .ok_or_else(|| Error::Config(format!("{name} is not set")))
}

fn parsed<T: std::str::FromStr>(env: &dyn Env, name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match env.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| Error::Config(format!("{name}={v:?}: {e}"))),
    }
}

fn flag(env: &dyn Env, name: &str, default: bool) -> Result<bool> {
    match env
        .get(name)
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => Ok(default),
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(v) => Err(Error::Config(format!(
            "{name}={v:?}: expected true or false"
        ))),
    }
}

impl Config {
    /// What this deployment's resizes make, as rows record it.
    pub fn recipe(&self) -> Recipe {
        Recipe {
            widths: self.widths.clone(),
            quality: self.quality,
            formats: self.formats.clone(),
        }
    }

    pub fn from_env(env: &dyn Env) -> Result<Self> {
        // Lambda sets AWS_REGION; PIXPORT_REGION lets local runs say it once.
        let region = env
            .get("AWS_REGION")
            .or_else(|| env.get("PIXPORT_REGION"))
            .ok_or_else(|| Error::Config("AWS_REGION is not set".into()))?;
        let region = Region::new(region);
        let cfg_err = |e: pixport_aws::Error| Error::Config(e.to_string());

        // PIXPORT_*_ADDR (host:port, from local/ports.env) is how the local
        // stack names its servers; the bootstrap inherits them from it.
        let local = |url: &str, addr: &str| {
            env.get(url)
                .or_else(|| env.get(addr).map(|a| format!("http://{a}")))
        };
        let s3 = match local("PIXPORT_S3_ENDPOINT", "PIXPORT_S3_ADDR") {
            // Local S3 servers are reached by IP, where virtual-hosted names do not resolve.
            Some(url) => S3Config {
                region: region.clone(),
                endpoint: S3Endpoint::custom(&url, flag(env, "PIXPORT_S3_PATH_STYLE", true)?)
                    .map_err(cfg_err)?,
            },
            None => {
                let mut s3 = S3Config::aws(region.clone());
                s3.endpoint.path_style = flag(env, "PIXPORT_S3_PATH_STYLE", false)?;
                s3
            }
        };
        let mut data_api = DataApiConfig::new(
            region.clone(),
            required(env, "PIXPORT_DB_CLUSTER_ARN")?,
            required(env, "PIXPORT_DB_SECRET_ARN")?,
        )
        .with_database(required(env, "PIXPORT_DB_NAME")?);
        if let Some(url) = local("PIXPORT_DATAAPI_ENDPOINT", "PIXPORT_DATAAPI_ADDR") {
            data_api = data_api.with_endpoint(&url).map_err(cfg_err)?;
        }
        let credentials = Credentials::new(
            required(env, "AWS_ACCESS_KEY_ID")?,
            required(env, "AWS_SECRET_ACCESS_KEY")?,
            env.get("AWS_SESSION_TOKEN"),
        );

        let module_path = match env.get("PIXPORT_MODULE") {
            Some(p) => PathBuf::from(p),
            None => default_module_path(env),
        };
        if !module_path.is_file() {
            return Err(Error::Config(format!(
                "module {} does not exist (PIXPORT_MODULE)",
                module_path.display()
            )));
        }

        let memory_mib: usize = parsed(env, "PIXPORT_MEMORY_MIB", 1024)?;
        let time_ms: u64 = parsed(env, "PIXPORT_TIMEOUT_MS", 30_000)?;
        if !(16..=4096).contains(&memory_mib) {
            return Err(Error::Config(format!(
                "PIXPORT_MEMORY_MIB={memory_mib}: must be 16..=4096 (wasm32)"
            )));
        }
        if time_ms == 0 {
            return Err(Error::Config("PIXPORT_TIMEOUT_MS must be > 0".into()));
        }
        let widths_raw = env
            .get("PIXPORT_WIDTHS")
            .unwrap_or_else(|| "1920,640,320".into());
        let widths = widths_raw
            .split(',')
            .map(|w| {
                w.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|w| (1..=16384).contains(w))
            })
            .collect::<Option<Vec<_>>>()
            .filter(|w| !w.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "PIXPORT_WIDTHS={widths_raw:?}: expected widths like 1920,640,320"
                ))
            })?;
        let quality: u8 = parsed(env, "PIXPORT_QUALITY", 82)?;
        if !(1..=100).contains(&quality) {
            return Err(Error::Config(format!(
                "PIXPORT_QUALITY={quality}: must be 1..=100"
            )));
        }

        let formats = match env.get("PIXPORT_VARIANT_FORMATS") {
            None => OutputSet::default(),
            Some(v) => v.parse().map_err(|e| {
                Error::Config(format!(
                    "PIXPORT_VARIANT_FORMATS={v:?}: {e} (expected e.g. {})",
                    OutputSet::DEFAULT_SPEC
                ))
            })?,
        };

        Ok(Config {
            bucket: required(env, "PIXPORT_BUCKET")?,
            s3,
            data_api,
            credentials,
            module_path,
            memory_cap_bytes: memory_mib << 20,
            time_cap: Duration::from_millis(time_ms),
            widths,
            quality,
            formats,
            // The edge's defaults: what it accepts, this resizes.
            limits: ImageLimits {
                max_bytes: parsed(env, "PIXPORT_MAX_BYTES", ImageLimits::DEFAULT.max_bytes)?,
                max_pixels: parsed(
                    env,
                    "PIXPORT_MAX_IMAGE_PIXELS",
                    ImageLimits::DEFAULT.max_pixels,
                )?,
                max_dimension: parsed(
                    env,
                    "PIXPORT_MAX_IMAGE_DIMENSION",
                    ImageLimits::DEFAULT.max_dimension,
                )?,
            },
            retry: retry_policy(env)?,
            wake: wake_config(env)?,
        })
    }
}

/// Default and ceiling of `PIXPORT_WAKE_TIMEOUT_MS`: the call is made
/// inside the invocation, which must not wait on the worker for long.
const WAKE_TIMEOUT_DEFAULT_MS: u64 = 2_000;
const WAKE_TIMEOUT_MAX_MS: u64 = 10_000;

/// `PIXPORT_EDGE_WAKE_URL` and `PIXPORT_WAKE_SECRET`, both or neither; the
/// local stack names its worker by `PIXPORT_WORKER_ADDR` (local/ports.env).
fn wake_config(env: &dyn Env) -> Result<Option<WakeConfig>> {
    let url = env.get("PIXPORT_EDGE_WAKE_URL").or_else(|| {
        env.get("PIXPORT_WORKER_ADDR")
            .map(|a| format!("http://{a}{}", pixport_contract::wake::call::PATH))
    });
    let secret = env.get("PIXPORT_WAKE_SECRET");
    let (url, secret) = match (url, secret) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(Error::Config(
                "PIXPORT_EDGE_WAKE_URL is set without PIXPORT_WAKE_SECRET".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "PIXPORT_WAKE_SECRET is set without PIXPORT_EDGE_WAKE_URL".into(),
            ));
        }
        (Some(u), Some(s)) => (u.trim().to_string(), s.trim().to_string()),
    };
    let local = url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:");
    if !url.starts_with("https://") && !local {
        return Err(Error::Config(format!(
            "PIXPORT_EDGE_WAKE_URL={url:?}: must be an https URL"
        )));
    }
    if secret.len() < pixport_contract::wake::call::MIN_SECRET_LEN {
        return Err(Error::Config(format!(
            "PIXPORT_WAKE_SECRET must be at least {} characters",
            pixport_contract::wake::call::MIN_SECRET_LEN
        )));
    }
    let ms: u64 = parsed(env, "PIXPORT_WAKE_TIMEOUT_MS", WAKE_TIMEOUT_DEFAULT_MS)?;
    if !(1..=WAKE_TIMEOUT_MAX_MS).contains(&ms) {
        return Err(Error::Config(format!(
            "PIXPORT_WAKE_TIMEOUT_MS={ms}: must be 1..={WAKE_TIMEOUT_MAX_MS}"
        )));
    }
    Ok(Some(WakeConfig {
        url,
        secret,
        timeout: Duration::from_millis(ms),
    }))
}

/// Milliseconds from the environment; tests run the same schedule in seconds.
fn millis(env: &dyn Env, name: &str, default: Duration) -> Result<Duration> {
    let ms: u64 = parsed(
        env,
        name,
        u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
    )?;
    if ms == 0 {
        return Err(Error::Config(format!("{name} must be > 0")));
    }
    Ok(Duration::from_millis(ms))
}

fn retry_policy(env: &dyn Env) -> Result<RetryPolicy> {
    let d = RetryPolicy::default();
    let p = RetryPolicy {
        max_attempts: parsed(env, "PIXPORT_MAX_ATTEMPTS", d.max_attempts)?,
        base: millis(env, "PIXPORT_RETRY_BASE_MS", d.base)?,
        max_delay: millis(env, "PIXPORT_RETRY_MAX_MS", d.max_delay)?,
        lease: millis(env, "PIXPORT_ATTEMPT_LEASE_MS", d.lease)?,
        idle: millis(env, "PIXPORT_REDRIVE_IDLE_MS", d.idle)?,
        batch: parsed(env, "PIXPORT_REDRIVE_BATCH", d.batch)?,
        max_restarts: parsed(env, "PIXPORT_MAX_RESTARTS", d.max_restarts)?,
    };
    // A permanent failure sets attempts to 1000; the cap must stay below.
    if !(1..1000).contains(&p.max_attempts) {
        return Err(Error::Config(format!(
            "PIXPORT_MAX_ATTEMPTS={}: must be 1..=999",
            p.max_attempts
        )));
    }
    if p.max_delay < p.base {
        return Err(Error::Config(
            "PIXPORT_RETRY_MAX_MS must be at least PIXPORT_RETRY_BASE_MS".into(),
        ));
    }
    if !(1..=1000).contains(&p.batch) {
        return Err(Error::Config(format!(
            "PIXPORT_REDRIVE_BATCH={}: must be 1..=1000",
            p.batch
        )));
    }
    Ok(p)
}

/// In the zip, the module sits next to `bootstrap` in `LAMBDA_TASK_ROOT`.
fn default_module_path(env: &dyn Env) -> PathBuf {
    let dir = env
        .get("LAMBDA_TASK_ROOT")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let cwasm = dir.join("resizer.cwasm");
    if cwasm.is_file() {
        cwasm
    } else {
        dir.join("resizer.wasm")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(module: &str) -> [(&str, &str); 10] {
        [
            ("AWS_REGION", "eu-west-1"),
            ("PIXPORT_BUCKET", "b"),
            (
                "PIXPORT_DB_CLUSTER_ARN",
                "arn:aws:rds:eu-west-1:1:cluster:c",
            ),
            (
                "PIXPORT_DB_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:s",
            ),
            ("PIXPORT_DB_NAME", "pixport"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("PIXPORT_MODULE", module),
            ("PIXPORT_WIDTHS", "800, 400"),
            ("PIXPORT_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]
    }

    #[test]
    fn reads_and_validates() {
        let exe = std::env::current_exe().unwrap();
        let cfg = Config::from_env(&base(exe.to_str().unwrap())).unwrap();
        assert_eq!(cfg.widths, vec![800, 400]);
        assert!(cfg.s3.endpoint.path_style);
        assert_eq!(cfg.memory_cap_bytes, 1 << 30);
        assert_eq!(cfg.data_api.database.as_deref(), Some("pixport"));
        assert!(Config::from_env(&base("/nonexistent.cwasm")).is_err());
        assert_eq!(cfg.retry, RetryPolicy::default());
        assert_eq!(cfg.formats, OutputSet::default());
    }

    #[test]
    fn variant_formats_are_validated_at_start() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let with = |spec: &'static str| {
            let mut env = base(exe);
            env[8] = ("PIXPORT_VARIANT_FORMATS", spec);
            Config::from_env(&env)
        };
        assert_eq!(with("auto, webp").unwrap().formats.to_string(), "auto,webp");
        for bad in ["gif", "avif:640", "auto,webp:0"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("PIXPORT_VARIANT_FORMATS"), "{e}");
        }
    }

    #[test]
    fn retry_schedule_is_configurable_and_checked() {
        let env = [
            ("PIXPORT_RETRY_BASE_MS", "500"),
            ("PIXPORT_RETRY_MAX_MS", "2000"),
            ("PIXPORT_MAX_ATTEMPTS", "30"),
        ];
        let p = retry_policy(&env).unwrap();
        assert_eq!(p.after_failure(1), Some(Duration::from_millis(500)));
        assert_eq!(p.after_failure(9), Some(Duration::from_secs(2)));
        assert!(retry_policy(&[("PIXPORT_RETRY_MAX_MS", "10")]).is_err());
        assert!(retry_policy(&[("PIXPORT_MAX_ATTEMPTS", "1000")]).is_err());
        assert!(retry_policy(&[("PIXPORT_ATTEMPT_LEASE_MS", "0")]).is_err());
        assert!(retry_policy(&[("PIXPORT_REDRIVE_BATCH", "x")]).is_err());
    }

    #[test]
    fn the_wake_up_call_needs_both_settings_and_a_safe_url() {
        assert_eq!(wake_config(&[("X", "y")]).unwrap(), None);
        let secret = "pixport-wake-secret-0123456789abcdef";
        let w = wake_config(&[
            (
                "PIXPORT_EDGE_WAKE_URL",
                "https://img.example.com/internal/wake",
            ),
            ("PIXPORT_WAKE_SECRET", secret),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(w.timeout, Duration::from_secs(2));
        let local = wake_config(&[
            ("PIXPORT_WORKER_ADDR", "127.0.0.1:8787"),
            ("PIXPORT_WAKE_SECRET", secret),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(local.url, "http://127.0.0.1:8787/internal/wake");
        for bad in [
            vec![(
                "PIXPORT_EDGE_WAKE_URL",
                "https://img.example.com/internal/wake",
            )],
            vec![("PIXPORT_WAKE_SECRET", secret)],
            vec![
                (
                    "PIXPORT_EDGE_WAKE_URL",
                    "http://img.example.com/internal/wake",
                ),
                ("PIXPORT_WAKE_SECRET", secret),
            ],
            vec![
                (
                    "PIXPORT_EDGE_WAKE_URL",
                    "https://img.example.com/internal/wake",
                ),
                ("PIXPORT_WAKE_SECRET", "short"),
            ],
        ] {
            let env: Vec<(&str, &str)> = bad;
            assert!(wake_config(&Pairs(env)).is_err());
        }
        let slow = [
            (
                "PIXPORT_EDGE_WAKE_URL",
                "https://img.example.com/internal/wake",
            ),
            ("PIXPORT_WAKE_SECRET", secret),
            ("PIXPORT_WAKE_TIMEOUT_MS", "60000"),
        ];
        assert!(wake_config(&slow).is_err());
    }

    struct Pairs<'a>(Vec<(&'a str, &'a str)>);

    impl Env for Pairs<'_> {
        fn get(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }
}
