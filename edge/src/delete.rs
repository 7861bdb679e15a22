//! Deleting an image: the one sequence `DELETE /images/{id}` runs and the
//! sweep finishes when a DELETE stopped half way.
//!
//! The row is marked `deleting` before any object goes, so a failure part
//! way leaves a row that says so (hidden from clients); a retried DELETE or
//! the sweep then runs the rest again. The row goes last: no object is ever
//! left without a row.

use pixport_contract::{Status, keys};

use crate::error::ApiResult;
use crate::model::Image;
use crate::ports::{MetadataStore, ObjectStore};

/// Marks the row `deleting`, then removes everything (`finish`).
pub async fn delete<S: ObjectStore, M: MetadataStore>(
    objects: &S,
    rows: &M,
    img: &Image,
) -> ApiResult<()> {
    rows.set_status(&img.id, Status::Deleting).await?;
    finish(objects, rows, &img.id, &img.original_key).await
}

/// What a DELETE does once its row says `deleting`: the variants, the
/// original, then the row.
pub async fn finish<S: ObjectStore, M: MetadataStore>(
    objects: &S,
    rows: &M,
    id: &str,
    original_key: &str,
) -> ApiResult<()> {
    remove_variants(objects, id).await?;
    objects.delete_object(original_key).await?;
    rows.delete_row(id).await
}

/// Removes every object under `variants/<id>/`.
pub async fn remove_variants<S: ObjectStore>(objects: &S, id: &str) -> ApiResult<()> {
    for key in objects.list_keys(&keys::variants_prefix(id)).await? {
        objects.delete_object(&key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::ports::memory::Memory;

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
    fn a_failure_part_way_leaves_the_row_deleting() {
        let m = Memory::failing(&["delete"]);
        let img = with_objects(&m);
        let err = block_on(delete(&m, &m, &img)).unwrap_err();
        assert_eq!(err.status_and_code(), (503, "storage_unavailable"));
        assert_eq!(m.status(ID), Some(Status::Deleting));
        assert!(m.objects.borrow().contains_key(&img.original_key));
    }
}
