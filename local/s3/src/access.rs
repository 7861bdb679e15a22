//! IAM for the local S3: every request is authorized as its signer (header
//! or presigned URL) against deploy/template.yaml's policies (local/iam.py
//! resolves them; `pixport-local-iam` evaluates), with the action and
//! resource AWS documents for each operation, so a permission the template
//! lacks fails here as it would in AWS.

use std::sync::Arc;

use pixport_local_iam::{Context, Counters, Decision, Identities, Principal, Request};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{CopyObjectInput, CopySource, PostObjectInput, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};

/// The authenticated principal of a request, left in the request's
/// extensions by [`IamAccess::check`] for the handlers that authorize per
/// key (DeleteObjects) or answer by permission (a missing key: 404 or 403).
#[derive(Clone)]
pub struct Identity {
    pub principal: Arc<Principal>,
    context: Context,
}

impl Identity {
    /// Whether this identity may do `action` on `resource`, with the
    /// request's condition keys plus `extra`.
    pub fn decide(&self, action: &str, resource: &str, extra: &[(&str, &str)]) -> Decision {
        let mut context = self.context.clone();
        for (k, v) in extra {
            context = context.with(k, v);
        }
        self.principal.decide(&Request {
            action,
            resource,
            context: &context,
        })
    }

    /// `Ok` if allowed, else S3's `AccessDenied` with AWS's wording.
    pub fn authorize(&self, action: &str, resource: &str, extra: &[(&str, &str)]) -> S3Result<()> {
        let decision = self.decide(action, resource, extra);
        if decision.allowed() {
            return Ok(());
        }
        let message = self.principal.denial(
            &Request {
                action,
                resource,
                context: &self.context,
            },
            decision,
            true,
        );
        tracing::info!(principal = %self.principal.name, action, resource, "access denied");
        Err(s3_error!(AccessDenied, "{message}"))
    }
}

pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// What an operation needs, as in AWS's "Required permissions" for each S3
/// API operation.
#[derive(Debug, PartialEq, Eq)]
enum Needs {
    /// The action on the object the path names.
    Object(&'static str),
    /// The action on the bucket the path names.
    Bucket(&'static str),
    /// The action on every bucket (`arn:aws:s3:::*`).
    Account(&'static str),
    /// Decided after the input is parsed: per key (DeleteObjects, whose
    /// refused keys are reported in its result), or from a form field
    /// (PostObject).
    Later,
}

fn needs(op: &str) -> Option<Needs> {
    use Needs::{Account, Bucket, Later, Object};
    Some(match op {
        // Writing an object, whole or in parts, and copying one here (the
        // copy's source also needs s3:GetObject, checked on the input).
        "PutObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "CopyObject"
        | "UploadPartCopy" => Object("s3:PutObject"),
        "GetObject" | "HeadObject" => Object("s3:GetObject"),
        "GetObjectAttributes" => Object("s3:GetObjectAttributes"),
        "DeleteObject" => Object("s3:DeleteObject"),
        "AbortMultipartUpload" => Object("s3:AbortMultipartUpload"),
        "ListParts" => Object("s3:ListMultipartUploadParts"),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => Bucket("s3:ListBucket"),
        "ListObjectVersions" => Bucket("s3:ListBucketVersions"),
        "GetBucketVersioning" => Bucket("s3:GetBucketVersioning"),
        "PutBucketVersioning" => Bucket("s3:PutBucketVersioning"),
        "GetBucketLifecycleConfiguration" => Bucket("s3:GetLifecycleConfiguration"),
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
            Bucket("s3:PutLifecycleConfiguration")
        }
        "GetBucketPolicy" => Bucket("s3:GetBucketPolicy"),
        "PutBucketPolicy" => Bucket("s3:PutBucketPolicy"),
        "DeleteBucketPolicy" => Bucket("s3:DeleteBucketPolicy"),
        "ListMultipartUploads" => Bucket("s3:ListBucketMultipartUploads"),
        "GetBucketLocation" => Bucket("s3:GetBucketLocation"),
        "CreateBucket" => Bucket("s3:CreateBucket"),
        "DeleteBucket" => Bucket("s3:DeleteBucket"),
        "ListBuckets" => Account("s3:ListAllMyBuckets"),
        "DeleteObjects" | "PostObject" => Later,
        _ => return None,
    })
}

/// One query parameter, decoded as s3s decodes it.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(k) == name).then(|| decode(v))
    })
}

/// `aws:SecureTransport` of a request. This server stands for S3's HTTPS
/// endpoint and listens on loopback only, so a request counts as one that
/// came over TLS, as the worker's and the Lambda's always do in AWS. A
/// request that says it reached a TLS terminator in front of this server
/// over plain HTTP (`X-Forwarded-Proto: http`) counts as insecure: that is
/// how a test sends what a plain-HTTP client would, and meets the bucket
/// policy's Deny.
fn secure_transport(headers: &http::HeaderMap) -> &'static str {
    let plain = headers.get_all("x-forwarded-proto").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("http"))
    });
    if plain { "false" } else { "true" }
}

/// The action a versioned request needs instead of the plain one: naming a
/// `versionId` reads or deletes that version (`s3:GetObjectVersion`,
/// `s3:DeleteObjectVersion`), which no role of the template is granted, so
/// no role can destroy an original's history.
fn versioned(action: &str, query: &str) -> String {
    let has_version = query_param(query, "versionId").is_some_and(|v| !v.is_empty());
    match action {
        "s3:GetObject" if has_version => "s3:GetObjectVersion".to_owned(),
        "s3:DeleteObject" if has_version => "s3:DeleteObjectVersion".to_owned(),
        other => other.to_owned(),
    }
}

pub struct IamAccess {
    pub identities: Arc<Identities>,
    pub counters: Arc<Counters>,
}

impl IamAccess {
    fn identity(&self, cx: &S3AccessContext<'_>) -> Option<Identity> {
        let cred = cx.credentials()?;
        let (principal, _) = self.identities.by_access_key(&cred.access_key)?;
        let query = cx.uri().query().unwrap_or_default();
        let presigned = query_param(query, "X-Amz-Signature").is_some();
        let v4 = presigned
            || cx
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
        let context = Context::for_principal(principal)
            .with("aws:SecureTransport", secure_transport(cx.headers()))
            .with(
                "s3:authType",
                if presigned {
                    "REST-QUERY-STRING"
                } else {
                    "REST-HEADER"
                },
            )
            .with(
                "s3:signatureversion",
                if v4 { "AWS4-HMAC-SHA256" } else { "AWS" },
            );
        Some(Identity {
            principal: principal.clone(),
            context,
        })
    }
}

/// The identity `check` stored; a request without one was never authorized.
pub fn identity_of<T>(req: &S3Request<T>) -> S3Result<&Identity> {
    req.extensions
        .get::<Identity>()
        .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
}

fn copy_source_arn(source: &CopySource) -> S3Result<String> {
    match source {
        CopySource::Bucket { bucket, key, .. } => Ok(object_arn(bucket, key)),
        _ => Err(s3_error!(
            NotImplemented,
            "Copying from an access point is not supported here"
        )),
    }
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let Some(identity) = self.identity(cx) else {
            self.counters.count("anonymous", &op);
            // The bucket blocks public access: nothing is granted to anonymous callers.
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        self.counters.count(&identity.principal.name, &op);
        let path = cx.s3_path();
        let (action, resource) = match (needs(&op), &path) {
            (Some(Needs::Later), _) => {
                cx.extensions_mut().insert(identity);
                return Ok(());
            }
            (Some(Needs::Object(a)), S3Path::Object { bucket, key }) => {
                (a.to_owned(), object_arn(bucket, key))
            }
            (Some(Needs::Bucket(a)), S3Path::Bucket { bucket } | S3Path::Object { bucket, .. }) => {
                (a.to_owned(), bucket_arn(bucket))
            }
            (Some(Needs::Account(a)), _) => (a.to_owned(), "arn:aws:s3:::*".to_owned()),
            // Operations this server does not serve (s3s answers
            // NotImplemented after this): still nobody's but an identity
            // allowed s3:<Operation>.
            (None, S3Path::Object { bucket, key }) => (format!("s3:{op}"), object_arn(bucket, key)),
            (None, S3Path::Bucket { bucket }) => (format!("s3:{op}"), bucket_arn(bucket)),
            _ => (format!("s3:{op}"), "arn:aws:s3:::*".to_owned()),
        };
        let query = cx.uri().query().unwrap_or_default().to_owned();
        let action = versioned(&action, &query);
        let mut extra: Vec<(&str, String)> = Vec::new();
        if matches!(op.as_str(), "ListObjects" | "ListObjectsV2") {
            for (param, key) in [
                ("prefix", "s3:prefix"),
                ("delimiter", "s3:delimiter"),
                ("max-keys", "s3:max-keys"),
            ] {
                if let Some(v) = query_param(&query, param) {
                    extra.push((key, v));
                }
            }
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        identity.authorize(&action, &resource, &extra)?;
        cx.extensions_mut().insert(identity);
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let source = copy_source_arn(&req.input.copy_source)?;
        identity_of(req)?.authorize("s3:GetObject", &source, &[])
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let source = copy_source_arn(&req.input.copy_source)?;
        identity_of(req)?.authorize("s3:GetObject", &source, &[])
    }

    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        let resource = object_arn(&req.input.bucket, &req.input.key);
        identity_of(req)?.authorize("s3:PutObject", &resource, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_documented_actions() {
        assert_eq!(needs("UploadPart"), Some(Needs::Object("s3:PutObject")));
        assert_eq!(
            needs("CompleteMultipartUpload"),
            Some(Needs::Object("s3:PutObject"))
        );
        assert_eq!(needs("HeadObject"), Some(Needs::Object("s3:GetObject")));
        assert_eq!(
            needs("ListParts"),
            Some(Needs::Object("s3:ListMultipartUploadParts"))
        );
        assert_eq!(needs("ListObjectsV2"), Some(Needs::Bucket("s3:ListBucket")));
        assert_eq!(needs("HeadBucket"), Some(Needs::Bucket("s3:ListBucket")));
        assert_eq!(
            needs("ListMultipartUploads"),
            Some(Needs::Bucket("s3:ListBucketMultipartUploads"))
        );
        assert_eq!(
            needs("ListBuckets"),
            Some(Needs::Account("s3:ListAllMyBuckets"))
        );
        assert_eq!(needs("DeleteObjects"), Some(Needs::Later));
        assert_eq!(needs("PutBucketTagging"), None);
    }

    #[test]
    fn naming_a_version_needs_the_version_action() {
        assert_eq!(
            versioned("s3:GetObject", "versionId=abc"),
            "s3:GetObjectVersion"
        );
        assert_eq!(
            versioned("s3:DeleteObject", "x-id=DeleteObject&versionId=abc"),
            "s3:DeleteObjectVersion"
        );
        assert_eq!(
            versioned("s3:DeleteObject", "versionId="),
            "s3:DeleteObject"
        );
        assert_eq!(versioned("s3:PutObject", "versionId=abc"), "s3:PutObject");
        assert_eq!(
            needs("PutBucketVersioning"),
            Some(Needs::Bucket("s3:PutBucketVersioning"))
        );
        assert_eq!(
            needs("PutBucketLifecycleConfiguration"),
            Some(Needs::Bucket("s3:PutLifecycleConfiguration"))
        );
    }

    #[test]
    fn plain_http_is_insecure_transport() {
        let mut h = http::HeaderMap::new();
        assert_eq!(secure_transport(&h), "true");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(secure_transport(&h), "true");
        h.insert("x-forwarded-proto", "HTTP".parse().unwrap());
        assert_eq!(secure_transport(&h), "false");
    }

    #[test]
    fn query_params_decode_like_s3s() {
        let q = "list-type=2&prefix=variants%2Fab+c%2F&delimiter=%2F&max-keys";
        assert_eq!(query_param(q, "prefix").as_deref(), Some("variants/ab c/"));
        assert_eq!(query_param(q, "delimiter").as_deref(), Some("/"));
        assert_eq!(query_param(q, "max-keys").as_deref(), Some(""));
        assert_eq!(query_param(q, "marker"), None);
    }
}
