//! This data centre's HTTP cache (`caches.default`), by URL.
//!
//! The Cache API is local to the data centre a request runs in: what one
//! stores, another does not see, and a delete reaches only this one (a
//! purge through the Cloudflare API reaches every one). It never fails a
//! request: an error reads as a miss and is logged.

use worker::{Cache, Response};

/// The stored answer for `key`, if this data centre has one.
pub async fn get(key: &str) -> Option<Response> {
    match Cache::default().get(key, false).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(key, error = %e, "cache read failed; answering from the origin");
            None
        }
    }
}

/// Stores `response` under `key`, for as long as its `Cache-Control` says.
pub async fn put(key: &str, response: Response) {
    if let Err(e) = Cache::default().put(key, response).await {
        tracing::warn!(key, error = %e, "cache write failed");
    }
}

/// Removes `key` here; whether anything was stored under it.
pub async fn delete(key: &str) -> bool {
    match Cache::default().delete(key, false).await {
        Ok(worker::CacheDeletionOutcome::Success) => true,
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(key, error = %e, "cache delete failed");
            false
        }
    }
}
