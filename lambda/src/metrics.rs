//! Metrics as CloudWatch Embedded Metric Format lines: one JSON object per
//! settled image on stdout, which CloudWatch Logs turns into metrics in the
//! `pixport` namespace without an API call (or a permission) from the
//! function. Every line also carries the image and upload request ids, so
//! a metric's outliers lead back to their log lines.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The metrics' namespace.
pub const NAMESPACE: &str = "pixport";

/// What one resize measured, when it made variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resized {
    /// The source format (`jpeg`, `png`, ...).
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub module_ms: u64,
}

/// The input's size class by megapixels: resize time grows with pixels, so
/// each class gets its own time series.
pub fn input_class(width: u32, height: u32) -> &'static str {
    let mp = u64::from(width) * u64::from(height) / 1_000_000;
    match mp {
        0 => "under-1mp",
        1..=3 => "1-4mp",
        4..=15 => "4-16mp",
        16..=31 => "16-32mp",
        _ => "32mp-plus",
    }
}

/// One EMF line for a settled image: `Images` (count) by `Outcome`, and,
/// when it was resized, `ResizeMs`, `InputBytes` and `OutputBytes` by
/// `InputClass` and `Format`.
pub fn line(
    outcome: &str,
    resized: Option<&Resized>,
    image_id: &str,
    request_id: Option<&str>,
    now: SystemTime,
) -> String {
    let ts = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [["Outcome"]],
        "Metrics": [{"Name": "Images", "Unit": "Count"}],
    })];
    let mut root = json!({
        "Outcome": outcome,
        "Images": 1,
        "image_id": image_id,
        "request_id": request_id,
    });
    if let Some(r) = resized {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["InputClass", "Format"]],
            "Metrics": [
                {"Name": "ResizeMs", "Unit": "Milliseconds"},
                {"Name": "InputBytes", "Unit": "Bytes"},
                {"Name": "OutputBytes", "Unit": "Bytes"},
            ],
        }));
        if let Value::Object(m) = &mut root {
            m.insert("InputClass".into(), input_class(r.width, r.height).into());
            m.insert("Format".into(), r.format.clone().into());
            m.insert("ResizeMs".into(), r.module_ms.into());
            m.insert("InputBytes".into(), r.input_bytes.into());
            m.insert("OutputBytes".into(), r.output_bytes.into());
        }
    }
    if let Value::Object(m) = &mut root {
        m.insert(
            "_aws".into(),
            json!({"Timestamp": ts, "CloudWatchMetrics": directives}),
        );
    }
    root.to_string()
}

/// Writes one line to stdout whole (CloudWatch reads EMF per line).
pub fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resize_line_is_valid_emf_with_both_directives() {
        let r = Resized {
            format: "jpeg".into(),
            width: 4000,
            height: 3000,
            input_bytes: 5_000_000,
            output_bytes: 400_000,
            module_ms: 1234,
        };
        let text = line("ready", Some(&r), "IMG", Some("req-1"), UNIX_EPOCH);
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        // Every dimension and metric a directive names is a root member.
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            for dim in d["Dimensions"][0].as_array().unwrap() {
                assert!(v[dim.as_str().unwrap()].is_string(), "{dim}");
            }
            for m in d["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
            }
        }
        assert_eq!(v["InputClass"], "4-16mp");
        assert_eq!(
            (v["ResizeMs"].as_u64(), v["request_id"].as_str()),
            (Some(1234), Some("req-1"))
        );
        assert_eq!(v["_aws"]["Timestamp"], 0);
    }

    #[test]
    fn a_failure_counts_its_outcome_only() {
        let v: Value =
            serde_json::from_str(&line("failed", None, "IMG", None, UNIX_EPOCH)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        assert_eq!(
            (v["Outcome"].as_str(), v["Images"].as_u64()),
            (Some("failed"), Some(1))
        );
        assert!(v.get("ResizeMs").is_none());
    }

    #[test]
    fn classes_split_by_megapixels() {
        assert_eq!(input_class(640, 480), "under-1mp");
        assert_eq!(input_class(2000, 1500), "1-4mp");
        assert_eq!(input_class(8000, 6000), "32mp-plus");
        assert_eq!(input_class(5000, 4000), "16-32mp");
    }
}
