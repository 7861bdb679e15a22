//! pixport-local-s3: the project's local stand-in for Amazon S3.
//!
//! Real S3 wire protocol and SigV4 checks come from s3s; storage from s3s-fs
//! under `.state/s3/<bucket>/`. What this binary adds is what production
//! relies on S3 for beyond storage: refusing corrupt bodies and sending
//! ObjectCreated notifications to the (local) Lambda, and authorizing every
//! request against deploy/template.yaml's IAM policies (`access`).

mod access;
mod checksum;
mod config;
mod deliver;
mod error;
mod event;
mod listing;
mod notify;
mod service;
mod uploads;
mod versions;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use pixport_local_iam::{Counters, Identities};
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::S3ServiceBuilder;
use s3s::{S3Result, s3_error};
use tokio::net::TcpListener;

use crate::access::IamAccess;
use crate::config::Config;
use crate::error::Error;
use crate::service::{LocalS3, Notifier, RequestMeta};

/// The local identities' keys. SimpleAuth answers an unknown key with
/// `NotSignedUp`; S3 says `InvalidAccessKeyId`, and clients branch on that code.
struct LocalAuth {
    identities: Arc<Identities>,
}

#[async_trait::async_trait]
impl S3Auth for LocalAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some((_, secret)) = self.identities.by_access_key(access_key) {
            Ok(SecretKey::from(secret.to_owned()))
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,s3s=warn,s3s_fs=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pixport-local-s3: {e}");
            1
        }
    };
    std::process::exit(code);
}

#[tokio::main]
async fn run() -> Result<(), Error> {
    let cfg = Config::load(std::env::args().skip(1))?;
    for b in &cfg.buckets {
        let dir = cfg.root.join(b);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    }
    let root = cfg
        .root
        .canonicalize()
        .map_err(|e| Error::Io(cfg.root.display().to_string(), e))?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| Error::Fs(format!("{e:?}")))?;
    let identities = Arc::new(Identities::load(&cfg.iam_policies)?);
    tracing::info!(
        file = %cfg.iam_policies.display(),
        principals = ?identities.principals().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "IAM policies loaded"
    );
    let counters = Arc::new(Counters::default());
    let rules = notify::Rules::load(&cfg.notifications, &cfg.lambda_endpoint)?;
    tracing::info!(rules = rules.len(), file = %cfg.notifications.display(), "notification rules loaded");
    let notifier = Arc::new(Notifier {
        rules,
        deliverer: deliver::Deliverer::spawn(cfg.delivery_attempts),
        sequencer: event::Sequencer::default(),
        region: cfg.region.clone(),
        owner_id: cfg.owner_id.clone(),
    });
    let service = {
        let mut b = S3ServiceBuilder::new(LocalS3::new(fs, root.clone(), notifier));
        b.set_auth(LocalAuth {
            identities: identities.clone(),
        });
        b.set_access(IamAccess {
            identities,
            counters: counters.clone(),
        });
        b.build()
    };

    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| Error::Io(format!("bind {}", cfg.addr), e))?;
    tracing::info!(addr = %cfg.addr, root = %root.display(), buckets = ?cfg.buckets, "local S3 ready");

    let counter = Arc::new(AtomicU64::new(0));
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let counter = counter.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                let service = service.clone();
                let counters = counters.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let meta = request_ids(remote, n);
                async move {
                    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
                    // Not S3: the local-only request counters (no bucket
                    // name can start with `_`, so no S3 path collides).
                    if path == COUNTERS_PATH {
                        return Ok(counters_response(&method, &counters));
                    }
                    // A browser sends parts straight here from the worker's page
                    // (another origin), as to a bucket with a CORS rule.
                    let origin = req.headers().get(http::header::ORIGIN).cloned();
                    if method == http::Method::OPTIONS && origin.is_some() {
                        return Ok(cors(origin, http::Response::new(s3s::Body::empty())));
                    }
                    req.extensions_mut().insert(meta.clone());
                    // A client that asked `Expect: 100-continue` and is
                    // refused before any 100 may or may not send its body
                    // (botocore sends none): the connection is closed after
                    // the refusal, as S3 does, so the body's bytes (or their
                    // absence) cannot be read as the next request's.
                    let expects_continue = req
                        .headers()
                        .get(http::header::EXPECT)
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
                    let result = service.call(req.map(s3s::Body::from)).await;
                    if let Ok(resp) = &result {
                        tracing::info!(%method, %path, status = resp.status().as_u16(), request_id = %meta.request_id, "request");
                    }
                    result.map(|mut resp| {
                        let refused = !resp.status().is_success();
                        let h = resp.headers_mut();
                        if let Ok(v) = http::HeaderValue::from_str(&meta.request_id) {
                            h.insert("x-amz-request-id", v);
                        }
                        if let Ok(v) = http::HeaderValue::from_str(&meta.host_id) {
                            h.insert("x-amz-id-2", v);
                        }
                        if expects_continue && refused {
                            h.insert(
                                http::header::CONNECTION,
                                http::HeaderValue::from_static("close"),
                            );
                        }
                        cors(origin, resp)
                    })
                }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection closed with error");
            }
        });
    }
    tracing::info!("local S3 stopped");
    Ok(())
}

/// `GET` answers `{principal: {operation: count}}`: every request that
/// reached authorization since start, by signer (`anonymous` for unsigned
/// ones), refused ones included. Monotonic: read before and after, subtract.
const COUNTERS_PATH: &str = "/__pixport/counters";

fn counters_response(method: &http::Method, counters: &Counters) -> http::Response<s3s::Body> {
    let (status, body) = if method == http::Method::GET {
        (http::StatusCode::OK, counters.to_json())
    } else {
        (
            http::StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"GET only"}"#.to_owned(),
        )
    };
    let mut resp = http::Response::new(s3s::Body::from(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// What S3 answers for a bucket whose CORS rule allows every origin,
/// method and header and exposes `ETag` (deploy/ sets the same rule).
fn cors<B>(origin: Option<http::HeaderValue>, mut resp: http::Response<B>) -> http::Response<B> {
    if let Some(o) = origin {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", o);
        h.insert(
            "access-control-allow-methods",
            http::HeaderValue::from_static("GET, PUT, POST, DELETE, HEAD"),
        );
        h.insert(
            "access-control-allow-headers",
            http::HeaderValue::from_static("*"),
        );
        h.insert(
            "access-control-expose-headers",
            http::HeaderValue::from_static("ETag"),
        );
        h.insert(
            "access-control-max-age",
            http::HeaderValue::from_static("3000"),
        );
        h.insert("vary", http::HeaderValue::from_static("Origin"));
    }
    resp
}

/// S3-looking request ids (16 upper-case hex) and host ids, unique per process.
fn request_ids(remote: std::net::SocketAddr, n: u64) -> RequestMeta {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let a = mix(nanos ^ n.rotate_left(32));
    let (b, c, d) = (mix(a), mix(a ^ 1), mix(a ^ 2));
    RequestMeta {
        remote,
        request_id: format!("{a:016X}"),
        host_id: format!("{b:016x}{c:016x}{d:016x}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
