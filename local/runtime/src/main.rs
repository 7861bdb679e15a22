//! pixport-local-runtime: a local AWS Lambda for one function.
//!
//! It serves the Lambda Runtime API (what a custom runtime's `bootstrap`
//! polls) and the Invoke API (what S3 and clients call), and runs the
//! bootstrap binary itself, restarting it when it exits, so the same binary
//! that ships to AWS runs locally unchanged.

mod config;
mod error;
mod ids;
mod schedule;
mod state;
mod supervisor;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::error::Error;
use crate::state::{Kind, Outcome, Queue, Settings};

/// Lambda's payload limits: 6 MB synchronous, 1 MB asynchronous.
const SYNC_LIMIT: usize = 6 * 1024 * 1024;
const ASYNC_LIMIT: usize = 1024 * 1024;

type Resp = Response<Full<Bytes>>;

struct App {
    cfg: Config,
    queue: Queue,
    supervisor: Arc<supervisor::Supervisor>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run() {
        tracing::error!("{e}");
        eprintln!("pixport-local-runtime: {e}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn run() -> Result<(), Error> {
    let cfg = Config::load(std::env::args().skip(1))?;
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| Error::Io(cfg.state_dir.display().to_string(), e))?;
    let queue = Queue::new(Settings {
        timeout: cfg.timeout,
        retry_delays: cfg.retry_delays.clone(),
        dlq: cfg.state_dir.join("dlq.jsonl"),
        keep_records: 500,
    });
    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| Error::Io(format!("bind {}", cfg.addr), e))?;
    let supervisor = Arc::new(supervisor::Supervisor::new(&cfg));
    let app = Arc::new(App {
        cfg: cfg.clone(),
        queue: queue.clone(),
        supervisor: supervisor.clone(),
    });
    tracing::info!(addr = %cfg.addr, function = %cfg.function_arn(), bootstrap = ?cfg.bootstrap, "lambda runtime emulator ready");
    let sup_task = cfg
        .bootstrap
        .clone()
        .map(|path| tokio::spawn(supervisor.clone().run(path, queue.clone())));
    let schedule_task = cfg
        .schedule
        .map(|period| tokio::spawn(schedule::run(cfg.clone(), period, queue.clone())));

    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(&app, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended with error");
            }
        });
    }
    supervisor.stop().await;
    for t in [sup_task, schedule_task].into_iter().flatten() {
        t.abort();
    }
    tracing::info!("lambda runtime emulator stopped");
    Ok(())
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// An Invoke API error in Lambda's shape: the code in `X-Amzn-ErrorType`.
fn api_error(status: StatusCode, error_type: &'static str, message: &str) -> Resp {
    let mut r = json(
        status,
        serde_json::json!({ "Type": "User", "message": message }).to_string(),
    );
    r.headers_mut().insert(
        "x-amzn-errortype",
        http::HeaderValue::from_static(error_type),
    );
    r
}

/// A Runtime API error: `{"errorMessage", "errorType"}`.
fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Resp {
    json(status, state::error_doc(message, error_type))
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Resp> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            &format!("Request must be smaller than {limit} bytes for the invoke operation"),
        )),
        Err(e) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            &e.to_string(),
        )),
    }
}

async fn route(app: &App, req: http::Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resp = match (&method, segs.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(app).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let id = (*id).to_owned();
            let body = match read_body(req.into_body(), SYNC_LIMIT).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            finish(app, &id, Outcome::Success(body))
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let id = (*id).to_owned();
            let error_type = req
                .headers()
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = match read_body(req.into_body(), SYNC_LIMIT).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let body = if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                body
            } else {
                state::error_doc(
                    &String::from_utf8_lossy(&body),
                    error_type.as_deref().unwrap_or("Runtime.Unknown"),
                )
            };
            finish(app, &id, Outcome::Error(body))
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let body = read_body(req.into_body(), SYNC_LIMIT)
                .await
                .unwrap_or_default();
            app.queue.init_error(&body);
            json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (&Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
            let name = (*name).to_owned();
            invoke(app, &name, req).await
        }
        (&Method::GET, ["_status"]) => status(app),
        _ => api_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no route for {method} {path}"),
        ),
    };
    if !path.ends_with("/next") {
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    }
    resp
}

async fn next(app: &App) -> Resp {
    let (id, payload, trace) = app.queue.next().await;
    let deadline = time::OffsetDateTime::now_utc() + app.cfg.timeout;
    let deadline_ms = deadline.unix_timestamp_nanos() / 1_000_000;
    tracing::info!(request_id = %id, "invocation handed to runtime");
    let mut r = json(StatusCode::OK, payload);
    let h = r.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            app.cfg.function_arn(),
        ),
        ("lambda-runtime-trace-id", trace),
    ];
    for (k, v) in pairs {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}

fn finish(app: &App, id: &str, outcome: Outcome) -> Resp {
    let ok = matches!(outcome, Outcome::Success(_));
    if app.queue.complete(id, outcome) {
        tracing::info!(request_id = %id, ok, "invocation finished");
        json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
    } else {
        runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        )
    }
}

/// The Invoke API (`lambda:InvokeFunction`), for the one configured function.
async fn invoke(app: &App, name: &str, req: http::Request<Incoming>) -> Resp {
    let wanted = name.split(':').collect::<Vec<_>>();
    // Accept a name, `name:qualifier`, or a full ARN, as Lambda does.
    let fn_name = match wanted.iter().position(|p| *p == "function") {
        Some(i) => wanted.get(i + 1).copied().unwrap_or(""),
        None => wanted.first().copied().unwrap_or(""),
    };
    if fn_name != app.cfg.function_name {
        return api_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!(
                "Function not found: arn:aws:lambda:{}:{}:function:{fn_name}",
                app.cfg.region, app.cfg.account_id
            ),
        );
    }
    let invocation_type = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    match invocation_type.as_str() {
        "DryRun" => json(StatusCode::NO_CONTENT, Bytes::new()),
        "Event" => {
            let payload = match read_body(req.into_body(), ASYNC_LIMIT).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let id = app.queue.submit(payload, Kind::Event);
            tracing::info!(request_id = %id, "async invocation queued");
            let mut r = json(StatusCode::ACCEPTED, Bytes::new());
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
        "RequestResponse" => {
            let payload = match read_body(req.into_body(), SYNC_LIMIT).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (tx, rx) = oneshot::channel();
            let id = app.queue.submit(payload, Kind::RequestResponse(tx));
            // The queue's own timeout answers first; this only guards a lost sender.
            let outcome =
                tokio::time::timeout(app.cfg.timeout + Duration::from_secs(600), rx).await;
            let mut r = match outcome {
                Ok(Ok(Outcome::Success(body))) => json(StatusCode::OK, body),
                Ok(Ok(Outcome::Error(body))) => {
                    let mut r = json(StatusCode::OK, body);
                    r.headers_mut().insert(
                        "x-amz-function-error",
                        http::HeaderValue::from_static("Unhandled"),
                    );
                    r
                }
                _ => api_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceException",
                    "invocation lost",
                ),
            };
            let h = r.headers_mut();
            h.insert(
                "x-amz-executed-version",
                http::HeaderValue::from_static("$LATEST"),
            );
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                h.insert("x-amzn-requestid", v);
            }
            r
        }
        other => api_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("invalid invocation type {other:?}"),
        ),
    }
}

fn status(app: &App) -> Resp {
    let (counts, queued, in_flight, records) = app.queue.status();
    let body = serde_json::json!({
        "function": app.cfg.function_arn(),
        "bootstrap": app.supervisor.snapshot(),
        "retryDelaysMs": app.cfg.retry_delays.iter().map(|d| d.as_millis() as u64).collect::<Vec<_>>(),
        "scheduleMs": app.cfg.schedule.map(|d| d.as_millis() as u64),
        "counts": counts,
        "queued": queued,
        "inFlight": in_flight,
        "invocations": records,
    });
    json(StatusCode::OK, body.to_string())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
