//! SigV4 verification: the request is signed again with the secret of the
//! access key it names (one of the local identities) and the signatures
//! compared, so anything that would not authenticate against AWS does not
//! authenticate here either.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use pixport_local_iam::{Identities, Principal};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::ApiError;

/// AWS accepts requests whose `x-amz-date` is within 15 minutes of its clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
pub const SERVICE: &str = "rds-data";

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

pub fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, ApiError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        ApiError::IncompleteSignature(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={value}"
        ))
    })?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let missing = |what: &str| {
        ApiError::IncompleteSignature(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let cred = cred.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = sig.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = cred.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(ApiError::IncompleteSignature(format!(
            "Credential should be scoped to a valid region and service. Credential={cred}"
        )));
    };
    Ok(AuthHeader {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, fmt).ok()?;
    Some(dt.assume_utc().into())
}

fn fmt_amz_date(t: SystemTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from(t).format(fmt).unwrap_or_default()
}

/// Checks the request's SigV4 signature; the principal whose key signed it.
pub fn verify(
    identities: &Identities,
    region: &str,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Arc<Principal>, ApiError> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(ApiError::MissingAuth)?
        .to_str()
        .map_err(|_| ApiError::IncompleteSignature("Authorization header is not ASCII".into()))?;
    let auth = parse_authorization(auth)?;
    let (principal, secret) = identities
        .by_access_key(auth.access_key_id)
        .ok_or(ApiError::UnrecognizedClient)?;
    if auth.service != SERVICE {
        return Err(ApiError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    if auth.region != region {
        return Err(ApiError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    let date_str = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    let signed_at = parse_amz_date(date_str).ok_or_else(|| {
        ApiError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date_str}'."
        ))
    })?;
    check_skew(signed_at, now)?;
    if !date_str.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(ApiError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            date_str.get(..8).unwrap_or(date_str)
        )));
    }

    let expected = compute_signature(
        secret,
        &auth,
        method,
        path_and_query,
        headers,
        body,
        signed_at,
    )?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(principal.clone())
    } else {
        Err(ApiError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ))
    }
}

fn check_skew(signed_at: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    if signed_at + MAX_SKEW < now {
        return Err(ApiError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            fmt_amz_date(signed_at),
            fmt_amz_date(now - MAX_SKEW),
            fmt_amz_date(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(ApiError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            fmt_amz_date(signed_at),
            fmt_amz_date(now + MAX_SKEW),
            fmt_amz_date(now)
        )));
    }
    Ok(())
}

/// Signs exactly the headers the client says it signed, so the canonical
/// request is the client's.
fn compute_signature(
    secret: &str,
    auth: &AuthHeader<'_>,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    signed_at: SystemTime,
) -> Result<String, ApiError> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        // aws-sigv4 inserts x-amz-date itself from the signing time.
        if name.eq_ignore_ascii_case("x-amz-date") {
            continue;
        }
        for v in headers.get_all(*name) {
            let v = v.to_str().map_err(|_| {
                ApiError::IncompleteSignature(format!("header {name} is not ASCII"))
            })?;
            pairs.push((name, v));
        }
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let uri = format!("http://{host}{path_and_query}");

    let identity = aws_credential_types::Credentials::new(
        auth.access_key_id,
        secret.to_owned(),
        None,
        None,
        "pixport-local-dataapi",
    )
    .into();
    let mut settings = SigningSettings::default();
    // Sign whatever the client signed; exclusions would change the canonical request.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(SERVICE)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .into();
    let signable = SignableRequest::new(method, uri, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| ApiError::IncompleteSignature(e.to_string()))?;
    let out = sign(signable, &params).map_err(|e| ApiError::IncompleteSignature(e.to_string()))?;
    Ok(out.signature().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const REGION: &str = "us-east-1";

    fn ids() -> Identities {
        Identities::from_json(
            &serde_json::json!({"version": 1, "principals": {"EdgeUser": {
                "arn": "arn:aws:iam::000000000000:user/EdgeUser",
                "keys": {"AKIDEXAMPLE": SECRET}, "statements": []}}})
            .to_string(),
        )
        .unwrap()
    }

    /// A request signed by aws-sigv4 as a client would sign it.
    fn signed(body: &[u8], at: SystemTime, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:9001"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let identity =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", secret, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("rds-data")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let pairs: Vec<(&str, &str)> = h
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let req = SignableRequest::new(
            "POST",
            "http://127.0.0.1:9001/Execute",
            pairs.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instr, _) = sign(req, &params).unwrap().into_parts();
        let (headers, _) = instr.into_parts();
        for hd in headers {
            h.insert(hd.name(), HeaderValue::from_str(hd.value()).unwrap());
        }
        h
    }

    #[test]
    fn accepts_a_correct_signature_and_rejects_tampering() {
        let c = ids();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = signed(b"{}", now, SECRET);
        let who = verify(&c, REGION, "POST", "/Execute", &h, b"{}", now).unwrap();
        assert_eq!(who.name, "EdgeUser");
        assert!(matches!(
            verify(&c, REGION, "POST", "/Execute", &h, b"{ }", now),
            Err(ApiError::InvalidSignature(_))
        ));
        assert!(matches!(
            verify(&c, REGION, "POST", "/BatchExecute", &h, b"{}", now),
            Err(ApiError::InvalidSignature(_))
        ));
        let bad = signed(b"{}", now, "wrong");
        assert!(matches!(
            verify(&c, REGION, "POST", "/Execute", &bad, b"{}", now),
            Err(ApiError::InvalidSignature(_))
        ));
        assert!(matches!(
            verify(&c, "eu-west-1", "POST", "/Execute", &h, b"{}", now),
            Err(ApiError::InvalidSignature(_))
        ));
    }

    #[test]
    fn rejects_stale_missing_and_unknown_keys() {
        let c = ids();
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = signed(b"", then, SECRET);
        let later = then + Duration::from_secs(16 * 60);
        let e = verify(&c, REGION, "POST", "/Execute", &h, b"", later).unwrap_err();
        assert!(e.to_string().starts_with("Signature expired"), "{e}");
        assert!(matches!(
            verify(&c, REGION, "POST", "/Execute", &HeaderMap::new(), b"", then),
            Err(ApiError::MissingAuth)
        ));
        let mut other = h.clone();
        let a = h["authorization"]
            .to_str()
            .unwrap()
            .replace("AKIDEXAMPLE", "AKIDOTHER");
        other.insert("authorization", HeaderValue::from_str(&a).unwrap());
        assert!(matches!(
            verify(&c, REGION, "POST", "/Execute", &other, b"", then),
            Err(ApiError::UnrecognizedClient)
        ));
    }

    #[test]
    fn parses_authorization() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/rds-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(
            (a.access_key_id, a.region, a.service, a.signature),
            ("AK", "us-east-1", "rds-data", "abc")
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AK/x, Signature=abc").is_err());
        assert!(parse_authorization("Basic abc").is_err());
    }
}
