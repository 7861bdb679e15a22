//! Data API responses: every operation's output, error bodies, typed rows
//! (JSON records and records with metadata) and the edge's image rows. Byte
//! 0 picks the status, the rest is the body.
#![no_main]

use std::collections::BTreeMap;

use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use pixport_aws::Operation;
use pixport_aws::dataapi::{
    BatchExecuteStatement, BeginTransaction, CommitTransaction, ExecuteStatement,
    RollbackTransaction,
};

const STATUSES: [u16; 6] = [200, 400, 403, 500, 503, 504];

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Row {
    id: String,
    n: Option<i64>,
    x: Option<f64>,
    b: Option<bool>,
    blob: Option<Vec<u8>>,
    rest: Option<BTreeMap<String, serde_json::Value>>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&s, body)) = data.split_first() else {
        return;
    };
    let status = StatusCode::from_u16(STATUSES[usize::from(s) % STATUSES.len()]).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-requestid", "req".parse().unwrap());
    if let Ok(out) = ExecuteStatement::parse(status, &headers, body) {
        let _ = out.rows::<serde_json::Value>();
        let _ = out.rows::<Row>();
        for record in &out.records {
            for field in record {
                let _ = field.to_json();
            }
        }
    }
    let _ = BatchExecuteStatement::parse(status, &headers, body);
    let _ = BeginTransaction::parse(status, &headers, body);
    let _ = CommitTransaction::parse(status, &headers, body);
    let _ = RollbackTransaction::parse(status, &headers, body);
    let e = pixport_aws::dataapi::parse_error(status, &headers, body);
    let _ = e.to_string();
    pixport_edge::fuzz::image_rows(body);
});
