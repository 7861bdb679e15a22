//! The upload page's document (`/`), with the headers that depend on the
//! deployment.
//!
//! The page's files are static assets (`web/dist`, `[assets]` in
//! wrangler.toml), served without the worker, except the document itself:
//! `run_worker_first` sends `/` and `/index.html` here, and the worker
//! answers the asset (through the `ASSETS` binding) with a
//! Content-Security-Policy naming the one storage origin the page may
//! send files to, which only the configuration knows (local S3 on a port
//! of its own, a bucket's virtual-hosted name in AWS). The page is bundled
//! (no CDN, no inline script or style), so everything else is `'self'`.

use worker::{Env, Headers, Request, Response};

use super::error::ApiResult;
use crate::app::{App, ConfigError};
use crate::domain::error::Error;

/// The assets binding's name in wrangler.toml.
pub const ASSETS_BINDING: &str = "ASSETS";

/// Whether `path` is the page's document (what `run_worker_first` sends).
pub fn is_document(method: &str, path: &str) -> bool {
    matches!(method, "GET" | "HEAD") && matches!(path, "/" | "/index.html")
}

/// The page's policy: its own scripts, styles and API; images from itself
/// (the delivery route), the public base and the previews Uppy draws
/// (`blob:`, `data:`); requests to itself and the bucket (presigned part
/// PUTs); its own Web Worker (`worker-src 'self'`: the resizer that draws
/// previews and shrinks photos on the device; the worker's script gets a
/// policy of its own from `web/_headers`, the one place wasm may be
/// compiled); no plugins, frames, base rewriting or framing by other sites.
pub fn content_security_policy(bucket: &str, public: Option<&str>) -> String {
    let images = match public {
        Some(p) => format!("'self' blob: data: {p}"),
        None => "'self' blob: data:".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; \
         connect-src 'self' {bucket}; worker-src 'self'; font-src 'self'; manifest-src 'self'; \
         form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    )
}

/// The document from the assets, with the policy and the headers every
/// answer of the worker carries.
pub async fn serve(req: Request, env: &Env, app: &App) -> ApiResult<Response> {
    let (bucket, public) = &app.page_origins;
    let policy = content_security_policy(bucket, public.as_deref());
    let assets = env
        .assets(ASSETS_BINDING)
        .map_err(|_| ConfigError(format!("the {ASSETS_BINDING} binding is missing")))?;
    let failed = |e: worker::Error| Error::Runtime(format!("the assets did not answer: {e}"));
    let asset = assets.fetch_request(req).await.map_err(failed)?;
    // The asset's headers may be immutable: the answer gets its own.
    let headers = Headers::new();
    for (k, v) in asset.headers().entries() {
        headers.set(&k, &v).map_err(failed)?;
    }
    for (k, v) in [
        ("content-security-policy", policy.as_str()),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.set(k, v).map_err(failed)?;
    }
    Ok(Response::builder()
        .with_status(asset.status_code())
        .with_headers(headers)
        .body(asset.body().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_bucket_and_nothing_else_remote() {
        let p = content_security_policy("http://127.0.0.1:9800", None);
        assert!(
            p.contains("connect-src 'self' http://127.0.0.1:9800;"),
            "{p}"
        );
        // Images come from the worker's delivery route, not the bucket.
        assert!(p.contains("img-src 'self' blob: data:;"), "{p}");
        assert!(p.starts_with("default-src 'none';"));
        // The page compiles no wasm itself: its worker does.
        assert!(!p.contains("unsafe"), "{p}");
        assert!(p.contains("worker-src 'self';"), "{p}");
        let p = content_security_policy(
            "https://b.s3.eu-west-1.amazonaws.com",
            Some("https://cdn.example.org"),
        );
        assert!(p.contains("img-src 'self' blob: data: https://cdn.example.org;"));
        assert!(p.contains("connect-src 'self' https://b.s3.eu-west-1.amazonaws.com;"));
    }

    #[test]
    fn only_the_document_is_the_workers() {
        assert!(is_document("GET", "/"));
        assert!(is_document("HEAD", "/index.html"));
        assert!(!is_document("POST", "/"));
        assert!(!is_document("GET", "/app.js"));
        assert!(!is_document("GET", "/images"));
    }
}
