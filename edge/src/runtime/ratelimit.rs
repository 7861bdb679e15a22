//! Burst limits: Cloudflare's rate-limiting bindings (`[[ratelimits]]` in
//! wrangler.toml), which `wrangler dev` runs locally with the same rules, so
//! tests exercise what production enforces.
//!
//! Two bindings. `WRITE_LIMITER` counts every request that creates or
//! changes state, keyed by the token's owner id; which requests those are
//! is decided here, by route, in one place (`counts_as_write`), not by the
//! HTTP method alone: `GET /s3/params` creates a row. `READ_LIMITER` counts
//! every other request, keyed by the owner when a token came with it and
//! by the client's address (`CF-Connecting-IP`) when none did.
//!
//! The `worker` crate's `RateLimiter` accepts a binding only if its JS
//! class is named `Ratelimit`, an implementation detail that neither
//! workerd nor miniflare's wrapped binding promises; the binding's one
//! documented method, `limit({key})`, is what both serve, so it is called
//! directly through `js_sys`.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

/// The writes binding's name in wrangler.toml.
pub const WRITE_BINDING: &str = "WRITE_LIMITER";
/// The reads binding's name in wrangler.toml.
pub const READ_BINDING: &str = "READ_LIMITER";
/// Both bindings' period (wrangler.toml `simple.period`): what a refused
/// client is told to wait at most.
pub const PERIOD_SECS: u32 = 10;

/// Whether a request to `segments` with `method` creates or changes
/// state, and so counts against the writes limit. Every method but `GET`,
/// `HEAD` and `OPTIONS` does (an unknown one is refused anyway, after being
/// counted). Of the `GET`s, two write: `GET /s3/params` inserts a row and
/// presigns its PUT, and `GET /s3/multipart/{uploadId}/{part}` presigns a
/// part's PUT into the bucket.
pub fn counts_as_write(method: &str, segments: &[&str]) -> bool {
    match (method, segments) {
        ("GET", ["s3", "params"] | ["s3", "multipart", _, _]) => true,
        ("GET" | "HEAD" | "OPTIONS", _) => false,
        _ => true,
    }
}

/// What a read is counted under: the owner of a valid token, else the
/// client's address; `None` (not counted) only when the runtime gave no
/// address, which Cloudflare always does.
pub fn read_key(owner: Option<&str>, client_ip: Option<&str>) -> Option<String> {
    match (owner, client_ip.map(str::trim).filter(|ip| !ip.is_empty())) {
        (Some(owner), _) => Some(format!("owner:{owner}")),
        (None, Some(ip)) => Some(format!("ip:{ip}")),
        (None, None) => None,
    }
}

/// A rate-limiting binding the deploy lacks.
#[derive(Debug, thiserror::Error)]
#[error("the {0} binding is missing")]
pub struct MissingBinding(pub &'static str);

/// The two bindings.
pub struct Limiters {
    pub writes: Limiter,
    pub reads: Limiter,
}

impl Limiters {
    /// Both bindings from the worker's environment; a missing one is a
    /// configuration error, so a deploy without it is refused loudly
    /// rather than served without a limit.
    pub fn from_env(env: &Env) -> Result<Self, MissingBinding> {
        Ok(Limiters {
            writes: Limiter::from_env(env, WRITE_BINDING)?,
            reads: Limiter::from_env(env, READ_BINDING)?,
        })
    }
}

/// A rate-limiting binding.
pub struct Limiter(JsValue);

impl Limiter {
    fn from_env(env: &Env, name: &'static str) -> Result<Self, MissingBinding> {
        let binding = Reflect::get(env.as_ref(), &JsValue::from_str(name))
            .ok()
            .filter(|b| b.is_object())
            .ok_or(MissingBinding(name))?;
        Ok(Limiter(binding))
    }

    /// Counts one request for `key` and says whether it is within the limit.
    /// A binding that fails to answer lets the request through: the limit
    /// is a guard against bursts, and the quotas still hold.
    pub async fn allow(&self, key: &str) -> bool {
        match call_limit(&self.0, key).await {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::warn!(error = ?e, "the rate limiter did not answer; request allowed");
                true
            }
        }
    }
}

async fn call_limit(binding: &JsValue, key: &str) -> Result<bool, JsValue> {
    let limit: Function = Reflect::get(binding, &JsValue::from_str("limit"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let promise: js_sys::Promise = limit.call1(binding, &options)?.dyn_into()?;
    let outcome = js_sys::futures::JsFuture::from(promise).await?;
    Ok(Reflect::get(&outcome, &JsValue::from_str("success"))?
        .as_bool()
        .unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of `api::route` and `api::resumable::route`, and whether
    /// it creates or changes state.
    #[test]
    fn every_route_that_writes_is_counted_as_a_write() {
        let routes: &[(&str, &str, bool)] = &[
            ("GET", "healthz", false),
            ("GET", "openapi.json", false),
            ("POST", "echo", true),
            ("POST", "images", true),
            ("GET", "images", false),
            ("POST", "uploads", true),
            ("GET", "images/X", false),
            ("GET", "images/X/640", false),
            ("HEAD", "images/X/640", false),
            ("PATCH", "images/X", true),
            ("DELETE", "images/X", true),
            ("PUT", "webhook", true),
            ("GET", "webhook", false),
            ("DELETE", "webhook", true),
            ("GET", "s3/params", true),
            ("POST", "s3/multipart", true),
            ("GET", "s3/multipart/U", false),
            ("DELETE", "s3/multipart/U", true),
            ("GET", "s3/multipart/U/3", true),
            ("POST", "s3/multipart/U/complete", true),
            // Methods no route takes are counted before their 405.
            ("PUT", "images", true),
            ("QUERY", "images", true),
            ("OPTIONS", "images", false),
        ];
        for (method, path, writes) in routes {
            let segments: Vec<&str> = path.split('/').collect();
            assert_eq!(
                counts_as_write(method, &segments),
                *writes,
                "{method} /{path}"
            );
        }
    }

    #[test]
    fn reads_are_keyed_by_owner_else_by_address() {
        assert_eq!(
            read_key(Some("o1"), Some("1.2.3.4")).as_deref(),
            Some("owner:o1")
        );
        assert_eq!(
            read_key(None, Some("1.2.3.4")).as_deref(),
            Some("ip:1.2.3.4")
        );
        assert_eq!(read_key(None, Some(" ")), None);
        assert_eq!(read_key(None, None), None);
    }
}
