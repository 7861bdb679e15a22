//! Wall-clock time. `SystemTime::now()` panics on wasm32-unknown-unknown, so
//! in the Worker time comes from the JS clock; native tests use the OS clock.

use std::time::SystemTime;

#[cfg(target_arch = "wasm32")]
pub fn now() -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(js_sys::Date::now() as u64)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
