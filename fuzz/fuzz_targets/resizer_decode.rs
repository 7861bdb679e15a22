//! The resizer's probe, limits and decode (`resizer_wasi::prepare`), native,
//! under limits small enough that each input decodes in milliseconds: any
//! panic, over-allocation or out-of-bounds access is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resizer_wasi::{ImageLimits, Options};

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        widths: vec![320, 64],
        limits: ImageLimits {
            max_bytes: 1 << 20,
            max_pixels: 1 << 20,
            max_dimension: 4096,
        },
        ..Options::default()
    };
    if let Ok(prepared) = resizer_wasi::prepare(data, &opts) {
        let _ = resizer_wasi::finish(prepared, &opts);
    }
});
