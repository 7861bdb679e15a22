//! The checked-in JSON is the contract: each fixture parses into the
//! crate's types and writes back as the same JSON, so a renamed field or a
//! changed spelling fails here before it reaches either side.

use pixport_contract::manifest::Manifest;
use pixport_contract::{OutputFormat, Status, StoredVariant, keys};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses a fixture into `T` and checks that writing it back gives the same JSON.
fn round_trip<T: DeserializeOwned + serde::Serialize>(name: &str) -> T {
    let json = fixture(name);
    let parsed: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), json, "{name}");
    parsed
}

#[test]
fn manifest_round_trips() {
    let m: Manifest = round_trip("manifest.json");
    assert_eq!(m.version, pixport_contract::MANIFEST_VERSION);
    assert_eq!(m.variants.len(), 3);
    assert_eq!(m.variants[2].format, OutputFormat::Webp);
    let ends: Vec<u64> = m.variants.iter().map(|v| v.offset + v.bytes).collect();
    assert_eq!(ends.last(), Some(&m.payload_bytes));
    let p = m.placeholder.expect("the fixture has placeholders");
    assert_eq!(p.dominant_color.len(), 7);
}

#[test]
fn out_dir_manifest_keeps_file_names() {
    let m: Manifest = round_trip("manifest-out-dir.json");
    assert_eq!(m.variants[0].file.as_deref(), Some("200.png"));
    assert_eq!(m.skipped.len(), 2);
}

#[test]
fn short_manifest_fills_what_the_host_does_not_need() {
    let m: Manifest = serde_json::from_value(serde_json::json!({
        "version": 1,
        "source": {"format": "gif", "width": 10, "height": 20},
        "variants": []
    }))
    .unwrap();
    assert_eq!(m.source.orientation, 1);
    assert!(m.skipped.is_empty());
    assert!(m.placeholder.is_none());
}

#[test]
fn unknown_formats_are_refused() {
    let mut m = fixture("manifest.json");
    m["variants"][0]["format"] = "tiff".into();
    assert!(serde_json::from_value::<Manifest>(m).is_err());
}

#[test]
fn variants_column_round_trips_and_uses_the_key_layout() {
    let id = fixture("keys.json")["id"].as_str().unwrap().to_string();
    let variants: Vec<StoredVariant> = round_trip("variants.json");
    for v in &variants {
        assert_eq!(v.key, keys::variant(&id, v.width, v.format));
    }
}

/// The resizer writes a `content_type` beside each variant's format and
/// rows written before the type was derived hold one: neither is read, so
/// not even a lying one reaches what is stored or served.
#[test]
fn a_stated_content_type_is_never_read() {
    let mut m = fixture("manifest.json");
    m["variants"][0]["content_type"] = "text/html".into();
    let m: Manifest = serde_json::from_value(m).unwrap();
    assert_eq!(m.variants[0].format.content_type(), "image/jpeg");
    let mut rows = fixture("variants.json");
    rows[0]["content_type"] = "text/html".into();
    let rows: Vec<StoredVariant> = serde_json::from_value(rows.clone()).unwrap();
    let written = serde_json::to_value(&rows[0]).unwrap();
    assert!(written.get("content_type").is_none(), "{written}");
}

#[test]
fn statuses_round_trip_in_lifecycle_order() {
    let statuses: Vec<Status> = round_trip("statuses.json");
    assert_eq!(statuses, Status::ALL);
}

#[test]
fn key_layout_matches_the_fixture() {
    #[derive(Deserialize)]
    struct Variant {
        width: u32,
        format: OutputFormat,
        key: String,
    }
    #[derive(Deserialize)]
    struct Keys {
        id: String,
        original: String,
        variants_prefix: String,
        variants: Vec<Variant>,
    }
    let k: Keys = serde_json::from_value(fixture("keys.json")).unwrap();
    assert_eq!(keys::original(&k.id), k.original);
    assert_eq!(keys::original_id(&k.original), Some(k.id.as_str()));
    assert_eq!(keys::variants_prefix(&k.id), k.variants_prefix);
    for v in &k.variants {
        assert_eq!(keys::variant(&k.id, v.width, v.format), v.key);
    }
}
