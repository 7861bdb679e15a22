//! Runs the function's `bootstrap` like Lambda's execution environment:
//! Lambda's documented variables, restarted whenever it exits or an
//! invocation times out, with in-flight work failed as `Runtime.ExitError`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::config::Config;
use crate::state::Queue;

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub path: Option<String>,
    pub pid: Option<u32>,
    pub starts: u64,
    pub exits: u64,
    pub last_exit: Option<String>,
}

pub struct Supervisor {
    env: Vec<(String, String)>,
    info: Mutex<Snapshot>,
    stop: Notify,
    stopped: Mutex<bool>,
}

impl Supervisor {
    pub fn new(cfg: &Config) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), cfg.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), cfg.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                cfg.memory_mb.to_string(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_TIMEOUT".into(),
                cfg.timeout.as_secs().to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/{}", cfg.function_name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME".into(),
                "local/[$LATEST]pixport".into(),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            (
                "AWS_EXECUTION_ENV".into(),
                "AWS_Lambda_provided.al2023".into(),
            ),
            ("AWS_REGION".into(), cfg.region.clone()),
            ("AWS_DEFAULT_REGION".into(), cfg.region.clone()),
            ("_HANDLER".into(), "bootstrap".into()),
            ("TZ".into(), ":UTC".into()),
        ];
        if let Some(dir) = cfg.bootstrap.as_ref().and_then(|p| p.parent()) {
            env.push(("LAMBDA_TASK_ROOT".into(), dir.display().to_string()));
        }
        env.extend(cfg.role_env.iter().map(|(k, v)| ((*k).into(), v.clone())));
        Self {
            env,
            info: Mutex::new(Snapshot {
                path: cfg.bootstrap.as_ref().map(|p| p.display().to_string()),
                ..Snapshot::default()
            }),
            stop: Notify::new(),
            stopped: Mutex::new(false),
        }
    }

    fn info(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.info().clone()
    }

    fn is_stopped(&self) -> bool {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn stop(&self) {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.stop.notify_one();
        // Give the supervisor loop a moment to kill and reap the child.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn spawn(&self, path: &PathBuf) -> std::io::Result<Child> {
        let mut cmd = Command::new(path);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = path.parent() {
            cmd.current_dir(dir);
        }
        cmd.spawn()
    }

    pub async fn run(self: Arc<Self>, path: PathBuf, queue: Queue) {
        let mut backoff = Duration::from_millis(200);
        while !self.is_stopped() {
            let started = Instant::now();
            let mut child = match self.spawn(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot start bootstrap");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            {
                let mut i = self.info();
                i.pid = child.id();
                i.starts += 1;
            }
            tracing::info!(pid = ?child.id(), path = %path.display(), "bootstrap started");
            let why = tokio::select! {
                r = child.wait() => match r {
                    Ok(s) => format!("Runtime exited with error: {s}"),
                    Err(e) => format!("Runtime wait failed: {e}"),
                },
                () = queue.reset.notified() => {
                    let _ = child.kill().await;
                    "Runtime reset after timeout".to_owned()
                },
                () = self.stop.notified() => {
                    let _ = child.kill().await;
                    break;
                },
            };
            tracing::warn!(reason = %why, "bootstrap exited; restarting");
            {
                let mut i = self.info();
                i.pid = None;
                i.exits += 1;
                i.last_exit = Some(why.clone());
            }
            queue.fail_in_flight(&why);
            // A crash loop should not spin; a long-lived runtime restarts fast.
            backoff = if started.elapsed() > Duration::from_secs(10) {
                Duration::from_millis(200)
            } else {
                (backoff * 2).min(Duration::from_secs(5))
            };
            tokio::select! {
                () = tokio::time::sleep(backoff) => {},
                () = self.stop.notified() => break,
            }
        }
        self.info().pid = None;
    }
}
