//! Deleting an image: the one sequence `DELETE /images/{id}` runs and the
//! sweep finishes when a DELETE stopped half way.
//!
//! The row is marked `deleting` before any object goes, so a failure part
//! way leaves a row that says so (hidden from clients); a retried DELETE or
//! the sweep then runs the rest again. The row goes last: no object is ever
//! left without a row.
//!
//! A presigned PUT handed out for the image (`POST /uploads`,
//! `GET /s3/params`) stays valid after the DELETE and, the key being free
//! again, would store an original with no row. While it may, the row stays
//! as a tombstone: `deleting`, counted in its owner's quota, finished by the
//! sweep once the URL has expired, so whatever the PUT stored goes then.
//! An unfinished multipart upload of the key is aborted, so its parts go
//! too (a part URL cannot create an object; the completion checks the row).

use pixport_contract::{Status, keys};

use crate::domain::error::Result;
use crate::domain::model::Image;
use crate::domain::ports::{ImageRows, ObjectStore};

/// Marks the row `deleting`, then removes everything (`finish`); a row
/// whose presigned PUT may still land stays as a tombstone for the sweep.
pub async fn delete<S: ObjectStore, M: ImageRows>(
    objects: &S,
    rows: &M,
    img: &Image,
) -> Result<()> {
    let tombstone = rows.mark_deleting(&img.id).await?;
    if img.status == Status::Uploading {
        abort_uploads(objects, &img.original_key).await?;
    }
    if tombstone {
        remove_variants(objects, &img.id).await?;
        return objects.delete_object(&img.original_key).await;
    }
    finish(objects, rows, &img.id, &img.original_key).await
}

/// What a DELETE does once its row says `deleting`: the variants, any
/// unfinished upload, the original, then the row.
pub async fn finish<S: ObjectStore, M: ImageRows>(
    objects: &S,
    rows: &M,
    id: &str,
    original_key: &str,
) -> Result<()> {
    remove_variants(objects, id).await?;
    abort_uploads(objects, original_key).await?;
    objects.delete_object(original_key).await?;
    rows.delete_row(id).await
}

/// Aborts every unfinished multipart upload of `key`, freeing its parts.
pub async fn abort_uploads<S: ObjectStore>(objects: &S, key: &str) -> Result<()> {
    for upload_id in objects.list_uploads(key).await? {
        objects.abort_multipart(key, &upload_id).await?;
        tracing::info!(key, "aborted an unfinished multipart upload");
    }
    Ok(())
}

/// Removes every object under `variants/<id>/`.
pub async fn remove_variants<S: ObjectStore>(objects: &S, id: &str) -> Result<()> {
    for key in objects.list_keys(&keys::variants_prefix(id)).await? {
        objects.delete_object(&key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::adapters::memory::Memory;
    use crate::domain::error::Error;

    const ID: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

    fn with_objects(m: &Memory) -> Image {
        let img = m.insert_row(ID, Status::Ready, 0);
        for key in [
            img.original_key.clone(),
            format!("{}320.jpg", keys::variants_prefix(ID)),
            format!("{}640.jpg", keys::variants_prefix(ID)),
            "variants/OTHER/320.jpg".to_string(),
        ] {
            m.objects.borrow_mut().insert(key, b"x".to_vec());
        }
        img
    }

    #[test]
    fn removes_variants_original_and_row_and_nothing_else() {
        let m = Memory::default();
        let img = with_objects(&m);
        block_on(delete(&m, &m, &img)).unwrap();
        assert_eq!(m.status(ID), None);
        let left: Vec<String> = m.objects.borrow().keys().cloned().collect();
        assert_eq!(left, ["variants/OTHER/320.jpg"]);
    }

    #[test]
    fn a_row_whose_presigned_put_is_live_stays_as_a_tombstone() {
        let m = Memory::default();
        let img = m.insert_row(ID, Status::Uploading, 0);
        m.put_expires.borrow_mut().insert(ID.into(), 15);
        m.uploads
            .borrow_mut()
            .insert(img.original_key.clone(), Default::default());
        block_on(delete(&m, &m, &img)).unwrap();
        assert_eq!(m.status(ID), Some(Status::Deleting));
        assert!(m.uploads.borrow().is_empty());
        // A retried DELETE keeps it too.
        let again = m.rows.borrow()[ID].clone();
        block_on(delete(&m, &m, &again)).unwrap();
        assert_eq!(m.status(ID), Some(Status::Deleting));
        // Once the URL has expired, a DELETE removes the row.
        m.put_expires.borrow_mut().insert(ID.into(), -1);
        block_on(delete(&m, &m, &again)).unwrap();
        assert_eq!(m.status(ID), None);
    }

    #[test]
    fn a_failure_part_way_leaves_the_row_deleting() {
        let m = Memory::failing(&["delete"]);
        let img = with_objects(&m);
        let err = block_on(delete(&m, &m, &img)).unwrap_err();
        assert!(
            matches!(err, Error::Storage(ref e) if e.is_retryable()),
            "{err}"
        );
        assert_eq!(m.status(ID), Some(Status::Deleting));
        assert!(m.objects.borrow().contains_key(&img.original_key));
    }
}
