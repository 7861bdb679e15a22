//! The worker's side of `pixport_contract::wake`: scheduled work that
//! reads the database only when it may have something to do, so an idle
//! Aurora cluster can pause. The one-minute cron delivers webhooks only
//! when the Lambda's signal (`keys::OUTBOX_ENQUEUED`, rewritten after it
//! settles an image, whose UPDATE's trigger may have queued an event)
//! changed or an event's retry is due (`keys::OUTBOX_NEXT`, kept here);
//! the half-hourly sweep rewrites the redrive's signal
//! (`keys::REDRIVE_SIGNAL`) for rows only a redrive finishes.

use bytes::Bytes;
use pixport_aws::s3::{GetObject, PutObject, PutObjectOptions};
use pixport_aws::{Error as AwsError, Operation, Service};
use pixport_contract::wake::Look;

use pixport_aws::s3::Bucket;

use crate::adapters::transport;
use crate::runtime::clock;

/// A small object's text; `None` when it does not exist.
async fn get_text(bucket: &Bucket, key: &str) -> Result<Option<String>, AwsError> {
    let op = GetObject { key };
    let reply = transport::send(Service::S3, op.request(bucket, clock::now())?).await?;
    match GetObject::parse(reply.status, &reply.headers, &reply.body) {
        Ok(_) => Ok(Some(String::from_utf8_lossy(&reply.body).into_owned())),
        Err(AwsError::S3(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a small object.
pub async fn put_text(
    bucket: &Bucket,
    key: &str,
    text: String,
    content_type: &str,
) -> Result<(), AwsError> {
    let op = PutObject {
        key,
        body: Bytes::from(text),
        options: PutObjectOptions {
            content_type: Some(content_type.into()),
            checksum: None,
            cache_control: Some("no-store".into()),
        },
    };
    transport::run(bucket, &op).await?;
    Ok(())
}

/// Reads a signal and its record.
pub async fn look(bucket: &Bucket, signal: &str, record: &str) -> Result<Look, AwsError> {
    let signal = get_text(bucket, signal).await?;
    let recorded = get_text(bucket, record).await?;
    Ok(Look::from_text(signal, recorded.as_deref()))
}

/// Rewrites a signal with a new token: something may be due.
pub async fn signal(bucket: &Bucket, key: &str, what: &str) -> Result<(), AwsError> {
    let token = format!("{what}@{}", clock::unix_ms(clock::now()));
    put_text(bucket, key, token, "text/plain").await
}
