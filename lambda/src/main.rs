//! The Lambda `bootstrap`: build everything once, then serve invocations.
//!
//! `bootstrap --precompile [--target TRIPLE] resizer.wasm resizer.cwasm` is the
//! packaging step: it serialises the module with this binary's own engine
//! settings, so the `.cwasm` is guaranteed to load in the runtime.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use pixport_aws::dataapi::Database;
use pixport_aws::s3::Bucket;
use pixport_lambda::aws::{DataApiRows, S3Store, WasiResizer, http_client};
use pixport_lambda::config::{Config, ProcessEnv};
use pixport_lambda::handler::{Handler, Outcome};
use pixport_lambda::invocation::Invocation;
use pixport_lambda::wake::Waker;
use pixport_lambda::wasi::{WasiRunner, precompile};
use tracing::{error, info};

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--precompile") {
        return precompile_cmd(&args[1..]);
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "bootstrap stopped");
            ExitCode::FAILURE
        }
    }
}

fn precompile_cmd(args: &[String]) -> ExitCode {
    let (target, rest) = match args {
        [flag, t, rest @ ..] if flag == "--target" => (Some(t.as_str()), rest),
        rest => (None, rest),
    };
    let [input, output] = rest else {
        eprintln!("usage: bootstrap --precompile [--target TRIPLE] in.wasm out.cwasm");
        return ExitCode::from(2);
    };
    let result = std::fs::read(input)
        .map_err(|e| format!("{input}: {e}"))
        .and_then(|wasm| precompile(&wasm, target).map_err(|e| e.to_string()))
        .and_then(|cwasm| std::fs::write(output, cwasm).map_err(|e| format!("{output}: {e}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("precompile: {e}");
            ExitCode::FAILURE
        }
    }
}

/// CloudWatch stores each line as an event and adds its own timestamp, so
/// lines carry no ANSI colours; JSON (fields, and the runtime's `requestId`
/// span) when the function's log format is JSON or `PIXPORT_LOG_FORMAT=json`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIXPORT_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
        || std::env::var("PIXPORT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stdout);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .init();
    } else {
        builder.init();
    }
}

async fn serve(started: Instant) -> Result<(), lambda_runtime::Error> {
    let cfg = Config::from_env(&ProcessEnv)?;
    let runner = WasiRunner::load(&cfg.module_path)?;
    let client = http_client()?;
    let handler = Arc::new(Handler {
        objects: S3Store {
            client: client.clone(),
            bucket: Bucket::new(cfg.credentials.clone(), cfg.s3.clone(), cfg.bucket.clone()),
        },
        rows: DataApiRows {
            client: client.clone(),
            database: Database::new(cfg.credentials.clone(), cfg.data_api.clone()),
        },
        resizer: WasiResizer::new(runner, &cfg),
        wake: cfg.wake.clone().map(|config| Waker {
            client: client.clone(),
            config,
        }),
        bucket: cfg.bucket.clone(),
        retry: cfg.retry.clone(),
        max_bytes: cfg.limits.max_bytes,
        recipe: cfg.recipe().to_string(),
        redrive_wanted: AtomicBool::new(false),
    });
    info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        module = %cfg.module_path.display(),
        memory_mib = cfg.memory_cap_bytes >> 20,
        wake = cfg.wake.as_ref().map(|w| w.url.as_str()),
        time_cap_ms = cfg.time_cap.as_millis() as u64,
        "init done"
    );
    // A redrive starts no image it could not finish before the deadline:
    // one module run at its time cap, plus the S3 and Data API calls.
    let reserve = cfg.time_cap + Duration::from_secs(5);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move {
            match Invocation::parse(event.payload)? {
                Invocation::S3(s3) => {
                    let outcomes: Vec<Outcome> = handler.handle(&s3).await?;
                    Ok::<_, lambda_runtime::Error>(serde_json::json!({ "outcomes": outcomes }))
                }
                Invocation::Redrive => {
                    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
                    let stop_at = deadline.checked_sub(reserve).unwrap_or(SystemTime::now());
                    let done = handler.redrive(Some(stop_at)).await?;
                    Ok(serde_json::json!({ "redrive": done }))
                }
            }
        }
    }))
    .await
}
