//! Images once they exist: who may see, list, edit and delete them.
//!
//! A public image (`pending`, `ready`) is seen by anyone who has its id; a
//! private one by its owner and, for its variants, through signed URLs
//! (`domain::delivery`); a row still uploading or failed only by its
//! owner; a row being deleted by no one, its owner included. Another owner's image is `NotFound`, never
//! "forbidden", so ids of others' images are not confirmed.

use pixport_contract::Status;

use crate::domain::delete;
use crate::domain::error::{Error, Result};
use crate::domain::fields::{Patch, Visibility};
use crate::domain::id;
use crate::domain::limits::UploadLimits;
use crate::domain::model::{Image, ImagePage, ListQuery};
use crate::domain::ports::{ImageRows, ObjectStore};

/// The image service, over the ports.
pub struct Images<'a, O, R> {
    pub objects: &'a O,
    pub rows: &'a R,
    pub limits: &'a UploadLimits,
}

impl<O: ObjectStore, R: ImageRows> Images<'_, O, R> {
    async fn load(&self, id: &str) -> Result<Image> {
        if !id::is_valid(id) {
            return Err(Error::NotFound);
        }
        self.rows.get(id).await?.ok_or(Error::NotFound)
    }

    /// An image its owner may change or fetch the original of.
    pub async fn owned(&self, owner: &str, id: &str) -> Result<Image> {
        let img = self.load(id).await?;
        if img.owner != owner || img.status == Status::Deleting {
            return Err(Error::NotFound);
        }
        Ok(img)
    }

    /// An image as `viewer` (a caller's owner id, if any) may see it: a
    /// private one only its owner.
    pub async fn visible(&self, id: &str, viewer: Option<&str>) -> Result<Image> {
        self.deliverable(id, viewer, false).await
    }

    /// An image whose variants `viewer` may fetch; `signed`: the request
    /// carries a valid signed delivery URL for it (`domain::delivery`),
    /// which opens a private image as its owner's credentials would.
    pub async fn deliverable(&self, id: &str, viewer: Option<&str>, signed: bool) -> Result<Image> {
        let img = self.load(id).await?;
        let own = viewer == Some(img.owner.as_str());
        let shown = Status::PUBLIC.contains(&img.status)
            && (img.meta.visibility == Visibility::Public || signed);
        if img.status == Status::Deleting || !(shown || own) {
            return Err(Error::NotFound);
        }
        Ok(img)
    }

    /// The caller's own images, one page.
    pub async fn list(&self, q: &ListQuery) -> Result<ImagePage> {
        self.rows.list(q).await
    }

    /// Applies a patch to the owner's fields of `img` (as [`owned`](Self::owned)
    /// returned it: the caller reads the patch only once the image is known
    /// to be the caller's).
    pub async fn edit(&self, mut img: Image, patch: Patch) -> Result<Image> {
        patch.apply(&mut img.meta, self.limits.max_field_bytes)?;
        self.limits.check_visibility(&img.meta)?;
        self.rows.update_meta(&img.id, &img.meta).await?;
        self.rows.get(&img.id).await?.ok_or(Error::NotFound)
    }

    /// Deletes the owner's image: the row is marked first, so if S3 fails
    /// half way the row says so, and a retried DELETE (or the sweep)
    /// finishes the job (`delete`). Returns the image as it was, for the
    /// caches to forget.
    pub async fn delete(&self, owner: &str, id: &str) -> Result<Image> {
        let img = self.load(id).await?;
        if img.owner != owner {
            return Err(Error::NotFound);
        }
        delete::delete(self.objects, self.rows, &img).await?;
        Ok(img)
    }

    /// The owner's original, once it is stored.
    pub async fn original(&self, owner: &str, id: &str) -> Result<Image> {
        let img = self.owned(owner, id).await?;
        if img.status == Status::Uploading {
            return Err(Error::NotReady {
                status: img.status.as_str(),
            });
        }
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::adapters::memory::Memory;
    use crate::domain::upload::testing::limits;

    const ID: &str = "01JABCDEFGHJKMNPQRSTVWXYZ0";

    #[test]
    fn others_see_public_rows_only_and_nobody_sees_a_deleting_one() {
        let m = Memory::default();
        let l = limits();
        let images = Images {
            objects: &m,
            rows: &m,
            limits: &l,
        };
        for (status, anyone, owner) in [
            (Status::Ready, true, true),
            (Status::Pending, true, true),
            (Status::Failed, false, true),
            (Status::Uploading, false, true),
            (Status::Deleting, false, false),
        ] {
            m.insert_row(ID, status, 0);
            assert_eq!(
                block_on(images.visible(ID, None)).is_ok(),
                anyone,
                "{status:?}"
            );
            assert_eq!(
                block_on(images.visible(ID, Some("other"))).is_ok(),
                anyone,
                "{status:?}"
            );
            assert_eq!(
                block_on(images.visible(ID, Some("owner"))).is_ok(),
                owner,
                "{status:?}"
            );
        }
        assert!(matches!(
            block_on(images.visible("not-an-id", None)),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn only_the_owner_edits_deletes_and_fetches_the_original() {
        let m = Memory::default();
        let l = limits();
        let images = Images {
            objects: &m,
            rows: &m,
            limits: &l,
        };
        m.insert_row(ID, Status::Ready, 0);
        let patch = || Patch {
            title: Some(Some("Sea".into())),
            ..Patch::default()
        };
        assert!(matches!(
            block_on(images.owned("other", ID)),
            Err(Error::NotFound)
        ));
        let img = block_on(images.owned("owner", ID)).unwrap();
        let edited = block_on(images.edit(img, patch())).unwrap();
        assert_eq!(edited.meta.title.as_deref(), Some("Sea"));
        assert!(block_on(images.original("other", ID)).is_err());
        assert!(block_on(images.original("owner", ID)).is_ok());
        assert!(matches!(
            block_on(images.delete("other", ID)),
            Err(Error::NotFound)
        ));
        block_on(images.delete("owner", ID)).unwrap();
        assert_eq!(m.status(ID), None);
    }
}
