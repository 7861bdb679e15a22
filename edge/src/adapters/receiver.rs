//! The `Receiver` port over the Workers `fetch`: one POST to a webhook
//! endpoint, aborted by the runtime's own timer, redirects not followed.

use std::time::Duration;

use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::domain::ports::Receiver;

/// Webhook POSTs through `fetch`, each within `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct FetchReceiver {
    pub timeout: Duration,
}

impl Receiver for FetchReceiver {
    async fn post(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Result<(), String> {
        let h = Headers::new();
        for (k, v) in headers {
            h.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(h)
            .with_redirect(RequestRedirect::Manual)
            .with_body(Some(body.into()));
        let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
        // The runtime's own timer aborts the fetch (`worker::Delay` cannot
        // run under nodejs_compat, whose setTimeout returns an object).
        let ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(ms));
        let resp = Fetch::Request(req)
            .send_with_signal(&signal)
            .await
            .map_err(|e| match signal.aborted() {
                true => format!("no answer within {ms} ms"),
                false => e.to_string(),
            })?;
        match resp.status_code() {
            200..=299 => Ok(()),
            code @ 300..=399 => Err(format!(
                "the receiver answered {code}, a redirect, which is not followed"
            )),
            code => Err(format!("the receiver answered {code}")),
        }
    }
}
