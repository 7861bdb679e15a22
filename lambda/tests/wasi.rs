//! The real `resizer.wasm` under the host's caps. Skipped (with a note) when
//! the module has not been built: `cargo build --release -p resizer-wasi
//! --target wasm32-wasip1`, or point PIXPORT_RESIZER_WASM at it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use pixport_contract::Failure;
use pixport_lambda::error::Error;
use pixport_lambda::wasi::{RunLimits, WasiRunner, precompile};

fn wasm_path() -> Option<PathBuf> {
    let p = std::env::var_os("PIXPORT_RESIZER_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("../target"));
            target.join("wasm32-wasip1/release/resizer.wasm")
        });
    if !p.is_file() && std::env::var_os("PIXPORT_RESIZER_WASM").is_some() {
        panic!("PIXPORT_RESIZER_WASM={} is not a file", p.display());
    }
    p.is_file().then_some(p)
}

/// The photos `tests/photos/generate.py` makes during setup (`./run setup`).
fn photo(name: &str) -> Option<Bytes> {
    let dir = std::env::var_os("PIXPORT_PHOTOS")
        .map(PathBuf::from)
        .or_else(|| {
            let home = PathBuf::from(std::env::var_os("HOME")?);
            Some(home.join(".cache/pixport/photos"))
        })?;
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(Bytes::from(bytes)),
        Err(e) => panic!(
            "{}: {e} (run ./run setup to make the photos)",
            path.display()
        ),
    }
}

/// Precompiled for the explicit x86_64 Lambda CPU baseline, as packaging
/// does, so this also proves such a `.cwasm` loads on this host.
fn runner() -> Option<&'static WasiRunner> {
    static R: OnceLock<Option<WasiRunner>> = OnceLock::new();
    R.get_or_init(|| {
        let wasm = std::fs::read(wasm_path()?).ok()?;
        let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let cwasm = precompile(&wasm, Some(&target)).expect("precompile");
        let path = std::env::temp_dir().join(format!("pixport-test-{}.cwasm", std::process::id()));
        std::fs::write(&path, cwasm).unwrap();
        let r = WasiRunner::load(&path).expect("load cwasm");
        let _ = std::fs::remove_file(&path);
        Some(r)
    })
    .as_ref()
}

fn args() -> Vec<String> {
    ["--widths", "1920,640,320", "--quality", "82"]
        .map(String::from)
        .to_vec()
}

const ROOMY: RunLimits = RunLimits {
    memory_bytes: 1 << 30,
    time: Duration::from_secs(60),
};

fn class(e: &Error) -> Failure {
    e.failure()
}

#[test]
fn resizes_and_classifies_failures() {
    let (Some(r), Some(img)) = (runner(), photo("retina.jpg")) else {
        eprintln!("skipped: resizer.wasm or photos missing");
        return;
    };
    let out = r.run(img.clone(), &args(), &ROOMY).unwrap();
    assert!(!out.manifest.variants.is_empty());
    for (v, body) in out.manifest.variants.iter().zip(&out.payloads) {
        assert_eq!(body.len() as u64, v.bytes);
        assert!(body.starts_with(&[0xFF, 0xD8]), "{} is a JPEG", v.width);
    }

    let e = r
        .run(
            Bytes::from_static(b"\xFF\xD8\xFF\xE0 definitely not a jpeg"),
            &args(),
            &ROOMY,
        )
        .unwrap_err();
    assert_eq!(class(&e), Failure::Corrupt, "{e}");
    let e = r
        .run(Bytes::from_static(b"hello"), &args(), &ROOMY)
        .unwrap_err();
    assert_eq!(class(&e), Failure::UnsupportedFormat, "{e}");

    // 12 MP needs ~13 MiB of linear memory (input, planes, variants).
    let tiny_memory = RunLimits {
        memory_bytes: 4 << 20,
        time: Duration::from_secs(60),
    };
    let big = photo("p12mp.jpg").expect("p12mp.jpg next to retina.jpg");
    let e = r.run(big, &args(), &tiny_memory).unwrap_err();
    assert_eq!(class(&e), Failure::OverLimits, "{e}");

    let tiny_time = RunLimits {
        memory_bytes: 1 << 30,
        time: Duration::from_millis(1),
    };
    let e = r.run(img, &args(), &tiny_time).unwrap_err();
    assert_eq!(class(&e), Failure::Timeout, "{e}");
}

/// The pooling allocator hands every run the same, reused linear memory:
/// what an earlier (larger) image left there must not change a later result.
#[test]
fn reused_memory_changes_nothing() {
    let (Some(r), Some(small), Some(big)) = (runner(), photo("retina.jpg"), photo("p12mp.jpg"))
    else {
        eprintln!("skipped: resizer.wasm or photos missing");
        return;
    };
    let first = r.run(small.clone(), &args(), &ROOMY).unwrap();
    let big_out = r.run(big, &args(), &ROOMY).unwrap();
    assert_eq!(big_out.manifest.variants.len(), 3);
    let again = r.run(small, &args(), &ROOMY).unwrap();
    assert_eq!(first.payloads, again.payloads);
}
