//! What handlers read from a request: headers, the caller, query
//! parameters, a bounded JSON body, the body as a stream.

use futures_util::StreamExt;
use serde::Deserialize;
use worker::{Request, Url};

use super::error::{ApiError, ApiResult};
use crate::domain::error::Error;
use crate::runtime::body;

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The first value of query parameter `name`.
pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Reads `?duplicates=allow|return` (default `return`): whether an upload
/// of bytes the owner already has keeps a second copy. Any other
/// parameter is refused.
pub fn duplicates_allowed(url: &Url) -> ApiResult<bool> {
    let mut allow = false;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("duplicates", "allow") => allow = true,
            ("duplicates", "return") => allow = false,
            _ => return Err(ApiError::InvalidQuery("duplicates (allow or return)")),
        }
    }
    Ok(allow)
}

/// The body's chunks as a `Send` stream (what multer takes), and the rest
/// of it to let go after a refusal.
pub fn body_stream(req: &mut Request) -> ApiResult<(SendStream<body::Chunks>, body::Rest)> {
    let (chunks, rest) = body::chunks(req).map_err(|e| Error::MalformedMultipart(e.to_string()))?;
    Ok((SendStream(worker::send::SendWrapper::new(chunks)), rest))
}

/// Reads a JSON body of at most `max` bytes: refused by its declared length
/// before reading, and while streaming when it has none or lies.
pub async fn read_json<T: for<'de> Deserialize<'de>>(
    req: &mut Request,
    max: usize,
) -> ApiResult<T> {
    let body = read_bytes(req, max).await?;
    serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// Reads a body of at most `max` bytes, refused like [`read_json`]'s.
pub async fn read_bytes(req: &mut Request, max: usize) -> ApiResult<Vec<u8>> {
    let too_large = || Error::PayloadTooLarge(format!("JSON body over {max} bytes"));
    let declared = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large().into());
    }
    let mut body = Vec::new();
    let (mut stream, _) = body_stream(req)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(too_large().into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// JSON has one number type: `4418065.0` is the integer the schema allows
/// (found by schemathesis), so a whole float counts; one past `u64` (read
/// as a float) saturates, and the size limit refuses it as too large.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
}

/// [`whole_number`] for an optional member.
pub fn whole_number_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    whole_number(d).map(Some)
}

/// Lets a refused upload's unread body go (up to `max` bytes), so a client
/// still sending gets the answer instead of a reset connection.
pub async fn drain(req: &mut Request, max: u64) {
    body::Rest::of(req).discard(max).await;
}

/// multer wants a `Send` stream, but a JS body stream is not `Send`. A Worker
/// isolate runs one thread, so the stream can never cross threads.
pub struct SendStream<S>(pub worker::send::SendWrapper<S>);

impl<S: futures_util::Stream + Unpin> futures_util::Stream for SendStream<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut *self.0).poll_next(cx)
    }
}
