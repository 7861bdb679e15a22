//! Sends the `http::Request`s built by `pixport-aws` with the Workers `fetch`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::payload::Payload;

/// A response as `pixport-aws`'s parsers take it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends one request. An `Err` means no HTTP answer at all (connection
/// refused, DNS, reset): the upstream is unavailable, not refusing.
pub async fn send(req: http::Request<Bytes>) -> Result<Reply, String> {
    let (parts, body) = req.into_parts();
    let body = (!body.is_empty()).then(|| js_sys::Uint8Array::from(body.as_ref()).into());
    send_js(parts, body).await
}

/// Sends an upload's bytes: they already live in the JS heap, so `fetch`
/// takes them as they are.
pub async fn send_payload(req: http::Request<Payload>) -> Result<Reply, String> {
    let (parts, body) = req.into_parts();
    let body = (!body.is_empty()).then(|| body.to_js());
    send_js(parts, body).await
}

async fn send_js(parts: http::request::Parts, body: Option<JsValue>) -> Result<Reply, String> {
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        let v = value.to_str().map_err(|e| e.to_string())?;
        headers.set(name.as_str(), v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(parts.method.as_str().to_string()))
        .with_headers(headers);
    if body.is_some() {
        init.with_body(body);
    }
    let request =
        Request::new_with_init(&parts.uri.to_string(), &init).map_err(|e| e.to_string())?;
    // The request owns the body now; letting go of ours lets the collector
    // reclaim it as soon as `fetch` is done with it.
    drop(init);
    let mut response = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(response.status_code()).map_err(|e| e.to_string())?;
    let mut out = HeaderMap::new();
    for (name, value) in response.headers().entries() {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.append(n, v);
        }
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        headers: out,
        body,
    })
}
