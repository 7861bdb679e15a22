//! Sends the `http::Request`s built by `pixport-aws` with the Workers `fetch`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use pixport_aws::{Error as AwsError, Operation, ResumeWait, Service};
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response, ResponseBody};

use crate::runtime::clock;
use crate::runtime::payload::Payload;

/// Runs one `pixport-aws` operation against `target`: signs it now, sends
/// it, reads the answer. A Data API call refused because the Aurora
/// cluster is resuming from auto-pause (or throttled) is sent again with
/// backoff for up to `ResumeWait::INTERACTIVE`'s budget (22 s): the first
/// request after a pause then answers late instead of failing; past the
/// budget the refusal is returned (503 `database_unavailable`).
pub async fn run<O: Operation>(target: &O::Target, op: &O) -> Result<O::Output, AwsError> {
    if O::SERVICE != Service::DataApi {
        return once(target, op).await;
    }
    let started = clock::now();
    ResumeWait::INTERACTIVE
        .run(
            || async {
                let out = once(target, op).await;
                if let Err(e) = &out
                    && ResumeWait::applies(e)
                {
                    tracing::info!(error = %e, "the database is resuming; waiting");
                }
                out
            },
            clock::sleep,
            || clock::now().duration_since(started).unwrap_or_default(),
        )
        .await
}

async fn once<O: Operation>(target: &O::Target, op: &O) -> Result<O::Output, AwsError> {
    let reply = send(O::SERVICE, op.request(target, clock::now())?).await?;
    O::parse(reply.status, &reply.headers, &reply.body)
}

/// A response as `pixport-aws`'s parsers take it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends one request to `service`. No HTTP answer at all (connection
/// refused, DNS, reset) is `Unreachable`: the service is unavailable, not
/// refusing. A request `fetch` cannot even represent is `InvalidInput`.
pub async fn send(service: Service, req: http::Request<Bytes>) -> Result<Reply, AwsError> {
    let (parts, body) = req.into_parts();
    let body = (!body.is_empty()).then(|| js_sys::Uint8Array::from(body.as_ref()).into());
    send_js(service, parts, body).await
}

/// Sends an upload's bytes: they already live in the JS heap, so `fetch`
/// takes them as they are.
pub async fn send_payload(
    service: Service,
    req: http::Request<Payload>,
) -> Result<Reply, AwsError> {
    let (parts, body) = req.into_parts();
    let body = (!body.is_empty()).then(|| body.to_js());
    send_js(service, parts, body).await
}

async fn send_js(
    service: Service,
    parts: http::request::Parts,
    body: Option<JsValue>,
) -> Result<Reply, AwsError> {
    let (status, headers, mut response) = fetch_js(service, parts, body).await?;
    let body = response
        .bytes()
        .await
        .map_err(|e| AwsError::unreachable(service, e))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Runs one `pixport-aws` operation whose success body is for the client,
/// not for the worker: the body stays a JS stream that `fetch`'s response
/// hands on untouched, so an object of any size never enters wasm memory.
/// An error answer is read whole, as its document is small.
pub async fn open<O: Operation>(
    target: &O::Target,
    op: &O,
) -> Result<(O::Output, ResponseBody), AwsError> {
    let (parts, _) = op.request(target, clock::now())?.into_parts();
    let (status, headers, mut response) = fetch_js(O::SERVICE, parts, None).await?;
    if !status.is_success() {
        let body = response
            .bytes()
            .await
            .map_err(|e| AwsError::unreachable(O::SERVICE, e))?;
        return O::parse(status, &headers, &body).map(|out| (out, ResponseBody::Empty));
    }
    let out = O::parse(status, &headers, &[])?;
    Ok((out, response.body().clone()))
}

async fn fetch_js(
    service: Service,
    parts: http::request::Parts,
    body: Option<JsValue>,
) -> Result<(StatusCode, HeaderMap, Response), AwsError> {
    let invalid = |e: worker::Error| AwsError::InvalidInput(format!("{service} request: {e}"));
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        let v = value
            .to_str()
            .map_err(|e| AwsError::InvalidInput(format!("{service} request header {name}: {e}")))?;
        headers.set(name.as_str(), v).map_err(invalid)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(parts.method.as_str().to_string()))
        .with_headers(headers);
    if body.is_some() {
        init.with_body(body);
    }
    let request = Request::new_with_init(&parts.uri.to_string(), &init).map_err(invalid)?;
    // The request owns the body now; letting go of ours lets the collector
    // reclaim it as soon as `fetch` is done with it.
    drop(init);
    let unreachable = |e: worker::Error| AwsError::unreachable(service, e);
    let response = Fetch::Request(request).send().await.map_err(unreachable)?;
    let status = StatusCode::from_u16(response.status_code())
        .map_err(|e| AwsError::unreachable(service, format!("bad status: {e}")))?;
    let mut out = HeaderMap::new();
    for (name, value) in response.headers().entries() {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.append(n, v);
        }
    }
    Ok((status, out, response))
}
