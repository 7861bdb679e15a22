//! The Cloudflare API's cache purge: removes URLs from the zone's cache in
//! every data centre, where `runtime::cache::delete` reaches only the one
//! a request runs in.

use std::time::Duration;

use serde_json::json;
use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// The Cloudflare API's cache purge for this worker's zone (`CF_ZONE_ID`,
/// `CF_PURGE_TOKEN`: a token with the zone's Cache Purge permission only,
/// `CF_API_URL`).
#[derive(Clone, PartialEq, Eq)]
pub struct CdnPurge {
    pub zone_id: String,
    pub token: String,
    /// `https://api.cloudflare.com/client/v4` unless set (tests: loopback).
    pub api_url: String,
}

impl std::fmt::Debug for CdnPurge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CdnPurge(zone {}, {})", self.zone_id, self.api_url)
    }
}

/// The API takes at most this many URLs per call (the free plan's limit,
/// the lowest).
pub const MAX_FILES_PER_CALL: usize = 30;
/// A purge that takes longer is given up on (and logged): the delete it
/// follows is done, and the data centres' own entries expire on their own.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Purges `urls` from the zone's cache, in calls of at most
/// [`MAX_FILES_PER_CALL`]; the first failure stops it.
pub async fn purge(cfg: &CdnPurge, urls: &[String]) -> Result<(), String> {
    for chunk in urls.chunks(MAX_FILES_PER_CALL) {
        call(cfg, chunk).await?;
    }
    Ok(())
}

async fn call(cfg: &CdnPurge, files: &[String]) -> Result<(), String> {
    let h = Headers::new();
    h.set("authorization", &format!("Bearer {}", cfg.token))
        .map_err(|e| e.to_string())?;
    h.set("content-type", "application/json")
        .map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(h)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(json!({ "files": files }).to_string().into()));
    let url = format!("{}/zones/{}/purge_cache", cfg.api_url, cfg.zone_id);
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let ms = u32::try_from(TIMEOUT.as_millis()).unwrap_or(u32::MAX);
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(ms));
    let mut resp = Fetch::Request(req)
        .send_with_signal(&signal)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status_code();
    // The API answers 200 with `success: false` for some refusals.
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if (200..300).contains(&status) && body["success"] == true {
        return Ok(());
    }
    Err(format!(
        "the Cloudflare API answered {status}: {}",
        body["errors"]
    ))
}
