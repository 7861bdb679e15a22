//! The header parser both sides share (`imagehead`) and the edge's sniff
//! on top of it: no panic, and a probe that succeeds names a size the
//! resizer's probe agrees with.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = imagehead::probe(data);
    if let Ok(h) = &head {
        assert!(h.width > 0 && h.height > 0);
        assert_eq!(imagehead::format_of(data), Some(h.format));
    }
    let resizer = resizer_wasi::probe::probe(data);
    if let (Ok(h), Ok(r)) = (&head, &resizer) {
        assert_eq!(
            (h.width, h.height),
            (r.width, r.height),
            "edge and resizer disagree"
        );
    }
    pixport_edge::fuzz::sniff(data);
});
