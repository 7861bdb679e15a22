//! WASI entry point: stdio and preopened files only; the pipeline is `resizer_wasi::run`.
//!
//! Success returns from `main` (exit 0) instead of calling `proc_exit`, so
//! embedding hosts see a normal return; failures exit with the class's code
//! after one JSON line on stderr.

use std::io::{Read, Write};

use resizer_wasi::options::{self, Command};
use resizer_wasi::{Error, ImageLimits, Result};

fn main() {
    if let Err(e) = real_main() {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", e.to_json());
        let _ = err.flush();
        let _ = std::io::stdout().flush();
        std::process::exit(e.exit_code());
    }
}

/// Reads at most `max_bytes + 1` bytes so an oversized input is refused
/// without buffering all of it.
fn read_input(path: Option<&str>, limits: &ImageLimits) -> Result<Vec<u8>> {
    let max = limits.max_bytes;
    // An input that does not fit the host's memory cap is over limits, not an I/O fault.
    let io = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::OutOfMemory => {
            Error::OverLimits(format!("{what}: input does not fit in memory"))
        }
        _ => Error::Io(format!("{what}: {e}")),
    };
    let mut buf = Vec::new();
    match path {
        None => {
            std::io::stdin()
                .lock()
                .take(max.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(|e| io("stdin", e))?;
        }
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| io(p, e))?;
            if let Ok(meta) = f.metadata() {
                limits.check_bytes(meta.len())?;
            }
            f.take(max.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(|e| io(p, e))?;
        }
    }
    Ok(buf)
}

fn real_main() -> Result<()> {
    let opts = match options::parse(std::env::args().skip(1))? {
        Command::Run(o) => o,
        Command::Help => {
            println!("{}", options::USAGE);
            return Ok(());
        }
        Command::Version => {
            println!("resizer {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
    };
    let input = read_input(opts.input.as_deref(), &opts.limits)?;
    let prepared = resizer_wasi::prepare(&input, &opts)?;
    drop(input);
    let out = resizer_wasi::finish(prepared, &opts)?;

    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    let werr = |e: std::io::Error| Error::Io(format!("write: {e}"));
    match &opts.out_dir {
        Some(dir) => {
            let manifest = out.manifest.with_files();
            let dir = std::path::Path::new(dir);
            for (v, bytes) in manifest.variants.iter().zip(&out.payloads) {
                let name = v.file.as_deref().unwrap_or("variant");
                std::fs::write(dir.join(name), bytes)
                    .map_err(|e| Error::Io(format!("{name}: {e}")))?;
            }
            let line = manifest.to_line();
            std::fs::write(dir.join("manifest.json"), format!("{line}\n"))
                .map_err(|e| Error::Io(format!("manifest.json: {e}")))?;
            writeln!(so, "{line}").map_err(werr)?;
        }
        None => {
            writeln!(so, "{}", out.manifest.to_line()).map_err(werr)?;
            for p in &out.payloads {
                so.write_all(p).map_err(werr)?;
            }
        }
    }
    so.flush().map_err(werr)?;
    Ok(())
}
