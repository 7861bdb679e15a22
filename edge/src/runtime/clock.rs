//! Wall-clock time and timers. `SystemTime::now()` panics on
//! wasm32-unknown-unknown, so in the Worker time comes from the JS clock;
//! native tests use the OS clock and have no timer.

use std::future::Future;
use std::time::{Duration, SystemTime};

#[cfg(target_arch = "wasm32")]
pub fn now() -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(js_sys::Date::now() as u64)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// `setTimeout` resolving a promise. Not `worker::Delay`: it takes the
/// timer id for a number, and workerd (nodejs_compat) returns an object, so
/// the debug build panics there and the release build cannot clear it.
#[cfg(target_arch = "wasm32")]
pub fn sleep(d: Duration) -> impl Future<Output = ()> {
    use wasm_bindgen::{JsCast, JsValue};
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &JsValue::from_str("setTimeout"))
            .and_then(|f| f.dyn_into::<js_sys::Function>());
        let started = set_timeout
            .and_then(|f| f.call2(&global, &resolve, &JsValue::from_f64(d.as_millis() as f64)));
        // No timer: go on at once; a caller's wait is then counted in turns only.
        if started.is_err() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    async move {
        let _ = worker::wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// Native builds (unit tests, fuzzing) do not wait: a caller that waits in
/// turns runs them all at once.
#[cfg(not(target_arch = "wasm32"))]
pub fn sleep(_: Duration) -> impl Future<Output = ()> {
    std::future::ready(())
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An S3 timestamp (`2026-11-30T14:05:09.000Z`) as a time; `None` if it is
/// not one. Fractions and an offset other than `Z` are not expected from S3.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s.get(4..5)? != "-" || s.get(10..11)? != "T" || !s.ends_with('Z') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_timestamps_parse_to_unix_time() {
        let t = |s| parse_rfc3339(s).map(|t| unix_ms(t) / 1000);
        assert_eq!(t("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(t("2026-11-30T14:05:09.000Z"), Some(1_796_047_509));
        assert_eq!(t("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(t("Mon, 30 Nov 2026"), None);
        assert_eq!(t("2026-13-01T00:00:00Z"), None);
    }
}
