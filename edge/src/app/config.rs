//! The worker's settings: wrangler `[vars]` and secrets, read and validated
//! once per isolate into one typed struct (`App::get`), so a missing or
//! malformed setting is a clear `misconfigured` error rather than a failure
//! deep in a handler.

use std::time::Duration;

use pixport_aws::dataapi::Database;
use pixport_aws::s3::Bucket;
use pixport_aws::{Credentials, DataApiConfig, Region, S3Config, S3Endpoint};
use worker::Env;

use pixport_contract::ImageLimits;

use crate::adapters::purge::CdnPurge;
use crate::domain::delivery::{self, DeliveryKeys};
use crate::domain::grant::GrantKeys;
use crate::domain::identity::Tokens;
use crate::domain::jwt::{Alg, Rules};
use crate::domain::limits::UploadLimits;
use crate::domain::sweep::{self, Reconcile};

/// A setting that is missing or malformed; the message names it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// An endpoint the AWS client cannot use.
impl From<pixport_aws::Error> for ConfigError {
    fn from(e: pixport_aws::Error) -> Self {
        ConfigError(e.to_string())
    }
}

type Checked<T> = Result<T, ConfigError>;

#[derive(Debug, Clone)]
pub struct Config {
    /// The originals' and variants' bucket, with the worker's credentials.
    pub bucket: Bucket,
    /// The same bucket at its S3 Transfer Acceleration endpoint
    /// (`bucket.s3-accelerate.amazonaws.com`), for the presigned uploads
    /// clients are handed, when `S3_ACCELERATE` is true.
    pub upload_bucket: Option<Bucket>,
    /// The images database behind the Data API, with the same credentials.
    pub database: Database,
    /// Server tokens (`API_TOKENS`), each with its owner and scope.
    pub tokens: Tokens,
    /// Sign-in JWTs (`JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_JWKS_URL`,
    /// `JWT_ALGORITHMS`, `JWT_LEEWAY_SECONDS`), when an issuer is set.
    pub jwt: Option<JwtSettings>,
    /// What signs upload grants (`GRANT_SECRETS`); without it `POST /grants`
    /// is refused.
    pub grant_keys: Option<GrantKeys>,
    pub public_base_url: Option<String>,
    pub presign_ttl_secs: u64,
    pub limits: UploadLimits,
    pub cors_origins: Vec<String>,
    /// The most verbose log lines written (`LOG_LEVEL`: `error`, `warn`,
    /// `info` (default) or `debug`).
    pub log_level: tracing::Level,
    /// `POST /echo` answers only when `ECHO_ENABLED` is `true` (local
    /// development); production leaves it unset.
    pub echo_enabled: bool,
    /// How long one webhook POST may take (`WEBHOOK_TIMEOUT_MS`): a receiver
    /// that never answers must not hold up the events behind it.
    pub webhook_timeout: Duration,
    /// How long an upload's body may go without progress while the worker
    /// waits on the client (`UPLOAD_IDLE_TIMEOUT_MS`): a slow or stalled
    /// sender must not hold the memory budget (`runtime::budget::Metered`).
    pub upload_idle_timeout: Duration,
    /// What the sweep's reconciler may do (`RECONCILE_MODE`,
    /// `RECONCILE_MAX_DELETES`; docs/security.md).
    pub reconcile: Reconcile,
    /// Whether webhook endpoints may be plain `http` and on loopback or
    /// private addresses (`WEBHOOK_ALLOW_PRIVATE`): local development and
    /// tests only, whose receivers run on the same machine; production
    /// leaves it unset (`webhook::check_url`).
    pub webhook_allow_private: bool,
    /// What signs private images' delivery URLs (`DELIVERY_KEYS`: the first
    /// signs, all verify) and how long one is valid
    /// (`DELIVERY_URL_TTL_SECONDS`).
    pub delivery_keys: Option<DeliveryKeys>,
    pub delivery_url_ttl_secs: u64,
    /// How long this data centre's cache answers for a public image's
    /// variant list without the database (`DELIVERY_CACHE_SECONDS`; 0 turns
    /// the delivery cache off): how long a deleted or reprocessed image can
    /// still be served by a data centre the purge did not reach.
    pub delivery_cache_secs: u64,
    /// Where a delete purges the zone's cache in every data centre
    /// (`CF_ZONE_ID`, `CF_PURGE_TOKEN`, `CF_API_URL`), when configured.
    pub cdn_purge: Option<CdnPurge>,
    /// The secret the Lambda's wake-up calls are signed with (`WAKE_SECRET`,
    /// `pixport_contract::wake::call`); without it `POST /internal/wake`
    /// is no route and events wait for the cron.
    pub wake_secret: Option<String>,
}

/// Default and ceiling of `DELIVERY_CACHE_SECONDS`.
pub const DELIVERY_CACHE_DEFAULT_SECS: u64 = 60;
pub const DELIVERY_CACHE_MAX_SECS: u64 = 3600;

/// Sign-in JWTs: the rules and where the issuer's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub rules: Rules,
    pub jwks_url: String,
}

/// Default and ceiling of `JWT_LEEWAY_SECONDS`: clocks drift by seconds,
/// not minutes.
pub const JWT_LEEWAY_DEFAULT_SECS: u64 = 60;
pub const JWT_LEEWAY_MAX_SECS: u64 = 300;

/// Default and ceiling of `WEBHOOK_TIMEOUT_MS`: the cron delivers a batch
/// every minute, so one attempt may not take most of that.
pub const WEBHOOK_TIMEOUT_DEFAULT_MS: u64 = 10_000;
pub const WEBHOOK_TIMEOUT_MAX_MS: u64 = 30_000;

/// Default and ceiling of `UPLOAD_IDLE_TIMEOUT_MS`: 64 KiB per 20 s is a
/// client on the slowest mobile link still sending; minutes of nothing
/// is no upload at all.
pub const UPLOAD_IDLE_TIMEOUT_DEFAULT_MS: u64 = 20_000;
pub const UPLOAD_IDLE_TIMEOUT_MAX_MS: u64 = 300_000;

/// S3 refuses multipart parts under 5 MiB (except the last).
const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// S3 Transfer Acceleration's endpoint: virtual-hosted only
/// (`<bucket>.s3-accelerate.amazonaws.com`), signed for the bucket's region.
pub const ACCELERATE_ENDPOINT: &str = "https://s3-accelerate.amazonaws.com";

/// Acceleration works only on AWS's own endpoint, virtual-hosted, and for
/// a bucket whose name has no dots (S3's rule: the name is a DNS label of
/// the accelerate host, under its wildcard certificate).
fn check_accelerate(s3: &S3Config, bucket: &str) -> Checked<()> {
    if s3.endpoint.path_style {
        return Err(ConfigError(
            "S3_ACCELERATE needs virtual-hosted requests: S3_PATH_STYLE must be false".into(),
        ));
    }
    if s3.endpoint.base_url != S3Endpoint::aws(&s3.region).base_url {
        return Err(ConfigError(format!(
            "S3_ACCELERATE works with AWS's own endpoint only: S3_ENDPOINT must be {}",
            S3Endpoint::aws(&s3.region).base_url
        )));
    }
    if bucket.contains('.') {
        return Err(ConfigError(
            "S3_ACCELERATE needs a bucket name without dots".into(),
        ));
    }
    Ok(())
}

/// Reads settings by name; the worker passes its `Env`, tests pass a map.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        self.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.var(name).map(|v| v.to_string()))
            .ok()
    }
}

impl Config {
    pub fn from_source(src: &dyn Source) -> Checked<Self> {
        let req = |name: &str| -> Checked<String> {
            src.get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError(format!("{name} is not set")))
        };
        let num = |name: &str| -> Checked<u64> {
            req(name)?
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{name} is not a whole number")))
        };
        let flag = |name: &str| -> Checked<bool> {
            match src.get(name).as_deref().map(str::trim) {
                None | Some("" | "false" | "0") => Ok(false),
                Some("true" | "1") => Ok(true),
                Some(_) => Err(ConfigError(format!("{name} must be true or false"))),
            }
        };
        let region = Region::new(req("S3_REGION")?);
        let path_style = matches!(src.get("S3_PATH_STYLE").as_deref(), Some("true" | "1"));
        let s3 = S3Config {
            region: region.clone(),
            endpoint: S3Endpoint::custom(&req("S3_ENDPOINT")?, path_style)?,
        };
        let data_api = DataApiConfig::new(region, req("DB_CLUSTER_ARN")?, req("DB_SECRET_ARN")?)
            .with_database(req("DB_NAME")?)
            .with_endpoint(&req("DATA_API_ENDPOINT")?)?;
        let limits = UploadLimits {
            image: ImageLimits {
                max_bytes: num("MAX_UPLOAD_BYTES")?,
                max_pixels: num("MAX_IMAGE_PIXELS")?,
                max_dimension: u32::try_from(num("MAX_IMAGE_DIMENSION")?)
                    .map_err(|_| ConfigError("MAX_IMAGE_DIMENSION is too large".into()))?,
            },
            max_fields: num("MAX_FIELDS")? as usize,
            max_field_bytes: num("MAX_FIELD_BYTES")? as usize,
            multipart_threshold: num("MULTIPART_THRESHOLD_BYTES")? as usize,
            part_bytes: num("MULTIPART_PART_BYTES")? as usize,
            memory_budget: num("UPLOAD_MEMORY_BUDGET_BYTES")?,
            max_images_per_owner: num("MAX_IMAGES_PER_OWNER")?,
            max_bytes_per_owner: num("MAX_BYTES_PER_OWNER")?,
            private_unavailable: None,
        };
        if limits.part_bytes < MIN_PART_BYTES {
            return Err(ConfigError(
                "MULTIPART_PART_BYTES must be at least 5 MiB".into(),
            ));
        }
        // The buffer that outgrows the threshold becomes the first part.
        if limits.multipart_threshold > limits.part_bytes {
            return Err(ConfigError(
                "MULTIPART_THRESHOLD_BYTES must not exceed MULTIPART_PART_BYTES".into(),
            ));
        }
        if limits.memory_budget < limits.sizing().reservation(None) {
            return Err(ConfigError(
                "UPLOAD_MEMORY_BUDGET_BYTES must hold at least one upload's part".into(),
            ));
        }
        let webhook_timeout_ms = match src
            .get("WEBHOOK_TIMEOUT_MS")
            .filter(|v| !v.trim().is_empty())
        {
            None => WEBHOOK_TIMEOUT_DEFAULT_MS,
            Some(_) => num("WEBHOOK_TIMEOUT_MS")?,
        };
        if !(1..=WEBHOOK_TIMEOUT_MAX_MS).contains(&webhook_timeout_ms) {
            return Err(ConfigError(format!(
                "WEBHOOK_TIMEOUT_MS must be 1..={WEBHOOK_TIMEOUT_MAX_MS}"
            )));
        }
        let upload_idle_timeout_ms = match src
            .get("UPLOAD_IDLE_TIMEOUT_MS")
            .filter(|v| !v.trim().is_empty())
        {
            None => UPLOAD_IDLE_TIMEOUT_DEFAULT_MS,
            Some(_) => num("UPLOAD_IDLE_TIMEOUT_MS")?,
        };
        if !(1..=UPLOAD_IDLE_TIMEOUT_MAX_MS).contains(&upload_idle_timeout_ms) {
            return Err(ConfigError(format!(
                "UPLOAD_IDLE_TIMEOUT_MS must be 1..={UPLOAD_IDLE_TIMEOUT_MAX_MS}"
            )));
        }
        let mode = sweep::Mode::parse(&src.get("RECONCILE_MODE").unwrap_or_default())
            .ok_or_else(|| ConfigError("RECONCILE_MODE must be on, dry-run or off".into()))?;
        let max_deletes = match src
            .get("RECONCILE_MAX_DELETES")
            .filter(|v| !v.trim().is_empty())
        {
            None => sweep::RECONCILE_MAX_DELETES_DEFAULT,
            Some(_) => num("RECONCILE_MAX_DELETES")? as usize,
        };
        let bucket_name = req("S3_BUCKET")?;
        let accelerate = flag("S3_ACCELERATE")?;
        if accelerate {
            check_accelerate(&s3, &bucket_name)?;
        }
        let tokens = Tokens::parse(&src.get("API_TOKENS").unwrap_or_default())
            .map_err(|e| ConfigError(e.to_string()))?;
        let jwt = match src.get("JWT_ISSUER").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(issuer) => {
                let algorithms = src
                    .get("JWT_ALGORITHMS")
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| "RS256,ES256,EdDSA".into())
                    .split(',')
                    .map(|a| {
                        Alg::parse(a.trim()).ok_or_else(|| {
                            ConfigError("JWT_ALGORITHMS takes RS256, ES256 and EdDSA only".into())
                        })
                    })
                    .collect::<Checked<Vec<Alg>>>()?;
                let leeway_secs = match src
                    .get("JWT_LEEWAY_SECONDS")
                    .filter(|v| !v.trim().is_empty())
                {
                    None => JWT_LEEWAY_DEFAULT_SECS,
                    Some(_) => num("JWT_LEEWAY_SECONDS")?,
                };
                if leeway_secs > JWT_LEEWAY_MAX_SECS {
                    return Err(ConfigError(format!(
                        "JWT_LEEWAY_SECONDS must be at most {JWT_LEEWAY_MAX_SECS}"
                    )));
                }
                let jwks_url = req("JWT_JWKS_URL")?;
                let https = jwks_url.starts_with("https://");
                let local = jwks_url.starts_with("http://127.0.0.1")
                    || jwks_url.starts_with("http://localhost");
                if !https && !local {
                    return Err(ConfigError("JWT_JWKS_URL must be an https URL".into()));
                }
                Some(JwtSettings {
                    rules: Rules {
                        issuer: issuer.trim().to_string(),
                        audience: req("JWT_AUDIENCE")?.trim().to_string(),
                        algorithms,
                        leeway_secs,
                    },
                    jwks_url,
                })
            }
        };
        if tokens.is_empty() && jwt.is_none() {
            return Err(ConfigError(
                "neither API_TOKENS nor JWT_ISSUER is set: nobody could sign in".into(),
            ));
        }
        let grant_keys =
            GrantKeys::parse(&src.get("GRANT_SECRETS").unwrap_or_default()).map_err(ConfigError)?;
        let public_base_url = src
            .get("PUBLIC_BASE_URL")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        let delivery_keys = DeliveryKeys::parse(&src.get("DELIVERY_KEYS").unwrap_or_default())
            .map_err(ConfigError)?;
        let optional = |name: &str, default: u64, max: u64| -> Checked<u64> {
            let v = match src.get(name).filter(|v| !v.trim().is_empty()) {
                None => default,
                Some(_) => num(name)?,
            };
            if v > max {
                return Err(ConfigError(format!("{name} must be at most {max}")));
            }
            Ok(v)
        };
        let delivery_url_ttl_secs = optional(
            "DELIVERY_URL_TTL_SECONDS",
            delivery::URL_TTL_DEFAULT_SECS,
            delivery::URL_TTL_MAX_SECS,
        )?;
        if delivery_url_ttl_secs == 0 {
            return Err(ConfigError(
                "DELIVERY_URL_TTL_SECONDS must be at least 1".into(),
            ));
        }
        let delivery_cache_secs = optional(
            "DELIVERY_CACHE_SECONDS",
            DELIVERY_CACHE_DEFAULT_SECS,
            DELIVERY_CACHE_MAX_SECS,
        )?;
        let mut limits = limits;
        limits.private_unavailable = if public_base_url.is_some() {
            Some("PUBLIC_BASE_URL serves every variant to anyone")
        } else if delivery_keys.is_none() {
            Some("DELIVERY_KEYS is not set")
        } else {
            None
        };
        let cdn_purge = match src.get("CF_ZONE_ID").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(zone_id) => {
                let api_url = src
                    .get("CF_API_URL")
                    .map(|u| u.trim().trim_end_matches('/').to_string())
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into());
                let local = api_url.starts_with("http://127.0.0.1")
                    || api_url.starts_with("http://localhost");
                if !api_url.starts_with("https://") && !local {
                    return Err(ConfigError("CF_API_URL must be an https URL".into()));
                }
                Some(CdnPurge {
                    zone_id: zone_id.trim().to_string(),
                    token: req("CF_PURGE_TOKEN")?,
                    api_url,
                })
            }
        };
        let wake_secret = src
            .get("WAKE_SECRET")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if wake_secret
            .as_ref()
            .is_some_and(|s| s.len() < pixport_contract::wake::call::MIN_SECRET_LEN)
        {
            return Err(ConfigError(format!(
                "WAKE_SECRET must be at least {} characters",
                pixport_contract::wake::call::MIN_SECRET_LEN
            )));
        }
        let credentials = Credentials::new(
            req("AWS_ACCESS_KEY_ID")?,
            req("AWS_SECRET_ACCESS_KEY")?,
            None,
        );
        Ok(Config {
            reconcile: sweep::Reconcile {
                mode,
                max_deletes,
                bucket: bucket_name.clone(),
                subrequests: sweep::RECONCILE_SUBREQUESTS,
            },
            upload_bucket: accelerate.then(|| {
                let endpoint = S3Endpoint {
                    base_url: ACCELERATE_ENDPOINT.into(),
                    path_style: false,
                };
                let config = S3Config {
                    region: s3.region.clone(),
                    endpoint,
                };
                Bucket::new(credentials.clone(), config, bucket_name.clone())
            }),
            bucket: Bucket::new(credentials.clone(), s3, bucket_name),
            database: Database::new(credentials, data_api),
            tokens,
            jwt,
            grant_keys,
            public_base_url,
            // Well inside the sweep's grace period, so a presigned upload
            // cannot land after the sweep has settled its `uploading` row.
            presign_ttl_secs: num("PRESIGN_TTL_SECONDS")?
                .clamp(1, u64::from(sweep::GRACE_MINUTES) * 60 / 2),
            limits,
            cors_origins: src
                .get("CORS_ALLOW_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            echo_enabled: flag("ECHO_ENABLED")?,
            log_level: match src.get("LOG_LEVEL").as_deref().map(str::trim) {
                None | Some("" | "info") => tracing::Level::INFO,
                Some("error") => tracing::Level::ERROR,
                Some("warn") => tracing::Level::WARN,
                Some("debug") => tracing::Level::DEBUG,
                Some(_) => {
                    return Err(ConfigError(
                        "LOG_LEVEL must be error, warn, info or debug".into(),
                    ));
                }
            },
            webhook_timeout: Duration::from_millis(webhook_timeout_ms),
            upload_idle_timeout: Duration::from_millis(upload_idle_timeout_ms),
            webhook_allow_private: flag("WEBHOOK_ALLOW_PRIVATE")?,
            delivery_keys,
            delivery_url_ttl_secs,
            delivery_cache_secs,
            cdn_purge,
            wake_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    pub struct Map(pub HashMap<&'static str, &'static str>);

    impl Source for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn local() -> Map {
        Map(HashMap::from([
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_BUCKET", "pixport-local"),
            ("S3_REGION", "us-east-1"),
            ("S3_PATH_STYLE", "true"),
            ("DATA_API_ENDPOINT", "http://127.0.0.1:9001"),
            ("DB_CLUSTER_ARN", "arn:aws:rds:us-east-1:0:cluster:c"),
            (
                "DB_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:0:secret:s",
            ),
            ("DB_NAME", "pixport"),
            ("PRESIGN_TTL_SECONDS", "900"),
            ("MAX_UPLOAD_BYTES", "100000000"),
            ("MAX_IMAGE_PIXELS", "100000000"),
            ("MAX_IMAGE_DIMENSION", "20000"),
            ("MAX_FIELDS", "32"),
            ("MAX_FIELD_BYTES", "16384"),
            ("MULTIPART_THRESHOLD_BYTES", "8388608"),
            ("MULTIPART_PART_BYTES", "8388608"),
            ("UPLOAD_MEMORY_BUDGET_BYTES", "50331648"),
            ("MAX_IMAGES_PER_OWNER", "10000"),
            ("MAX_BYTES_PER_OWNER", "10000000000"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("API_TOKENS", "t1,t2"),
            ("CORS_ALLOW_ORIGINS", "*"),
        ]))
    }

    #[test]
    fn local_settings_parse() {
        let c = Config::from_source(&local()).unwrap();
        assert!(c.bucket.config.endpoint.path_style);
        assert_eq!(c.limits.part_bytes, 8 * 1024 * 1024);
        assert_eq!(c.public_base_url, None);
        assert_eq!(c.cors_origins, ["*"]);
        assert!(!c.echo_enabled, "echo is off unless asked for");
        assert_eq!(c.webhook_timeout, Duration::from_secs(10));
        assert!(
            !c.webhook_allow_private,
            "private endpoints only when asked"
        );
    }

    #[test]
    fn webhook_timeout_is_bounded() {
        let mut m = local();
        m.0.insert("WEBHOOK_TIMEOUT_MS", "1500");
        let c = Config::from_source(&m).unwrap();
        assert_eq!(c.webhook_timeout, Duration::from_millis(1500));
        for bad in ["0", "30001", "soon"] {
            m.0.insert("WEBHOOK_TIMEOUT_MS", bad);
            assert!(Config::from_source(&m).is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_idle_timeout_is_bounded() {
        let mut m = local();
        assert_eq!(
            Config::from_source(&m).unwrap().upload_idle_timeout,
            Duration::from_secs(20)
        );
        m.0.insert("UPLOAD_IDLE_TIMEOUT_MS", "6000");
        let c = Config::from_source(&m).unwrap();
        assert_eq!(c.upload_idle_timeout, Duration::from_secs(6));
        for bad in ["0", "300001", "soon"] {
            m.0.insert("UPLOAD_IDLE_TIMEOUT_MS", bad);
            assert!(Config::from_source(&m).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_images_need_signing_keys_and_no_public_base() {
        let mut m = local();
        let c = Config::from_source(&m).unwrap();
        assert_eq!(
            c.limits.private_unavailable,
            Some("DELIVERY_KEYS is not set")
        );
        assert_eq!(c.delivery_url_ttl_secs, 3600);
        assert_eq!(c.delivery_cache_secs, 60);
        m.0.insert("DELIVERY_KEYS", "short");
        assert!(Config::from_source(&m).is_err());
        m.0.insert("DELIVERY_KEYS", "a-delivery-key-of-at-least-32-characters");
        assert_eq!(
            Config::from_source(&m).unwrap().limits.private_unavailable,
            None
        );
        m.0.insert("PUBLIC_BASE_URL", "https://cdn.example");
        assert!(
            Config::from_source(&m)
                .unwrap()
                .limits
                .private_unavailable
                .is_some()
        );
        for (name, bad) in [
            ("DELIVERY_URL_TTL_SECONDS", "0"),
            ("DELIVERY_URL_TTL_SECONDS", "604801"),
            ("DELIVERY_CACHE_SECONDS", "3601"),
            ("DELIVERY_CACHE_SECONDS", "a minute"),
        ] {
            let mut m = local();
            m.0.insert(name, bad);
            assert!(Config::from_source(&m).is_err(), "{name}={bad}");
        }
    }

    #[test]
    fn the_zone_purge_needs_its_token_and_https() {
        let mut m = local();
        assert!(Config::from_source(&m).unwrap().cdn_purge.is_none());
        m.0.insert("CF_ZONE_ID", "zone");
        assert!(Config::from_source(&m).is_err(), "no CF_PURGE_TOKEN");
        m.0.insert("CF_PURGE_TOKEN", "t");
        let p = Config::from_source(&m).unwrap().cdn_purge.unwrap();
        assert_eq!(p.api_url, "https://api.cloudflare.com/client/v4");
        m.0.insert("CF_API_URL", "http://api.example");
        assert!(Config::from_source(&m).is_err());
    }

    #[test]
    fn acceleration_is_for_aws_virtual_hosted_buckets_and_signs_uploads_for_it() {
        use crate::adapters::s3::S3;
        use crate::domain::ports::{ObjectStore, PutGrant};

        let mut m = local();
        assert!(Config::from_source(&m).unwrap().upload_bucket.is_none());
        m.0.insert("S3_ACCELERATE", "true");
        // The local stack's endpoint: path style, and not AWS's.
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("S3_PATH_STYLE"), "{e}");
        m.0.insert("S3_PATH_STYLE", "false");
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("S3_ENDPOINT"), "{e}");
        m.0.insert("S3_ENDPOINT", "https://s3.us-east-1.amazonaws.com");
        m.0.insert("S3_BUCKET", "images.example.com");
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("dots"), "{e}");
        m.0.insert("S3_BUCKET", "pixport-images-1-us-east-1");
        let c = Config::from_source(&m).unwrap();
        let s3 = S3 {
            bucket: c.bucket.clone(),
            presign_ttl: Duration::from_secs(900),
            public_base_url: None,
            upload_bucket: c.upload_bucket.clone(),
        };
        let grant = PutGrant {
            format: pixport_contract::SourceFormat::Jpeg,
            bytes: 10,
            sha256_b64: None,
            request_id: Some("req-1"),
        };
        let put = s3.presign_put("originals/X", &grant).unwrap();
        // The request id is signed in: the client sends it, S3 keeps it.
        assert!(
            put.headers
                .iter()
                .any(|(k, v)| k == "x-amz-meta-request-id" && v == "req-1"),
            "{:?}",
            put.headers
        );
        assert!(put.url.contains("x-amz-meta-request-id"), "{}", put.url);
        assert!(
            put.url.starts_with(
                "https://pixport-images-1-us-east-1.s3-accelerate.amazonaws.com/originals/X?"
            ),
            "{}",
            put.url
        );
        assert!(
            put.url.contains("us-east-1%2Fs3%2Faws4_request"),
            "{}",
            put.url
        );
        let part = s3.presign_part("originals/X", "up", 1, 10).unwrap();
        assert!(
            part.url.contains(".s3-accelerate.amazonaws.com/"),
            "{}",
            part.url
        );
        let (origin, _) = s3.browser_origins().unwrap();
        assert_eq!(
            origin,
            "https://pixport-images-1-us-east-1.s3-accelerate.amazonaws.com"
        );
        m.0.insert("S3_ACCELERATE", "maybe");
        assert!(Config::from_source(&m).is_err());
    }

    #[test]
    fn the_wake_secret_is_optional_and_long_when_set() {
        let mut m = local();
        assert_eq!(Config::from_source(&m).unwrap().wake_secret, None);
        m.0.insert("WAKE_SECRET", "short");
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("WAKE_SECRET"), "{e}");
        m.0.insert("WAKE_SECRET", "pixport-wake-secret-0123456789abcdef");
        assert_eq!(
            Config::from_source(&m).unwrap().wake_secret.as_deref(),
            Some("pixport-wake-secret-0123456789abcdef")
        );
    }

    #[test]
    fn echo_is_on_only_when_asked() {
        let mut m = local();
        m.0.insert("ECHO_ENABLED", "true");
        assert!(Config::from_source(&m).unwrap().echo_enabled);
        m.0.insert("ECHO_ENABLED", "yes please");
        assert!(Config::from_source(&m).is_err());
    }

    #[test]
    fn the_log_level_is_info_unless_set_and_a_wrong_one_is_refused() {
        let mut m = local();
        assert_eq!(
            Config::from_source(&m).unwrap().log_level,
            tracing::Level::INFO
        );
        m.0.insert("LOG_LEVEL", "warn");
        assert_eq!(
            Config::from_source(&m).unwrap().log_level,
            tracing::Level::WARN
        );
        m.0.insert("LOG_LEVEL", "verbose");
        let e = Config::from_source(&m).unwrap_err();
        assert!(e.0.contains("LOG_LEVEL"), "{e:?}");
    }

    #[test]
    fn sign_in_settings_are_checked_and_one_way_in_is_required() {
        let mut m = local();
        assert!(Config::from_source(&m).unwrap().jwt.is_none());
        m.0.insert("JWT_ISSUER", "https://id.example/");
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("JWT_JWKS_URL"), "{e}");
        m.0.insert("JWT_JWKS_URL", "https://id.example/.well-known/jwks.json");
        m.0.insert("JWT_AUDIENCE", "pixport");
        let jwt = Config::from_source(&m).unwrap().jwt.unwrap();
        assert_eq!(jwt.rules.algorithms, [Alg::Rs256, Alg::Es256, Alg::EdDsa]);
        assert_eq!(jwt.rules.leeway_secs, JWT_LEEWAY_DEFAULT_SECS);
        for (k, bad) in [
            ("JWT_ALGORITHMS", "HS256"),
            ("JWT_ALGORITHMS", "none"),
            ("JWT_LEEWAY_SECONDS", "301"),
            ("JWT_JWKS_URL", "http://id.example/jwks.json"),
        ] {
            let mut m = Map(m.0.clone());
            m.0.insert(k, bad);
            assert!(Config::from_source(&m).is_err(), "{k}={bad}");
        }
        // Sign-in alone is a way in; neither is a deploy nobody can use.
        m.0.remove("API_TOKENS");
        assert!(Config::from_source(&m).is_ok());
        m.0.remove("JWT_ISSUER");
        assert!(Config::from_source(&m).is_err());
        let mut m = local();
        m.0.insert("GRANT_SECRETS", "too-short");
        assert!(Config::from_source(&m).is_err());
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let mut m = local();
        m.0.remove("S3_BUCKET");
        let e = Config::from_source(&m).unwrap_err().to_string();
        assert!(e.contains("S3_BUCKET"), "{e}");

        let mut m = local();
        m.0.insert("MULTIPART_PART_BYTES", "1000");
        assert!(Config::from_source(&m).is_err());

        let mut m = local();
        m.0.insert("MULTIPART_THRESHOLD_BYTES", "9000000");
        assert!(Config::from_source(&m).is_err());

        let mut m = local();
        m.0.insert("UPLOAD_MEMORY_BUDGET_BYTES", "1048576");
        assert!(Config::from_source(&m).is_err());

        let mut m = local();
        m.0.remove("MAX_IMAGES_PER_OWNER");
        assert!(Config::from_source(&m).is_err());

        let mut m = local();
        m.0.insert("MAX_FIELDS", "many");
        assert!(
            Config::from_source(&m)
                .unwrap_err()
                .to_string()
                .contains("MAX_FIELDS")
        );
    }
}
