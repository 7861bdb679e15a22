//! The burst limit per token: Cloudflare's rate-limiting binding
//! (`[[ratelimits]]` in wrangler.toml), which `wrangler dev` runs locally
//! with the same rule, so tests exercise what production enforces.
//!
//! The `worker` crate's `RateLimiter` accepts the binding only if its JS
//! class is named `Ratelimit`, an implementation detail that neither
//! workerd nor miniflare's wrapped binding promises; the binding's one
//! documented method, `limit({key})`, is what both serve, so it is called
//! directly through `js_sys`.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

use crate::error::{ApiError, ApiResult};

/// The binding's name in wrangler.toml.
pub const BINDING: &str = "WRITE_LIMITER";
/// The binding's period (wrangler.toml `simple.period`): what a refused
/// client is told to wait at most.
pub const PERIOD_SECS: u32 = 10;

/// A rate-limiting binding.
pub struct Limiter(JsValue);

impl Limiter {
    /// The binding from the worker's environment; its absence is a
    /// configuration error, so a deploy without it is refused loudly rather
    /// than served without a limit.
    pub fn from_env(env: &Env) -> ApiResult<Self> {
        let binding = Reflect::get(env.as_ref(), &JsValue::from_str(BINDING))
            .ok()
            .filter(|b| b.is_object())
            .ok_or_else(|| ApiError::Config(format!("the {BINDING} binding is missing")))?;
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
