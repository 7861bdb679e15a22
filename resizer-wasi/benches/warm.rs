//! Warm, in-process timing of `resizer_wasi::run` for bench/resizer/run:
//! the same code as the WASI binary, minus process and runtime start.
//!
//! usage: warm FILE REPEAT  -> one JSON line {"wall_ms":[..],"cpu_ms":[..]}
//! (one untimed warm-up first; CPU from /proc/self/stat, all threads).

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: warm FILE REPEAT");
        std::process::exit(2);
    };
    let input = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(6);
        }
    };
    let opts = resizer_wasi::Options::default();
    let mut times = Vec::with_capacity(n);
    let mut cpus = Vec::with_capacity(n);
    let _ = resizer_wasi::run(&input, &opts);
    for _ in 0..n {
        let t = Instant::now();
        let c = cpu_ms();
        match resizer_wasi::run(&input, &opts) {
            Ok(out) => std::hint::black_box(out),
            Err(e) => {
                eprintln!("{}", e.to_json());
                std::process::exit(e.exit_code());
            }
        };
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        cpus.push(cpu_ms() - c);
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "{{\"wall_ms\":[{}],\"cpu_ms\":[{}]}}",
        fmt(&times),
        fmt(&cpus)
    );
}

/// Process CPU time (user + system, all threads) in ms; 10 ms resolution.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10.0
}
