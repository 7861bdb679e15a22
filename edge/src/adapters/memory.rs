//! The ports in memory, for native unit tests of the upload pipeline,
//! DELETE and the sweep: no S3, no Data API, no clock. A test names the
//! steps that fail (`Memory::failing`) and ages rows by hand (`age`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::Engine;
use pixport_aws::{Error as AwsError, Service};
use pixport_contract::Status;
#[cfg(test)]
use pixport_contract::keys;
use sha2::{Digest, Sha256};

use crate::domain::error::{Error, Result};
use crate::domain::model::{Image, ImagePage, ListQuery, Metadata, Moment, NewImage, Usage};
use crate::domain::ports::{
    Attempt, Declared, Delivery, DeliveryState, DueEvent, Endpoint, HOLD_STALE_SECS, HeldPart,
    Hold, ImageRows, Inserted, Listed, ObjectStore, Presigned, PutGrant, Receiver, Requeue, RowRef,
    Stored, SweepRows, UploadClaims, WebhookStore,
};
#[cfg(test)]
use crate::domain::sniff::Probe;
use crate::runtime::payload::Payload;

/// The id every multipart upload in memory gets.
pub const UPLOAD_ID: &str = "u1";

#[derive(Default)]
pub struct Memory {
    pub objects: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Multipart uploads in progress, by key: their parts by number.
    pub uploads: RefCell<BTreeMap<String, BTreeMap<u32, Vec<u8>>>>,
    pub rows: RefCell<BTreeMap<String, Image>>,
    /// Minutes since each row's clock (claim for `uploading`, else last update).
    pub ages: RefCell<BTreeMap<String, u32>>,
    /// Steps that fail as if their service were unreachable.
    pub fail: RefCell<Vec<&'static str>>,
    /// Sizes of the parts uploaded, in order.
    pub parts_seen: RefCell<Vec<usize>>,
    /// Minutes since each object was written (absent: just now).
    pub object_ages: RefCell<BTreeMap<String, u32>>,
    /// Keys per listing page (0: 1000, like S3).
    pub page_keys: std::cell::Cell<usize>,
    /// Each claimed upload's Idempotency-Key, by id.
    pub idempotency_keys: RefCell<BTreeMap<String, String>>,
    /// Where the reconciler stopped, by prefix.
    pub cursors: RefCell<BTreeMap<String, String>>,
    /// The holder of each (owner, checksum); a holder whose row is gone
    /// counts as absent, as the table's cascade would remove it.
    pub checksums: RefCell<BTreeMap<(String, String), String>>,
    /// Minutes until each row's presigned PUT expires (negative: expired
    /// that long ago); rows without one are absent.
    pub put_expires: RefCell<BTreeMap<String, i64>>,
    /// The bucket the sweep recorded.
    pub bucket: RefCell<Option<String>>,
    /// Webhook endpoints by owner.
    pub endpoints: RefCell<BTreeMap<String, Endpoint>>,
    /// The webhook outbox, oldest first.
    pub outbox: RefCell<Vec<OutboxRow>>,
}

/// A webhook event as the outbox holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub owner: String,
    pub image_id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub attempts: u32,
    /// Seconds until it is due (zero or less: due now).
    pub due_in_secs: i64,
    pub delivered: bool,
    pub gave_up: bool,
    pub last_error: Option<String>,
    /// The run that leases it.
    pub token: Option<String>,
}

fn down(service: Service, step: &str) -> Error {
    AwsError::unreachable(service, format!("{step} down")).into()
}

impl Memory {
    pub fn failing(steps: &[&'static str]) -> Self {
        let m = Memory::default();
        *m.fail.borrow_mut() = steps.to_vec();
        m
    }

    /// The row holding these bytes, if it still exists.
    fn holder(&self, key: &(String, String)) -> Option<Image> {
        let id = self.checksums.borrow().get(key).cloned()?;
        self.rows.borrow().get(&id).cloned()
    }

    /// A holder's age counts from its claim here (a test ages it by hand).
    fn stale_hold(&self, id: &str) -> bool {
        self.ages.borrow().get(id).copied().unwrap_or(0) * 60 >= HOLD_STALE_SECS
    }

    fn fails(&self, step: &str) -> bool {
        self.fail.borrow().contains(&step)
    }

    fn check_s3(&self, step: &'static str) -> Result<()> {
        if self.fails(step) {
            Err(down(Service::S3, step))
        } else {
            Ok(())
        }
    }

    fn check_db(&self, step: &'static str) -> Result<()> {
        if self.fails(step) {
            Err(down(Service::DataApi, step))
        } else {
            Ok(())
        }
    }

    /// The upload `insert_row` records: a 10 x 10 JPEG of `"owner"`, its
    /// original at the usual key.
    #[cfg(test)]
    pub fn new_image(id: &str) -> NewImage {
        NewImage {
            id: id.into(),
            owner: "owner".into(),
            idempotency_key: None,
            meta: Metadata::default(),
            file_name: None,
            probe: Probe {
                format: pixport_contract::SourceFormat::Jpeg,
                width: 10,
                height: 10,
            },
            original_key: keys::original(id),
            request_id: None,
            created: Moment(1_796_428_800_000),
        }
    }

    /// Adds a row of `status` whose clock is `age_minutes` old, with its
    /// original at the usual key (the object itself is not added).
    #[cfg(test)]
    pub fn insert_row(&self, id: &str, status: Status, age_minutes: u32) -> Image {
        let img = row(&Self::new_image(id), status);
        self.rows.borrow_mut().insert(id.into(), img.clone());
        self.ages.borrow_mut().insert(id.into(), age_minutes);
        img
    }

    #[cfg(test)]
    pub fn status(&self, id: &str) -> Option<Status> {
        self.rows.borrow().get(id).map(|r| r.status)
    }

    fn touch(&self, id: &str) {
        self.ages.borrow_mut().insert(id.into(), 0);
    }
}

/// The row a claim writes, in `status`.
pub fn row(new: &NewImage, status: Status) -> Image {
    Image {
        id: new.id.clone(),
        owner: new.owner.clone(),
        status,
        meta: new.meta.clone(),
        file_name: new.file_name.clone(),
        content_type: new.probe.format.content_type().into(),
        format: Some(new.probe.format.as_str().into()),
        bytes: None,
        width: Some(new.probe.width),
        height: Some(new.probe.height),
        checksum_sha256: None,
        original_key: new.original_key.clone(),
        variants: vec![],
        recipe: None,
        placeholder: None,
        failure_reason: None,
        created_at: new.created.view(),
        updated_at: new.created.view(),
    }
}

impl ObjectStore for Memory {
    type Body = Vec<u8>;

    async fn put_object(
        &self,
        key: &str,
        body: Payload,
        _: &str,
        sha: &str,
        _: Option<&str>,
    ) -> Result<()> {
        self.check_s3("put")?;
        let body = body.to_vec();
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        assert_eq!(sha, digest);
        self.objects.borrow_mut().insert(key.into(), body.to_vec());
        if self.fails("put-reply") {
            // S3 stored it, but the reply never arrived.
            return Err(down(Service::S3, "put reply"));
        }
        Ok(())
    }

    async fn create_multipart(&self, key: &str, _: &str, _: Option<&str>) -> Result<String> {
        self.check_s3("create")?;
        self.uploads
            .borrow_mut()
            .insert(key.into(), BTreeMap::new());
        Ok(UPLOAD_ID.into())
    }

    async fn upload_part(
        &self,
        key: &str,
        _: &str,
        n: u32,
        body: Payload,
        _: &str,
    ) -> Result<String> {
        self.check_s3("part")?;
        let body = body.to_vec();
        self.parts_seen.borrow_mut().push(body.len());
        self.uploads
            .borrow_mut()
            .get_mut(key)
            .expect("a part of an upload that was created")
            .insert(n, body.to_vec());
        Ok(format!("etag{n}"))
    }

    async fn complete_multipart(&self, key: &str, _: &str, parts: &[(u32, String)]) -> Result<()> {
        self.check_s3("complete")?;
        let up = self
            .uploads
            .borrow_mut()
            .remove(key)
            .expect("completing an upload that was created");
        assert_eq!(parts.len(), up.len());
        self.objects
            .borrow_mut()
            .insert(key.into(), up.into_values().flatten().collect());
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, _: &str) -> Result<()> {
        self.check_s3("abort")?;
        self.uploads.borrow_mut().remove(key);
        Ok(())
    }

    async fn list_uploads(&self, key: &str) -> Result<Vec<String>> {
        self.check_s3("list-uploads")?;
        Ok(if self.uploads.borrow().contains_key(key) {
            vec![UPLOAD_ID.into()]
        } else {
            Vec::new()
        })
    }

    async fn delete_object(&self, key: &str) -> Result<()> {
        self.check_s3("delete")?;
        self.objects.borrow_mut().remove(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.check_s3("exists")?;
        Ok(self.objects.borrow().contains_key(key))
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.check_s3("list")?;
        Ok(self
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> Result<(Vec<Listed>, Option<String>)> {
        self.check_s3("list")?;
        let per_page = match self.page_keys.get() {
            0 => 1000,
            n => n,
        };
        let ages = self.object_ages.borrow();
        let after = after.unwrap_or_default();
        let keys: Vec<Listed> = self
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix) && k.as_str() > after.as_str())
            .take(per_page + 1)
            .map(|k| Listed {
                key: k.clone(),
                age_minutes: ages.get(k).copied().unwrap_or(0),
            })
            .collect();
        let mut page = keys;
        let next = (page.len() > per_page).then(|| {
            page.truncate(per_page);
            page.last().map(|l| l.key.clone()).unwrap_or_default()
        });
        Ok((page, next))
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<HeldPart>> {
        self.check_s3("list-parts")?;
        if upload_id != UPLOAD_ID {
            return Err(Error::NotFound);
        }
        let uploads = self.uploads.borrow();
        let parts = uploads.get(key).ok_or(Error::NotFound)?;
        Ok(parts
            .iter()
            .map(|(n, body)| HeldPart {
                number: *n,
                etag: format!("\"etag{n}\""),
                size: body.len() as u64,
            })
            .collect())
    }

    async fn read_head(&self, key: &str, len: u64) -> Result<Vec<u8>> {
        self.check_s3("head")?;
        let objects = self.objects.borrow();
        let body = objects.get(key).ok_or(Error::NotFound)?;
        Ok(body[..body.len().min(len as usize)].to_vec())
    }

    async fn open(&self, key: &str) -> Result<Vec<u8>> {
        self.check_s3("open")?;
        self.objects
            .borrow()
            .get(key)
            .cloned()
            .ok_or(Error::NotFound)
    }

    fn presign_put(&self, key: &str, grant: &PutGrant<'_>) -> Result<Presigned> {
        self.check_s3("presign")?;
        let mut headers = vec![
            (
                "content-type".to_string(),
                grant.format.content_type().to_string(),
            ),
            ("content-length".to_string(), grant.bytes.to_string()),
            ("if-none-match".to_string(), "*".to_string()),
        ];
        if let Some(sha) = grant.sha256_b64 {
            headers.push(("x-amz-checksum-sha256".to_string(), sha.to_string()));
        }
        Ok(Presigned {
            url: format!("memory://bucket/{key}"),
            headers,
        })
    }

    fn presign_part(&self, key: &str, upload_id: &str, part: u32, len: u64) -> Result<Presigned> {
        self.check_s3("presign")?;
        Ok(Presigned {
            url: format!("memory://bucket/{key}?uploadId={upload_id}&partNumber={part}"),
            headers: vec![("content-length".to_string(), len.to_string())],
        })
    }

    fn public_url(&self, _: &str) -> Result<Option<String>> {
        Ok(None)
    }

    fn presign_ttl_secs(&self) -> u64 {
        900
    }
}

impl ImageRows for Memory {
    async fn get(&self, id: &str) -> Result<Option<Image>> {
        self.check_db("get")?;
        Ok(self.rows.borrow().get(id).cloned())
    }

    async fn list(&self, q: &ListQuery) -> Result<ImagePage> {
        self.check_db("list-rows")?;
        let rows = self.rows.borrow();
        let mut mine: Vec<Image> = rows
            .values()
            .rev()
            .filter(|r| q.owner.as_ref().is_none_or(|o| r.owner == *o))
            .filter(|r| r.status != Status::Deleting)
            .filter(|r| match q.status {
                Some(s) => r.status == s,
                None => r.status != Status::Uploading,
            })
            .filter(|r| q.tag.as_ref().is_none_or(|t| r.meta.tags.contains(t)))
            .filter(|r| q.after.as_ref().is_none_or(|a| r.id < *a))
            .take(q.limit as usize + 1)
            .cloned()
            .collect();
        let more = mine.len() > q.limit as usize;
        mine.truncate(q.limit as usize);
        Ok(ImagePage { images: mine, more })
    }

    async fn usage(&self, owner: &str) -> Result<Usage> {
        self.check_db("usage")?;
        let rows = self.rows.borrow();
        let expires = self.put_expires.borrow();
        let counted: Vec<&Image> = rows
            .values()
            .filter(|r| r.owner == owner)
            .filter(|r| r.status != Status::Deleting || expires.contains_key(&r.id))
            .collect();
        Ok(Usage {
            images: counted.len() as i64,
            bytes: counted.iter().map(|r| r.bytes.unwrap_or(0) as i64).sum(),
        })
    }

    async fn update_meta(&self, id: &str, meta: &Metadata) -> Result<()> {
        self.check_db("update")?;
        match self.rows.borrow_mut().get_mut(id) {
            Some(r) if r.status != Status::Deleting => r.meta = meta.clone(),
            _ => return Err(Error::NotFound),
        }
        self.touch(id);
        Ok(())
    }

    async fn delete_row(&self, id: &str) -> Result<()> {
        self.check_db("delete-row")?;
        self.rows.borrow_mut().remove(id);
        self.ages.borrow_mut().remove(id);
        self.idempotency_keys.borrow_mut().remove(id);
        Ok(())
    }

    async fn mark_deleting(&self, id: &str) -> Result<bool> {
        self.check_db("set-status")?;
        if let Some(r) = self.rows.borrow_mut().get_mut(id) {
            r.status = Status::Deleting;
        }
        self.touch(id);
        Ok(self.put_expires.borrow().get(id).is_some_and(|&m| m > 0))
    }

    async fn set_status_if(&self, id: &str, from: Status, to: Status) -> Result<()> {
        self.check_db("set-status")?;
        let mut rows = self.rows.borrow_mut();
        if let Some(r) = rows.get_mut(id).filter(|r| r.status == from) {
            r.status = to;
            self.touch(id);
        }
        Ok(())
    }
}

impl UploadClaims for Memory {
    async fn insert(&self, new: &NewImage, declared: Option<Declared<'_>>) -> Result<Inserted> {
        self.check_db("claim")?;
        if self.rows.borrow().contains_key(&new.id) {
            return Ok(Inserted::IdTaken);
        }
        if let Some(k) = &new.idempotency_key {
            let taken = self.idempotency_keys.borrow().iter().any(|(id, key)| {
                key == k
                    && self
                        .rows
                        .borrow()
                        .get(id)
                        .is_some_and(|r| r.owner == new.owner)
            });
            if taken {
                return Ok(Inserted::KeyTaken);
            }
            self.idempotency_keys
                .borrow_mut()
                .insert(new.id.clone(), k.clone());
        }
        let mut img = row(new, Status::Uploading);
        if new.probe.width == 0 || new.probe.height == 0 {
            img.width = None;
            img.height = None;
        }
        if let Some(d) = declared {
            img.bytes = Some(d.bytes);
            img.checksum_sha256 = d.sha256_b64.map(str::to_string);
            if let Some(ttl) = d.put_ttl_secs {
                let minutes = i64::try_from(ttl.div_ceil(60)).unwrap_or(i64::MAX);
                self.put_expires
                    .borrow_mut()
                    .insert(new.id.clone(), minutes);
            }
        }
        self.rows.borrow_mut().insert(new.id.clone(), img);
        self.touch(&new.id);
        Ok(Inserted::Inserted)
    }

    async fn by_idempotency_key(&self, owner: &str, key: &str) -> Result<Option<Image>> {
        self.check_db("claim")?;
        let keys = self.idempotency_keys.borrow();
        let rows = self.rows.borrow();
        Ok(keys
            .iter()
            .filter(|(_, k)| k.as_str() == key)
            .filter_map(|(id, _)| rows.get(id))
            .find(|r| r.owner == owner)
            .cloned())
    }

    async fn record_size(&self, id: &str, bytes: u64) -> Result<()> {
        self.check_db("finish")?;
        if let Some(r) = self.rows.borrow_mut().get_mut(id) {
            r.bytes = Some(bytes);
        }
        Ok(())
    }

    async fn finish(&self, new: &NewImage, meta: &Metadata, s: &Stored, at: Moment) -> Result<()> {
        self.check_db("finish")?;
        let id = new.id.as_str();
        let owner = {
            let mut rows = self.rows.borrow_mut();
            let Some(img) = rows.get_mut(id).filter(|r| r.status != Status::Deleting) else {
                return Err(Error::NotFound);
            };
            if img.status == Status::Uploading {
                img.status = Status::Pending;
            }
            img.meta = meta.clone();
            img.bytes = Some(s.bytes);
            img.checksum_sha256 = Some(s.sha256_b64.clone());
            img.updated_at = at.view();
            img.owner.clone()
        };
        self.touch(id);
        // As the table's trigger: a `pending` row holds its bytes unless
        // another image does.
        let key = (owner, s.sha256_b64.clone());
        if self.holder(&key).is_none() {
            self.checksums.borrow_mut().insert(key, id.to_string());
        }
        Ok(())
    }

    async fn duplicate_of(&self, owner: &str, sha256_b64: &str) -> Result<Option<Image>> {
        self.check_db("duplicate")?;
        Ok(self
            .rows
            .borrow()
            .values()
            .find(|r| {
                r.owner == owner
                    && matches!(r.status, Status::Pending | Status::Ready)
                    && r.checksum_sha256.as_deref() == Some(sha256_b64)
            })
            .cloned())
    }

    async fn hold_checksum(&self, owner: &str, sha256_b64: &str, id: &str) -> Result<Hold> {
        self.check_db("hold")?;
        let key = (owner.to_string(), sha256_b64.to_string());
        let hold = match self.holder(&key) {
            None => Hold::Held,
            Some(img) if img.id == id => Hold::Held,
            Some(img) if matches!(img.status, Status::Pending | Status::Ready) => {
                Hold::Duplicate(Box::new(img))
            }
            Some(img) if img.status == Status::Uploading && !self.stale_hold(&img.id) => {
                Hold::InFlight
            }
            Some(_) => Hold::Held,
        };
        if matches!(hold, Hold::Held) {
            self.checksums.borrow_mut().insert(key, id.to_string());
        }
        Ok(hold)
    }

    async fn release_hold(&self, id: &str) -> Result<()> {
        self.check_db("release")?;
        self.checksums.borrow_mut().retain(|_, holder| holder != id);
        Ok(())
    }
}

impl SweepRows for Memory {
    async fn stale(&self, status: Status, minutes: u32, limit: u32) -> Result<Vec<RowRef>> {
        self.check_db(match status {
            Status::Uploading => "stale-uploading",
            Status::Deleting => "stale-deleting",
            _ => "stale",
        })?;
        let ages = self.ages.borrow();
        let expires = self.put_expires.borrow();
        let live_put = |id: &str| {
            status == Status::Deleting && expires.get(id).is_some_and(|&m| m >= -i64::from(minutes))
        };
        Ok(self
            .rows
            .borrow()
            .values()
            .filter(|r| r.status == status && ages.get(&r.id).is_some_and(|&a| a > minutes))
            .filter(|r| !live_put(&r.id))
            .take(limit as usize)
            .map(|r| RowRef {
                id: r.id.clone(),
                original_key: r.original_key.clone(),
            })
            .collect())
    }

    async fn existing(&self, ids: &[&str]) -> Result<Vec<String>> {
        self.check_db("existing")?;
        let rows = self.rows.borrow();
        Ok(ids
            .iter()
            .filter(|id| rows.contains_key(**id))
            .map(|id| id.to_string())
            .collect())
    }

    async fn sweep_cursor(&self, prefix: &str) -> Result<Option<String>> {
        self.check_db("cursor")?;
        Ok(self.cursors.borrow().get(prefix).cloned())
    }

    async fn set_sweep_cursor(&self, prefix: &str, after: Option<&str>) -> Result<()> {
        self.check_db("cursor")?;
        let mut cursors = self.cursors.borrow_mut();
        match after {
            Some(key) => cursors.insert(prefix.to_string(), key.to_string()),
            None => cursors.remove(prefix),
        };
        Ok(())
    }

    async fn recorded_bucket(&self, bucket: &str) -> Result<String> {
        self.check_db("bucket")?;
        Ok(self
            .bucket
            .borrow_mut()
            .get_or_insert_with(|| bucket.to_string())
            .clone())
    }

    async fn fail_stale_pending(&self, minutes: u32) -> Result<u64> {
        self.check_db("fail-pending")?;
        let stale = self.stale(Status::Pending, minutes, u32::MAX).await?;
        for img in &stale {
            if let Some(r) = self.rows.borrow_mut().get_mut(&img.id) {
                r.status = Status::Failed;
                r.failure_reason = Some(format!("timeout: not resized within {minutes} minutes"));
            }
            self.touch(&img.id);
        }
        Ok(stale.len() as u64)
    }
}

impl WebhookStore for Memory {
    async fn endpoint(&self, owner: &str) -> Result<Option<Endpoint>> {
        self.check_db("webhooks")?;
        Ok(self.endpoints.borrow().get(owner).cloned())
    }

    async fn set_endpoint(&self, owner: &str, url: &str, secret: &str) -> Result<()> {
        self.check_db("webhooks")?;
        let mut endpoints = self.endpoints.borrow_mut();
        let secret = endpoints
            .get(owner)
            .map_or_else(|| secret.to_string(), |e| e.secret.clone());
        endpoints.insert(
            owner.to_string(),
            Endpoint {
                url: url.to_string(),
                secret,
            },
        );
        Ok(())
    }

    async fn remove_endpoint(&self, owner: &str) -> Result<bool> {
        self.check_db("webhooks")?;
        self.outbox
            .borrow_mut()
            .retain(|e| e.owner != owner || e.delivered);
        Ok(self.endpoints.borrow_mut().remove(owner).is_some())
    }

    async fn next_due_ms(&self) -> Result<Option<u64>> {
        self.check_db("webhooks")?;
        let endpoints = self.endpoints.borrow();
        Ok(self
            .outbox
            .borrow()
            .iter()
            .filter(|e| !e.delivered && !e.gave_up && endpoints.contains_key(&e.owner))
            .map(|e| e.due_in_secs.max(0) as u64 * 1000)
            .min())
    }

    async fn lease_due(
        &self,
        token: &str,
        limit: u32,
        per_owner: u32,
        _lease_secs: u64,
    ) -> Result<Vec<DueEvent>> {
        self.check_db("webhooks")?;
        let endpoints = self.endpoints.borrow();
        let mut outbox = self.outbox.borrow_mut();
        let due: Vec<usize> = (0..outbox.len())
            .filter(|&i| {
                let e = &outbox[i];
                !e.delivered
                    && !e.gave_up
                    && e.due_in_secs <= 0
                    && e.token.is_none()
                    && endpoints.contains_key(&e.owner)
            })
            .collect();
        // Round-robin: each owner's n-th event before anyone's (n+1)-th.
        let mut nth: BTreeMap<&str, u32> = BTreeMap::new();
        let mut ranked: Vec<(u32, usize)> = Vec::new();
        for &i in &due {
            let n = nth.entry(outbox[i].owner.as_str()).or_insert(0);
            *n += 1;
            if *n <= per_owner {
                ranked.push((*n, i));
            }
        }
        ranked.sort();
        ranked.truncate(limit as usize);
        let picked: Vec<usize> = ranked.into_iter().map(|(_, i)| i).collect();
        for &i in &picked {
            outbox[i].token = Some(token.to_string());
        }
        Ok(outbox
            .iter()
            .filter(|e| e.token.as_deref() == Some(token))
            .map(|e| DueEvent {
                outbox_id: e.id,
                owner: e.owner.clone(),
                event_id: e.event_id.clone(),
                image_id: e.image_id.clone(),
                event_type: e.event_type.clone(),
                attempts: e.attempts,
                endpoint: endpoints[&e.owner].clone(),
                created_at: "2026-12-05T00:00:00.000Z".into(),
            })
            .collect())
    }

    async fn give_event_id(&self, outbox_id: i64, candidate: &str) -> Result<Option<String>> {
        self.check_db("webhooks")?;
        let mut outbox = self.outbox.borrow_mut();
        let Some(e) = outbox.iter_mut().find(|e| e.id == outbox_id) else {
            return Ok(None);
        };
        Ok(Some(
            e.event_id
                .get_or_insert_with(|| candidate.to_string())
                .clone(),
        ))
    }

    async fn record(&self, outbox_id: i64, token: &str, attempt: &Attempt) -> Result<()> {
        self.check_db("webhook-record")?;
        let mut outbox = self.outbox.borrow_mut();
        let Some(e) = outbox
            .iter_mut()
            .find(|e| e.id == outbox_id && e.token.as_deref() == Some(token))
        else {
            return Ok(());
        };
        e.attempts += 1;
        e.token = None;
        match attempt {
            Attempt::Delivered => {
                e.delivered = true;
                e.last_error = None;
            }
            Attempt::Retry { why, after_secs } => {
                e.last_error = Some(why.clone());
                e.due_in_secs = i64::try_from(*after_secs).unwrap_or(i64::MAX);
            }
            Attempt::GaveUp { why } => {
                e.last_error = Some(why.clone());
                e.gave_up = true;
            }
        }
        Ok(())
    }

    async fn release(&self, token: &str) -> Result<()> {
        self.check_db("webhooks")?;
        for e in self.outbox.borrow_mut().iter_mut() {
            if e.token.as_deref() == Some(token) {
                e.token = None;
            }
        }
        Ok(())
    }

    async fn deliveries(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Delivery>> {
        self.check_db("webhooks")?;
        let outbox = self.outbox.borrow();
        let mut rows: Vec<&OutboxRow> = outbox
            .iter()
            .filter(|e| e.owner == owner && before.is_none_or(|b| e.id < b))
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(e.id));
        rows.truncate(limit as usize);
        Ok(rows.into_iter().map(OutboxRow::delivery).collect())
    }

    async fn requeue(&self, owner: &str, event_id: &str) -> Result<Requeue> {
        self.check_db("webhooks")?;
        if !self.endpoints.borrow().contains_key(owner) {
            return Ok(Requeue::NotFound);
        }
        let mut outbox = self.outbox.borrow_mut();
        let Some(e) = outbox
            .iter_mut()
            .find(|e| e.owner == owner && e.event_id.as_deref() == Some(event_id))
        else {
            return Ok(Requeue::NotFound);
        };
        if e.token.is_some() {
            return Ok(Requeue::Sending);
        }
        e.delivered = false;
        e.gave_up = false;
        e.due_in_secs = 0;
        Ok(Requeue::Requeued(Box::new(e.delivery())))
    }
}

impl OutboxRow {
    fn delivery(&self) -> Delivery {
        let state = if self.delivered {
            DeliveryState::Delivered
        } else if self.gave_up {
            DeliveryState::GaveUp
        } else if self.token.is_some() {
            DeliveryState::Sending
        } else if self.attempts > 0 {
            DeliveryState::Retrying
        } else {
            DeliveryState::Queued
        };
        let at = "2026-12-05T00:00:00.000Z".to_string();
        Delivery {
            outbox_id: self.id,
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            image_id: self.image_id.clone(),
            state,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            created_at: at.clone(),
            next_attempt_at: (!self.delivered && !self.gave_up).then(|| at.clone()),
            delivered_at: self.delivered.then(|| at.clone()),
            gave_up_at: self.gave_up.then_some(at),
        }
    }
}

/// A webhook POST received in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Webhook receivers in memory: what each URL answers (absent: 200), and
/// every POST in order.
#[derive(Default)]
pub struct Receivers {
    pub failing: RefCell<BTreeMap<String, String>>,
    pub received: RefCell<Vec<Received>>,
}

impl Receiver for Receivers {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::result::Result<(), String> {
        self.received.borrow_mut().push(Received {
            url: url.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        });
        match self.failing.borrow().get(url) {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}
