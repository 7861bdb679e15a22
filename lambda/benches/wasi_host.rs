//! Benchmark child for `bench/resizer`: runs `resizer.wasm` (or `.cwasm`)
//! through the Lambda host's own `WasiRunner`, so the table shows the module
//! under the Rust wasmtime embedding that production uses.
//!
//! `wasi_host MODULE IMAGE` runs once (the parent times the whole process,
//! as one cold Lambda invocation); `wasi_host MODULE IMAGE REPEAT` does one
//! warm-up and REPEAT timed runs and prints `{"wall_ms": [...], "cpu_ms": [...]}`;
//! IMAGE `--version` runs the module without image work (the host's own start).
//! Arguments after REPEAT go to the module (e.g. `--formats auto,webp,avif:640`).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pixport_lambda::wasi::{RunLimits, WasiRunner};

/// CPU time of this thread (the module runs on it), from the scheduler's
/// nanosecond counter.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, image, rest @ ..] = args.as_slice() else {
        eprintln!("usage: wasi_host MODULE IMAGE [REPEAT]");
        return ExitCode::from(2);
    };
    let repeat: usize = rest.first().and_then(|r| r.parse().ok()).unwrap_or(0);
    let runner = match WasiRunner::load(Path::new(module)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (input, argv) = if image == "--version" {
        (Bytes::new(), vec!["--version".to_string()])
    } else {
        match std::fs::read(image) {
            Ok(b) => (Bytes::from(b), rest.iter().skip(1).cloned().collect()),
            Err(e) => {
                eprintln!("{image}: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let limits = RunLimits {
        memory_bytes: 1 << 30,
        time: Duration::from_secs(60),
    };
    let version_only = image == "--version";
    // `--version` prints no manifest, so only the image runs are checked.
    let once = || match runner.run(input.clone(), &argv, &limits) {
        Err(_) if version_only => Ok(()),
        other => other.map(|_| ()),
    };
    if let Err(e) = once() {
        eprintln!("run: {e}");
        return ExitCode::FAILURE;
    }
    if repeat == 0 {
        return ExitCode::SUCCESS;
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, c) = (Instant::now(), thread_cpu());
        if let Err(e) = once() {
            eprintln!("run: {e}");
            return ExitCode::FAILURE;
        }
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push((thread_cpu() - c).as_secs_f64() * 1000.0);
    }
    println!("{}", serde_json::json!({"wall_ms": wall, "cpu_ms": cpu}));
    ExitCode::SUCCESS
}
