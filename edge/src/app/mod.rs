//! The composition root: the configuration, the adapters and the rate
//! limiters, built once per isolate and shared by every request it serves.
//!
//! A Worker isolate runs one thread and lives across many requests, so
//! the first request (or cron run) parses the settings and builds the S3
//! and Data API clients; later ones reuse them. A configuration that does
//! not parse is kept as its error: every request answers `misconfigured`
//! (and the log names the setting) until a deploy fixes it.

pub mod config;
pub mod events;

use std::rc::Rc;

use crate::adapters::dataapi::Db;
use crate::adapters::jwks::Jwks;
use crate::adapters::purge;
use crate::adapters::receiver::FetchReceiver;
use crate::adapters::s3::S3;
use crate::adapters::wake;
use crate::domain::auth::Authenticator;
use crate::domain::images::Images;
use crate::domain::reprocess::Reprocess;
use crate::domain::upload::Uploads;
use crate::domain::webhook::Webhooks;
use crate::runtime::ratelimit::Limiters;
pub use config::{Config, ConfigError, Source};
use pixport_contract::keys;

/// Everything a request or a cron run needs besides its input.
pub struct App {
    pub config: Config,
    pub objects: S3,
    pub rows: Db,
    pub receiver: FetchReceiver,
    /// The identity provider's keys, when sign-in JWTs are configured.
    pub jwks: Option<Jwks>,
    /// The burst limits (`WRITE_LIMITER`, `READ_LIMITER`).
    pub limiters: Limiters,
    /// The origins the upload page may load images from and send files to
    /// (its Content-Security-Policy), computed once.
    pub page_origins: (String, Option<String>),
}

thread_local! {
    static APP: std::cell::OnceCell<Result<Rc<App>, ConfigError>> = const { std::cell::OnceCell::new() };
}

impl App {
    /// Builds the app from its settings and the limiter bindings.
    pub fn build(config: Config, limiters: Limiters) -> Result<App, ConfigError> {
        let objects = S3 {
            bucket: config.bucket.clone(),
            presign_ttl: std::time::Duration::from_secs(config.presign_ttl_secs),
            public_base_url: config.public_base_url.clone(),
            upload_bucket: config.upload_bucket.clone(),
        };
        let page_origins = objects
            .browser_origins()
            .map_err(|e| ConfigError(format!("S3_ENDPOINT or PUBLIC_BASE_URL: {e}")))?;
        Ok(App {
            jwks: config.jwt.as_ref().map(|j| Jwks::new(j.jwks_url.clone())),
            rows: Db {
                database: config.database.clone(),
            },
            receiver: FetchReceiver {
                timeout: config.webhook_timeout,
            },
            objects,
            limiters,
            page_origins,
            config,
        })
    }

    /// Purges `urls` from the zone's cache in every data centre
    /// (`CF_ZONE_ID`); `Ok(false)` when no purge is configured.
    pub async fn purge_everywhere(&self, urls: &[String]) -> Result<bool, String> {
        match &self.config.cdn_purge {
            Some(cfg) => purge::purge(cfg, urls).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// This isolate's app, built on first use from `env`.
    pub fn get(env: &worker::Env) -> Result<Rc<App>, ConfigError> {
        APP.with(|cell| {
            cell.get_or_init(|| {
                let config = Config::from_source(env)?;
                crate::runtime::logging::set_max_level(config.log_level);
                let limiters = Limiters::from_env(env).map_err(|e| ConfigError(e.to_string()))?;
                App::build(config, limiters).map(Rc::new)
            })
            .clone()
        })
    }

    pub fn authenticator(&self) -> Authenticator<'_, Jwks> {
        Authenticator {
            tokens: &self.config.tokens,
            jwt: self
                .config
                .jwt
                .as_ref()
                .zip(self.jwks.as_ref())
                .map(|(j, k)| (&j.rules, k)),
            grants: self.config.grant_keys.as_ref(),
        }
    }

    /// The upload service for one request (its id is stored with the
    /// original).
    pub fn uploads<'a>(&'a self, request_id: Option<&'a str>) -> Uploads<'a, S3, Db> {
        Uploads {
            objects: &self.objects,
            rows: &self.rows,
            limits: &self.config.limits,
            request_id,
        }
    }

    pub fn images(&self) -> Images<'_, S3, Db> {
        Images {
            objects: &self.objects,
            rows: &self.rows,
            limits: &self.config.limits,
        }
    }

    pub fn reprocess(&self) -> Reprocess<'_, Db> {
        Reprocess { queue: &self.rows }
    }

    /// Tells the Lambda's scheduled run to read the table at its next run
    /// (`keys::REDRIVE_SIGNAL`): work was queued for it. A failed write is
    /// logged; the sweep rewrites the signal every half hour anyway.
    pub async fn wake_redrive(&self, why: &str) {
        if let Err(e) = wake::signal(&self.config.bucket, keys::REDRIVE_SIGNAL, why).await {
            tracing::warn!(error = %e, "cannot signal the redrive; the sweep will");
        }
    }

    pub fn webhooks(&self) -> Webhooks<'_, Db, FetchReceiver> {
        Webhooks {
            store: &self.rows,
            receiver: &self.receiver,
            allow_private: self.config.webhook_allow_private,
            timeout: self.config.webhook_timeout,
        }
    }
}
