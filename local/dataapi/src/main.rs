//! Local RDS Data API server: AWS's wire format in front of a local MariaDB,
//! so pixport's Data API client runs unmodified against it.

mod api;
mod aurora;
mod config;
mod convert;
mod error;
mod iam;
mod jdbc;
mod sigv4;
mod sql;
mod tx;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio::net::TcpListener;

use crate::api::App;
use crate::config::Config;
use crate::error::ApiError;
use crate::iam::Iam;

/// Larger than any valid request (SQL is capped at 64 KiB, parameters add
/// more); keeps a runaway client from filling memory.
const MAX_REQUEST_BYTES: usize = 16 << 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cfg = Config::from_env()?;
    let aurora = aurora::Settings::from_env().map_err(|e| format!("config: {e}"))?;
    tracing::info!(config = ?cfg, aurora = ?aurora, "starting");

    let pool = Pool::new(db_opts(&cfg, &cfg.db_user, &cfg.db_password));
    // Fail at start, not on the first request, when MariaDB is not there.
    // The roles' users may not exist yet (their migration makes them): their
    // pools connect on first use, and fail then as Aurora would.
    drop(
        pool.get_conn()
            .await
            .map_err(|e| format!("cannot reach MariaDB: {e}"))?,
    );
    let mut by_secret = vec![(cfg.secret_arn.clone(), pool)];
    for s in &cfg.role_secrets {
        by_secret.push((
            s.arn.clone(),
            Pool::new(db_opts(&cfg, &s.user, &s.password)),
        ));
    }
    let pools = api::Pools::new(by_secret);

    let iam = Arc::new(Iam {
        identities: pixport_local_iam::Identities::load(&cfg.iam_policies)?,
        counters: pixport_local_iam::Counters::default(),
    });
    let txs = tx::Transactions::new(cfg.tx_idle_timeout);
    tokio::spawn(txs.clone().reap_forever());
    let listener = TcpListener::bind(cfg.addr).await?;
    let cluster = aurora::Cluster::new(aurora, &cfg.cluster_arn);
    let app = Arc::new(App {
        cfg,
        pools,
        txs,
        cluster,
    });
    tracing::info!(addr = %app.cfg.addr, "ready");

    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                };
                let (app, iam) = (app.clone(), iam.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(app.clone(), iam.clone(), req));
                    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    app.pools.disconnect().await;
    Ok(())
}

fn db_opts(cfg: &Config, user: &str, password: &str) -> OptsBuilder {
    let pool_opts =
        PoolOpts::default().with_constraints(PoolConstraints::new(1, 50).unwrap_or_default());
    OptsBuilder::default()
        .ip_or_hostname(cfg.db_host.clone())
        .tcp_port(cfg.db_port)
        .socket(cfg.db_socket.clone())
        .user(Some(user.to_owned()))
        .pass(Some(password.to_owned()))
        .db_name(Some(cfg.db_name.clone()))
        // JDBC's default: UPDATE reports matched rows, as the Data API does.
        .client_found_rows(true)
        .prefer_socket(false)
        .pool_opts(pool_opts)
}

async fn handle(
    app: Arc<App>,
    iam: Arc<Iam>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = std::time::Instant::now();
    let path = req.uri().path().to_owned();
    if let Some(local) = app
        .cluster
        .local_route(&req, app.txs.open(), &app.cfg.allowed_hosts)
    {
        return Ok(local);
    }
    app.cluster.count_call();
    let result = route(&app, &iam, req).await;
    let resp = match result {
        Ok(body) => {
            tracing::debug!(%path, ms = started.elapsed().as_millis() as u64, "ok");
            respond(StatusCode::OK, None, body)
        }
        Err(e) => {
            let (status, name, message) = e.parts();
            tracing::info!(%path, status = status.as_u16(), error = name, %message, "refused");
            respond(status, Some(name), e.body())
        }
    };
    Ok(resp)
}

fn respond(status: StatusCode, error_type: Option<&str>, body: String) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-RequestId", request_id());
    if let Some(t) = error_type {
        b = b.header("x-amzn-ErrorType", t);
    }
    b.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("Invalid request body: {e}")))
}

/// `GET` answers `{principal: {operation: count}}`: every request whose
/// signature verified since start, refused ones included. Monotonic: read
/// before and after, subtract.
const COUNTERS_PATH: &str = "/__pixport/counters";

async fn route(app: &App, iam: &Iam, req: Request<Incoming>) -> Result<String, ApiError> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| ApiError::bad(format!("could not read request body: {e}")))?
        .to_bytes();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !app.cfg.allowed_hosts.contains(&host) {
        return Err(ApiError::ForbiddenHost(host));
    }
    if parts.uri.path() == COUNTERS_PATH && parts.method == Method::GET {
        return Ok(iam.counters.to_json());
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let principal = sigv4::verify(
        &iam.identities,
        &app.cfg.region,
        parts.method.as_str(),
        path_and_query,
        &parts.headers,
        &body,
        SystemTime::now(),
    )?;
    let operation = iam::operation(parts.uri.path());
    iam.counters.count(
        &principal.name,
        operation.map_or("UnknownOperation", |(name, _)| name),
    );
    if parts.method != Method::POST {
        return Err(ApiError::bad(format!("{} is not supported", parts.method)));
    }
    if let Some((_, action)) = operation {
        iam.authorize(&principal, action, &body)?;
    }
    let json = match parts.uri.path() {
        "/Execute" => {
            let resp = app.execute(parse(&body)?).await?;
            serde_json::to_string(&resp).map_err(|e| ApiError::Internal(e.to_string()))?
        }
        "/BatchExecute" => app.batch_execute(parse(&body)?).await?.to_string(),
        "/BeginTransaction" => app.begin(parse(&body)?).await?.to_string(),
        "/CommitTransaction" => app.end(parse(&body)?, true).await?.to_string(),
        "/RollbackTransaction" => app.end(parse(&body)?, false).await?.to_string(),
        other => return Err(ApiError::bad(format!("Unknown operation {other}"))),
    };
    if json.len() > app.cfg.max_response_bytes {
        return Err(api::response_too_large());
    }
    Ok(json)
}
