//! `POST /images` over the in-memory ports: the multipart stream, the
//! fields, the sniff and the compensation, with their invariants
//! (`pixport_edge::fuzz`). The same bytes also go through the field rules
//! alone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pixport_edge::fuzz::upload_body(data);
    pixport_edge::fuzz::fields(data.get(2..).unwrap_or_default());
});
