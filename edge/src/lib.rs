//! The pixport edge worker.

mod auth;
mod config;
mod error;
mod fields;
mod id;
mod model;
mod sniff;
mod upload;

use futures_util::StreamExt;
use serde_json::json;
use worker::{Context, Env, Request, Response, Result, Router, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/healthz", |_, _| Response::from_json(&json!({"status": "ok"})))
        .post_async("/echo", |req, _| echo(req))
        .run(req, env)
        .await
}

async fn echo(mut req: Request) -> Result<Response> {
    let ct = req.headers().get("content-type")?.unwrap_or_default();
    let boundary = match multer::parse_boundary(&ct) {
        Ok(b) => b,
        Err(e) => return Response::error(e.to_string(), 400),
    };
    let stream = SendStream(worker::send::SendWrapper::new(
        req.stream()?.map(|r| r.map(bytes::Bytes::from)),
    ));
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(|e| worker::Error::RustError(e.to_string()))? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let mut size = 0usize;
        while let Some(chunk) = field.chunk().await.map_err(|e| worker::Error::RustError(e.to_string()))? {
            size += chunk.len();
        }
        fields.push(json!({"name": name, "file_name": file_name, "size": size}));
    }
    Response::from_json(&json!({ "fields": fields }))
}

/// multer wants a `Send` stream, but a JS body stream is not `Send`. A Worker
/// isolate runs one thread, so the stream can never cross threads.
struct SendStream<S>(worker::send::SendWrapper<S>);

impl<S: futures_util::Stream + Unpin> futures_util::Stream for SendStream<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut *self.0).poll_next(cx)
    }
}
