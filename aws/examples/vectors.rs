//! Test driver for the cross-checks in `tests/aws/`: reads a JSON array of
//! cases on stdin, runs each through the crate, prints a JSON array of
//! results (one per case, `{"ok": ...}` or `{"error": ...}`).
//!
//! The Python side produces the same thing with boto3/botocore and compares.

use std::io::Read;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use pixport_aws::dataapi::{self, Database};
use pixport_aws::s3::{self, Bucket, CompletedPart, PresignOptions};
use pixport_aws::{
    Checksum, ChecksumAlgorithm, Credentials, DataApiConfig, Error, Operation, Region, S3Config,
    S3Endpoint,
};
use serde_json::{Value, json};

type R = Result<Value, String>;

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn req_s(v: &Value, k: &str) -> Result<String, String> {
    s(v, k).ok_or_else(|| format!("case needs string {k}"))
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

fn creds(c: &Value) -> Result<Credentials, String> {
    let c = c.get("creds").ok_or("case needs creds")?;
    Ok(Credentials::new(
        req_s(c, "access_key_id")?,
        req_s(c, "secret_access_key")?,
        s(c, "session_token"),
    ))
}

fn time(c: &Value) -> Result<SystemTime, String> {
    let secs = u(c, "time").ok_or("case needs time")?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn s3_cfg(c: &Value) -> Result<S3Config, String> {
    let e = c.get("endpoint").ok_or("case needs endpoint")?;
    Ok(S3Config {
        region: Region::new(req_s(c, "region")?),
        endpoint: S3Endpoint::custom(
            &req_s(e, "base_url")?,
            e.get("path_style")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )
        .map_err(|e| e.to_string())?,
    })
}

fn algorithm(name: &str) -> Result<ChecksumAlgorithm, String> {
    match name {
        "sha256" => Ok(ChecksumAlgorithm::Sha256),
        "crc32c" => Ok(ChecksumAlgorithm::Crc32c),
        other => Err(format!("unknown checksum {other}")),
    }
}

fn checksum(v: &Value) -> Result<Option<Checksum>, String> {
    match v.get("checksum") {
        None | Some(Value::Null) => Ok(None),
        Some(c) => Ok(Some(Checksum {
            algorithm: algorithm(&req_s(c, "algorithm")?)?,
            value: req_s(c, "value")?,
        })),
    }
}

fn headers_json(h: &HeaderMap) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in h {
        m.insert(
            k.as_str().to_owned(),
            Value::String(v.to_str().unwrap_or("<binary>").to_owned()),
        );
    }
    Value::Object(m)
}

fn headers_in(c: &Value) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    if let Some(Value::Object(m)) = c.get("headers") {
        for (k, v) in m {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            let value =
                HeaderValue::from_str(v.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
            h.append(name, value);
        }
    }
    Ok(h)
}

fn request_json(r: &Request<Bytes>) -> Value {
    json!({
        "method": r.method().as_str(),
        "url": r.uri().to_string(),
        "headers": headers_json(r.headers()),
        "body_b64": STANDARD.encode(r.body()),
    })
}

fn error_json(e: &Error) -> Value {
    let retryable = e.is_retryable();
    match e {
        Error::S3(s) => json!({
            "type": "s3", "status": s.status.as_u16(), "code": s.code, "message": s.message,
            "request_id": s.request_id, "host_id": s.host_id, "retryable": retryable,
        }),
        Error::DataApi(d) => json!({
            "type": "dataapi", "status": d.status.as_u16(), "kind": format!("{:?}", d.kind),
            "code": d.code, "message": d.message, "request_id": d.request_id,
            "db_connection_id": d.db_connection_id, "retryable": retryable,
        }),
        other => json!({"type": "other", "message": other.to_string(), "retryable": retryable}),
    }
}

fn presign_opts(c: &Value) -> Result<PresignOptions, String> {
    let mut opts = PresignOptions::new(
        Duration::from_secs(u(c, "expires").ok_or("case needs expires")?),
        time(c)?,
    );
    opts.content_type = s(c, "content_type");
    opts.content_length = u(c, "content_length");
    opts.checksum = checksum(c)?;
    Ok(opts)
}

fn bucket(c: &Value) -> Result<Bucket, String> {
    Ok(Bucket::new(creds(c)?, s3_cfg(c)?, req_s(c, "bucket")?))
}

fn presign(c: &Value) -> R {
    let (bucket, key) = (bucket(c)?, req_s(c, "key")?);
    let op = req_s(c, "op")?;
    let p = match op.as_str() {
        "presign_put" => bucket.presign_put(&key, &presign_opts(c)?),
        "presign_get" => {
            let o = presign_opts(c)?;
            bucket.presign_get(&key, o.expires_in, o.now)
        }
        "presign_upload_part" => bucket.presign_upload_part(
            &key,
            &req_s(c, "upload_id")?,
            u(c, "part_number").ok_or("needs part_number")? as u32,
            &presign_opts(c)?,
        ),
        _ => return Err(format!("unknown op {op}")),
    };
    match p {
        Ok(p) => Ok(
            json!({"ok": {"method": p.method.as_str(), "url": p.url, "headers": headers_json(&p.headers)}}),
        ),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn s3_signed(c: &Value) -> R {
    let (b, now) = (bucket(c)?, time(c)?);
    let key = s(c, "key").unwrap_or_default();
    let key = key.as_str();
    let action = req_s(c, "action")?;
    let r = match action.as_str() {
        "get" => s3::GetObject { key }.request(&b, now),
        "head" => s3::HeadObject { key }.request(&b, now),
        "delete" => s3::DeleteObject { key }.request(&b, now),
        "put" => {
            let body = STANDARD
                .decode(s(c, "body_b64").unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let opts = s3::PutObjectOptions {
                content_type: s(c, "content_type"),
                checksum: s(c, "checksum_algorithm")
                    .map(|a| algorithm(&a))
                    .transpose()?,
                cache_control: s(c, "cache_control"),
            };
            s3::PutObject {
                key,
                body: Bytes::from(body),
                options: opts,
            }
            .request(&b, now)
        }
        "list" => {
            let l = c.get("list").cloned().unwrap_or(json!({}));
            let list = s3::ListObjectsV2 {
                prefix: s(&l, "prefix"),
                delimiter: s(&l, "delimiter"),
                continuation_token: s(&l, "continuation_token"),
                start_after: s(&l, "start_after"),
                max_keys: u(&l, "max_keys").map(|m| m as u32),
            };
            list.request(&b, now)
        }
        "create_mpu" => {
            let options = s3::MultipartOptions {
                metadata: Vec::new(),
                content_type: s(c, "content_type"),
                checksum_algorithm: s(c, "checksum_algorithm")
                    .map(|a| algorithm(&a))
                    .transpose()?,
            };
            s3::CreateMultipartUpload { key, options }.request(&b, now)
        }
        "complete_mpu" => {
            let mut parts = Vec::new();
            for p in c
                .get("parts")
                .and_then(Value::as_array)
                .ok_or("needs parts")?
            {
                parts.push(CompletedPart {
                    part_number: u(p, "part_number").ok_or("part_number")? as u32,
                    etag: req_s(p, "etag")?,
                    checksum: checksum(p)?,
                });
            }
            s3::CompleteMultipartUpload {
                key,
                upload_id: &req_s(c, "upload_id")?,
                parts: &parts,
            }
            .request(&b, now)
        }
        "abort_mpu" => s3::AbortMultipartUpload {
            key,
            upload_id: &req_s(c, "upload_id")?,
        }
        .request(&b, now),
        _ => return Err(format!("unknown action {action}")),
    };
    match r {
        Ok(r) => Ok(json!({"ok": request_json(&r)})),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn sign(c: &Value) -> R {
    let mut builder = Request::builder()
        .method(req_s(c, "method")?.as_str())
        .uri(req_s(c, "url")?);
    if let Some(h) = c.get("header_list").and_then(Value::as_array) {
        for pair in h {
            let n = pair.get(0).and_then(Value::as_str).unwrap_or_default();
            let v = pair.get(1).and_then(Value::as_str).unwrap_or_default();
            builder = builder.header(n, v);
        }
    }
    let mut r = builder
        .body(Bytes::from(s(c, "body").unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let region = Region::new(req_s(c, "region")?);
    match pixport_aws::sign::sign_request(
        &mut r,
        &creds(c)?,
        &region,
        &req_s(c, "service")?,
        time(c)?,
    ) {
        Ok(()) => Ok(json!({"ok": request_json(&r)})),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn data_cfg(c: &Value) -> Result<DataApiConfig, String> {
    DataApiConfig::new(Region::new(req_s(c, "region")?), "unused", "unused")
        .with_endpoint(&req_s(c, "endpoint")?)
        .map_err(|e| e.to_string())
}

fn build<O: Operation<Target = Database> + serde::de::DeserializeOwned>(c: &Value) -> R {
    let op: O = serde_json::from_value(c.get("request").cloned().ok_or("needs request")?)
        .map_err(|e| format!("{}: {e}", req_s(c, "operation").unwrap_or_default()))?;
    let db = Database::new(creds(c)?, data_cfg(c)?);
    match op.request(&db, time(c)?) {
        Ok(r) => Ok(json!({"ok": request_json(&r)})),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn response_parts(c: &Value) -> Result<(StatusCode, HeaderMap, Vec<u8>), String> {
    let status = StatusCode::from_u16(u(c, "status").ok_or("needs status")? as u16)
        .map_err(|e| e.to_string())?;
    let body = match (s(c, "body"), s(c, "body_b64")) {
        (Some(b), _) => b.into_bytes(),
        (None, Some(b)) => STANDARD.decode(b).map_err(|e| e.to_string())?,
        (None, None) => Vec::new(),
    };
    Ok((status, headers_in(c)?, body))
}

fn parse<O: Operation>(c: &Value) -> R
where
    O::Output: serde::Serialize,
{
    let (status, headers, body) = response_parts(c)?;
    match O::parse(status, &headers, &body) {
        Ok(out) => Ok(json!({"ok": out})),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn dataapi_request(c: &Value) -> R {
    match req_s(c, "operation")?.as_str() {
        "ExecuteStatement" => build::<dataapi::ExecuteStatement>(c),
        "BatchExecuteStatement" => build::<dataapi::BatchExecuteStatement>(c),
        "BeginTransaction" => build::<dataapi::BeginTransaction>(c),
        "CommitTransaction" => build::<dataapi::CommitTransaction>(c),
        "RollbackTransaction" => build::<dataapi::RollbackTransaction>(c),
        other => Err(format!("unknown operation {other}")),
    }
}

fn dataapi_response(c: &Value) -> R {
    match req_s(c, "operation")?.as_str() {
        "ExecuteStatement" => {
            let (status, headers, body) = response_parts(c)?;
            match dataapi::ExecuteStatement::parse(status, &headers, &body) {
                Ok(out) => {
                    let rows = match out.rows::<Value>() {
                        Ok(r) => json!({"ok": r}),
                        Err(e) => json!({"error": e.to_string()}),
                    };
                    Ok(json!({"ok": out, "rows": rows}))
                }
                Err(e) => Ok(json!({"error": error_json(&e)})),
            }
        }
        "BatchExecuteStatement" => parse::<dataapi::BatchExecuteStatement>(c),
        "BeginTransaction" => parse::<dataapi::BeginTransaction>(c),
        "CommitTransaction" => parse::<dataapi::CommitTransaction>(c),
        "RollbackTransaction" => parse::<dataapi::RollbackTransaction>(c),
        other => Err(format!("unknown operation {other}")),
    }
}

fn s3_response(c: &Value) -> R {
    let (status, headers, body) = response_parts(c)?;
    let action = req_s(c, "action")?;
    let out = match action.as_str() {
        "error" => Err(Error::S3(s3::parse_error(status, &headers, &body))),
        "head" => s3::HeadObject::parse(status, &headers, &body).map(|m| {
            json!({"content_length": m.content_length, "content_type": m.content_type, "etag": m.etag})
        }),
        "list" => s3::ListObjectsV2::parse(status, &headers, &body).map(|l| {
            json!({
                "keys": l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
                "sizes": l.objects.iter().map(|o| o.size).collect::<Vec<_>>(),
                "etags": l.objects.iter().map(|o| o.etag.clone()).collect::<Vec<_>>(),
                "common_prefixes": l.common_prefixes,
                "is_truncated": l.is_truncated,
                "next_continuation_token": l.next_continuation_token,
            })
        }),
        "create_mpu" => s3::CreateMultipartUpload::parse(status, &headers, &body)
            .map(|o| json!({"upload_id": o.upload_id, "bucket": o.bucket, "key": o.key})),
        "complete_mpu" => s3::CompleteMultipartUpload::parse(status, &headers, &body)
            .map(|o| json!({"etag": o.etag, "location": o.location, "bucket": o.bucket, "key": o.key})),
        other => return Err(format!("unknown action {other}")),
    };
    match out {
        Ok(v) => Ok(json!({"ok": v})),
        Err(e) => Ok(json!({"error": error_json(&e)})),
    }
}

fn run(c: &Value) -> R {
    match req_s(c, "op")?.as_str() {
        "presign_put" | "presign_get" | "presign_upload_part" => presign(c),
        "s3_signed" => s3_signed(c),
        "s3_response" => s3_response(c),
        "sign" => sign(c),
        "dataapi_request" => dataapi_request(c),
        "dataapi_response" => dataapi_response(c),
        other => Err(format!("unknown op {other}")),
    }
}

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("reading stdin: {e}");
        std::process::exit(2);
    }
    let cases: Vec<Value> = match serde_json::from_str(&input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stdin is not a JSON array of cases: {e}");
            std::process::exit(2);
        }
    };
    let results: Vec<Value> = cases
        .iter()
        .map(|c| run(c).unwrap_or_else(|e| json!({"harness_error": e})))
        .collect();
    println!("{}", Value::Array(results));
}
