//! The row ports (`ImageRows`, `UploadClaims`, `SweepRows`) over the RDS
//! Data API; `webhooks` holds `WebhookStore`. Every statement is
//! parameterised: form fields only ever reach SQL as bound values.
//!
//! Every failure is a `pixport_aws::Error` naming the Data API, so `?`
//! turns it into the right `Database` error.

use pixport_aws::dataapi::{Database, ExecuteStatementOutput, Field, SqlParameter};
use pixport_aws::{Error as AwsError, Operation};
use pixport_contract::{Placeholder, Status, StoredVariant};
use serde::Deserialize;

use crate::adapters::transport;
use crate::domain::error::{Error, Result};
use crate::domain::fields::Visibility;
use crate::domain::model::{Image, ImagePage, ListQuery, Metadata, Moment, NewImage, Usage};
use crate::domain::ports::{
    Declared, HOLD_STALE_SECS, Hold, ImageRows, Inserted, QueueState, QueuedBatch, ReprocessQueue,
    RowRef, Selection, Stored, SweepRows, UploadClaims,
};

pub mod webhooks;

/// The images database behind the Data API.
#[derive(Debug, Clone)]
pub struct Db {
    pub database: Database,
}

const COLUMNS: &str = "id, owner, status, visibility, recipe, title, description, tags, extra, file_name, content_type, format, \
     bytes, width, height, checksum_sha256, original_key, variants, thumbhash, blurhash, dominant_color, failure_reason, \
     DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at, \
     DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS updated_at";

fn is_duplicate(e: &AwsError) -> bool {
    matches!(e, AwsError::DataApi(d) if d.message.contains("Duplicate entry"))
}

/// A duplicate of the primary key (MariaDB: `for key 'PRIMARY'`; MySQL 8:
/// `for key 'images.PRIMARY'`).
fn is_primary(e: &AwsError) -> bool {
    matches!(e, AwsError::DataApi(d) if d.message.contains("PRIMARY'"))
}

fn opt(v: Option<&str>) -> Field {
    v.map_or_else(Field::null, Field::from)
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A row as the Data API returns it (integers as longs, text as strings).
#[derive(Deserialize)]
struct Row {
    id: String,
    owner: String,
    status: String,
    visibility: String,
    recipe: Option<String>,
    title: Option<String>,
    description: Option<String>,
    tags: String,
    extra: String,
    file_name: Option<String>,
    content_type: String,
    format: Option<String>,
    bytes: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    checksum_sha256: Option<String>,
    original_key: String,
    variants: Option<String>,
    thumbhash: Option<String>,
    blurhash: Option<String>,
    dominant_color: Option<String>,
    failure_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

impl Row {
    fn into_image(self) -> Result<Image, AwsError> {
        let bad = |what: &str| AwsError::Rows(format!("row {} has an invalid {what}", self.id));
        let status = Status::parse(&self.status).ok_or_else(|| bad("status"))?;
        let visibility = Visibility::parse(&self.visibility).map_err(|_| bad("visibility"))?;
        let tags = serde_json::from_str(&self.tags).map_err(|_| bad("tags"))?;
        let extra = serde_json::from_str(&self.extra).map_err(|_| bad("extra"))?;
        let variants: Vec<StoredVariant> = match self.variants.as_deref() {
            None | Some("") => Vec::new(),
            Some(v) => serde_json::from_str(v).map_err(|_| bad("variants"))?,
        };
        let placeholder = match (self.thumbhash, self.blurhash, self.dominant_color) {
            (Some(thumbhash), Some(blurhash), Some(dominant_color)) => Some(Placeholder {
                thumbhash,
                blurhash,
                dominant_color,
            }),
            _ => None,
        };
        Ok(Image {
            status,
            meta: Metadata {
                title: self.title,
                description: self.description,
                tags,
                extra,
                visibility,
            },
            recipe: self.recipe,
            content_type: self.content_type,
            format: self.format,
            bytes: self.bytes.map(|b| b as u64),
            width: self.width.map(|w| w as u32),
            height: self.height.map(|h| h as u32),
            checksum_sha256: self.checksum_sha256,
            original_key: self.original_key,
            variants,
            placeholder,
            failure_reason: self.failure_reason,
            file_name: self.file_name,
            created_at: self.created_at,
            updated_at: self.updated_at,
            owner: self.owner,
            id: self.id,
        })
    }
}

/// The image rows of a result set (`SELECT {COLUMNS}` with metadata).
pub fn images(out: &ExecuteStatementOutput) -> Result<Vec<Image>, AwsError> {
    let rows: Vec<Row> = out.rows()?;
    rows.into_iter().map(Row::into_image).collect()
}

#[derive(Deserialize)]
struct StatusRow {
    status: String,
}

/// The Data API refuses a result over 1 MiB; what a page of whole rows
/// may add up to, by the columns' byte lengths, leaving room for the JSON
/// around them and for escaping.
const PAGE_BUDGET_BYTES: u64 = 512 * 1024;
/// What a row weighs besides its variable text (ids, keys, numbers, dates,
/// the JSON field names around each value).
const ROW_OVERHEAD_BYTES: u64 = 1024;
/// A row's variable-length columns, in bytes.
const ROW_BYTES: &str = "COALESCE(LENGTH(i.title), 0) + COALESCE(LENGTH(i.description), 0) \
     + LENGTH(i.tags) + LENGTH(i.extra) + COALESCE(LENGTH(i.file_name), 0) \
     + COALESCE(LENGTH(i.variants), 0) + COALESCE(LENGTH(i.failure_reason), 0)";

#[derive(Deserialize)]
struct RefRow {
    id: String,
    original_key: String,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

#[derive(Deserialize)]
struct BucketRow {
    bucket: String,
}

#[derive(Deserialize)]
struct CursorRow {
    after_key: Option<String>,
}

#[derive(Deserialize)]
struct Sized {
    id: String,
    size: i64,
}

/// How many of the rows (by their sizes, in page order) fit `budget`: at
/// least one, since one row alone is always under the cap.
fn fit(sizes: impl Iterator<Item = u64>, budget: u64) -> usize {
    let mut total = 0u64;
    let mut n = 0;
    for size in sizes {
        total += size + ROW_OVERHEAD_BYTES;
        if n > 0 && total > budget {
            break;
        }
        n += 1;
    }
    n
}

/// The Data API's refusal of a result over its 1 MiB cap.
fn is_too_large(e: &AwsError) -> bool {
    matches!(e, AwsError::DataApi(d) if d.message.contains("more than the allowed response size limit"))
}

/// The JOIN and WHERE of a list query, with their parameters.
fn list_filter(q: &ListQuery) -> (String, Vec<SqlParameter>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Some(tag) = &q.tag {
        sql.push_str(" JOIN image_tags t ON t.image_id = i.id AND t.tag = :tag");
        params.push(SqlParameter::new("tag", tag.as_str()));
    }
    // Tombstones (`deleting`) are gone for everyone, their owner too.
    sql.push_str(" WHERE i.status <> :deleting");
    if let Some(owner) = &q.owner {
        sql.push_str(" AND i.owner = :owner");
        params.push(SqlParameter::new("owner", owner.as_str()));
    }
    params.push(SqlParameter::new("deleting", Status::Deleting.as_str()));
    match q.status {
        Some(s) => {
            sql.push_str(" AND i.status = :status");
            params.push(SqlParameter::new("status", s.as_str()));
        }
        // Rows still uploading are listed only when asked for: most never
        // become images (abandoned, refused, or waiting on a slow client).
        None => {
            sql.push_str(" AND i.status <> :uploading");
            params.push(SqlParameter::new("uploading", Status::Uploading.as_str()));
        }
    }
    if let Some(after) = &q.after {
        sql.push_str(" AND i.id < :after");
        params.push(SqlParameter::new("after", after.as_str()));
    }
    (sql, params)
}

/// The owner's fields as statement parameters.
fn meta_params(meta: &Metadata) -> Vec<SqlParameter> {
    vec![
        SqlParameter::new("title", opt(meta.title.as_deref())),
        SqlParameter::new("description", opt(meta.description.as_deref())),
        SqlParameter::new("tags", json_text(&meta.tags)),
        SqlParameter::new("extra", json_text(&meta.extra)),
        SqlParameter::new("visibility", meta.visibility.as_str()),
    ]
}

impl Db {
    async fn run<O: Operation<Target = Database>>(&self, op: &O) -> Result<O::Output, AwsError> {
        transport::run(&self.database, op).await
    }

    async fn exec(
        &self,
        sql: &str,
        params: Vec<SqlParameter>,
        tx: Option<&str>,
    ) -> Result<ExecuteStatementOutput, AwsError> {
        let mut st = self.database.execute_statement(sql).with_metadata();
        st.parameters = params;
        st.transaction_id = tx.map(str::to_string);
        self.run(&st).await
    }

    async fn select(&self, sql: &str, params: Vec<SqlParameter>) -> Result<Vec<Image>> {
        let out = self.exec(sql, params, None).await?;
        Ok(images(&out)?)
    }

    /// Whole rows by id, newest first.
    async fn by_ids(&self, ids: &[&str]) -> Result<Vec<Image>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (list, params) = id_list(ids);
        let sql = format!("SELECT {COLUMNS} FROM images WHERE id IN ({list}) ORDER BY id DESC");
        self.select(&sql, params).await
    }

    /// Replaces an image's fields in one Data API transaction (its
    /// `image_tags` with them), rolling back on error. The UPDATE locks
    /// the row for the transaction: a DELETE racing this write waits, or
    /// has already marked or removed the row and this write is a 404 (not
    /// the tag insert's foreign-key error).
    async fn write_meta(&self, id: &str, meta: &Metadata) -> Result<()> {
        let tx = self
            .run(&self.database.begin_transaction())
            .await?
            .transaction_id;
        let result: Result<bool, AwsError> = async {
            let mut params = meta_params(meta);
            params.push(SqlParameter::new("id", id));
            params.push(SqlParameter::new("deleting", Status::Deleting.as_str()));
            let out = self
                .exec(
                    "UPDATE images SET title = :title, description = :description, tags = :tags, extra = :extra, \
                     visibility = :visibility, updated_at = CURRENT_TIMESTAMP(3) \
                     WHERE id = :id AND status <> :deleting",
                    params,
                    Some(&tx),
                )
                .await?;
            // MySQL counts only rows it changed: a row written within the
            // same millisecond with the same fields counts 0 but is there.
            if out.number_of_records_updated.unwrap_or(0) == 0 && !self.live(id, Some(&tx)).await? {
                return Ok(false);
            }
            self.exec("DELETE FROM image_tags WHERE image_id = :id", vec![SqlParameter::new("id", id)], Some(&tx))
                .await?;
            self.insert_tags(id, &meta.tags, Some(&tx)).await?;
            self.run(&self.database.commit_transaction(tx.clone())).await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => {
                if let Err(r) = self.run(&self.database.rollback_transaction(tx)).await {
                    tracing::warn!(error = %r, "rollback failed; the Data API expires the transaction");
                }
                match result {
                    Err(e) => Err(e.into()),
                    _ => Err(Error::NotFound),
                }
            }
        }
    }

    /// Whether the row is there and not being deleted.
    async fn live(&self, id: &str, tx: Option<&str>) -> Result<bool, AwsError> {
        let found = self
            .exec(
                "SELECT status FROM images WHERE id = :id",
                vec![SqlParameter::new("id", id)],
                tx,
            )
            .await?;
        Ok(found
            .rows::<StatusRow>()?
            .first()
            .is_some_and(|r| r.status != Status::Deleting.as_str()))
    }

    /// Indexes an image's tags (`image_tags`, what `?tag=` lists by), in one
    /// batch; nothing to send for none.
    async fn insert_tags(
        &self,
        id: &str,
        tags: &[String],
        tx: Option<&str>,
    ) -> Result<(), AwsError> {
        if tags.is_empty() {
            return Ok(());
        }
        let sets = tags
            .iter()
            .map(|t| {
                vec![
                    SqlParameter::new("tag", t.as_str()),
                    SqlParameter::new("id", id),
                ]
            })
            .collect();
        let mut batch = self.database.batch_execute_statement(
            "INSERT INTO image_tags (tag, image_id) VALUES (:tag, :id)",
            sets,
        );
        batch.transaction_id = tx.map(str::to_string);
        self.run(&batch).await?;
        Ok(())
    }

    /// Inserts the row as `uploading`; a declared PUT's lifetime is recorded
    /// as `upload_expires_at` (from now, so never earlier than the URL's own
    /// expiry).
    async fn insert_row(
        &self,
        new: &NewImage,
        declared: Option<Declared<'_>>,
    ) -> Result<(), AwsError> {
        let put_ttl = declared.and_then(|d| d.put_ttl_secs);
        // A declared upload's dimensions are unknown (0) until the resizer
        // reads them.
        let (width, height) = if new.probe.width == 0 || new.probe.height == 0 {
            (Field::null(), Field::null())
        } else {
            (
                Field::from(i64::from(new.probe.width)),
                Field::from(i64::from(new.probe.height)),
            )
        };
        let mut params = meta_params(&new.meta);
        params.extend([
            SqlParameter::new("id", new.id.as_str()),
            SqlParameter::new("owner", new.owner.as_str()),
            SqlParameter::new("file_name", opt(new.file_name.as_deref())),
            SqlParameter::new("content_type", new.probe.format.content_type()),
            SqlParameter::new("format", new.probe.format.as_str()),
            SqlParameter::new("width", width),
            SqlParameter::new("height", height),
            SqlParameter::new(
                "bytes",
                declared.map_or_else(Field::null, |d| Field::from(d.bytes as i64)),
            ),
            SqlParameter::new("sha", opt(declared.and_then(|d| d.sha256_b64))),
            SqlParameter::new("original_key", new.original_key.as_str()),
            SqlParameter::new("idem", opt(new.idempotency_key.as_deref())),
            SqlParameter::new("status", Status::Uploading.as_str()),
            SqlParameter::new("created", new.created.sql()),
        ]);
        let expires = put_ttl.map_or_else(
            || "NULL".to_string(),
            |secs| format!("CURRENT_TIMESTAMP(3) + INTERVAL {secs} SECOND"),
        );
        self.exec(
            &format!(
                "INSERT INTO images (id, owner, status, title, description, tags, extra, visibility, file_name, \
                 content_type, format, width, height, bytes, checksum_sha256, original_key, idempotency_key, \
                 upload_expires_at, created_at, updated_at) \
                 VALUES (:id, :owner, :status, :title, :description, :tags, :extra, :visibility, :file_name, :content_type, \
                 :format, :width, :height, :bytes, :sha, :original_key, :idem, {expires}, :created, :created)"
            ),
            params,
            None,
        )
        .await?;
        // Its tags are indexed from the start: a declared upload's fields
        // are final, and a form's `finish` replaces only tags that changed.
        if let Err(e) = self.insert_tags(&new.id, &new.meta.tags, None).await {
            if let Err(d) = self
                .exec(
                    "DELETE FROM images WHERE id = :id",
                    vec![SqlParameter::new("id", new.id.as_str())],
                    None,
                )
                .await
            {
                tracing::warn!(id = %new.id, error = %d, "a claimed row without its tags stays for the sweep");
            }
            return Err(e);
        }
        Ok(())
    }
}

impl ImageRows for Db {
    async fn get(&self, id: &str) -> Result<Option<Image>> {
        let sql = format!("SELECT {COLUMNS} FROM images WHERE id = :id");
        Ok(self
            .select(&sql, vec![SqlParameter::new("id", id)])
            .await?
            .pop())
    }

    /// One page of the list, newest first, and whether more rows follow.
    ///
    /// A row can carry ~55 KB (`extra`, a long description in 4-byte
    /// characters, tags, title), and the Data API refuses any result over
    /// 1 MiB, so a page is cut by size as well as by count: first the ids
    /// and byte sizes of up to `limit + 1` rows (a few bytes each), then the
    /// whole rows of the prefix that fits `PAGE_BUDGET_BYTES`. Should the
    /// Data API still find the result too large (escaping grows text), the
    /// page is halved until it fits; one row alone always does.
    async fn list(&self, q: &ListQuery) -> Result<ImagePage> {
        let (filter, mut params) = list_filter(q);
        params.push(SqlParameter::new("limit", i64::from(q.limit) + 1));
        let sql = format!(
            "SELECT i.id, {ROW_BYTES} AS size FROM images i{filter} ORDER BY i.id DESC LIMIT :limit"
        );
        let out = self.exec(&sql, params, None).await?;
        let sizes: Vec<Sized> = out.rows()?;
        let counted = sizes.len().min(q.limit as usize);
        let mut take = fit(
            sizes.iter().take(counted).map(|r| r.size.max(0) as u64),
            PAGE_BUDGET_BYTES,
        );
        loop {
            let ids: Vec<&str> = sizes[..take].iter().map(|r| r.id.as_str()).collect();
            match self.by_ids(&ids).await {
                Ok(images) => {
                    return Ok(ImagePage {
                        images,
                        more: sizes.len() > take,
                    });
                }
                Err(Error::Database(e)) if is_too_large(&e) && take > 1 => {
                    tracing::warn!(
                        rows = take,
                        "list page over the Data API's response cap; halving it"
                    );
                    take /= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What `owner` holds: its rows (but those being deleted) and the bytes
    /// of their originals. A row still `uploading` through `POST /images`
    /// has no size yet and counts as an image of 0 bytes. A row being
    /// deleted whose upload had a presigned PUT counts until it is gone: a
    /// tombstone (see `delete`) stands for what that PUT may still store.
    async fn usage(&self, owner: &str) -> Result<Usage> {
        let out = self
            .exec(
                "SELECT COUNT(*) AS images, CAST(COALESCE(SUM(bytes), 0) AS SIGNED) AS bytes \
                 FROM images WHERE owner = :owner \
                 AND (status <> :deleting OR upload_expires_at IS NOT NULL)",
                vec![
                    SqlParameter::new("owner", owner),
                    SqlParameter::new("deleting", Status::Deleting.as_str()),
                ],
                None,
            )
            .await?;
        Ok(out.rows::<Usage>()?.pop().unwrap_or_default())
    }

    async fn update_meta(&self, id: &str, meta: &Metadata) -> Result<()> {
        self.write_meta(id, meta).await
    }

    async fn delete_row(&self, id: &str) -> Result<()> {
        self.exec(
            "DELETE FROM images WHERE id = :id",
            vec![SqlParameter::new("id", id)],
            None,
        )
        .await?;
        Ok(())
    }

    async fn mark_deleting(&self, id: &str) -> Result<bool> {
        self.exec(
            "UPDATE images SET status = :status, updated_at = CURRENT_TIMESTAMP(3) WHERE id = :id",
            vec![
                SqlParameter::new("status", Status::Deleting.as_str()),
                SqlParameter::new("id", id),
            ],
            None,
        )
        .await?;
        let out = self
            .exec(
                "SELECT id FROM images WHERE id = :id AND upload_expires_at > CURRENT_TIMESTAMP(3)",
                vec![SqlParameter::new("id", id)],
                None,
            )
            .await?;
        Ok(!out.rows::<IdRow>()?.is_empty())
    }

    /// Moves a row from one status to another, only if it is still in the first.
    async fn set_status_if(&self, id: &str, from: Status, to: Status) -> Result<()> {
        self.exec(
            "UPDATE images SET status = :to, updated_at = CURRENT_TIMESTAMP(3) WHERE id = :id AND status = :from",
            vec![
                SqlParameter::new("to", to.as_str()),
                SqlParameter::new("from", from.as_str()),
                SqlParameter::new("id", id),
            ],
            None,
        )
        .await?;
        Ok(())
    }
}

impl UploadClaims for Db {
    async fn insert(&self, new: &NewImage, declared: Option<Declared<'_>>) -> Result<Inserted> {
        match self.insert_row(new, declared).await {
            Ok(()) => Ok(Inserted::Inserted),
            Err(e) if is_duplicate(&e) && is_primary(&e) => Ok(Inserted::IdTaken),
            Err(e) if is_duplicate(&e) && new.idempotency_key.is_some() => Ok(Inserted::KeyTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn by_idempotency_key(&self, owner: &str, key: &str) -> Result<Option<Image>> {
        let sql =
            format!("SELECT {COLUMNS} FROM images WHERE owner = :owner AND idempotency_key = :key");
        Ok(self
            .select(
                &sql,
                vec![
                    SqlParameter::new("owner", owner),
                    SqlParameter::new("key", key),
                ],
            )
            .await?
            .pop())
    }

    async fn record_size(&self, id: &str, bytes: u64) -> Result<()> {
        self.exec(
            "UPDATE images SET bytes = :bytes WHERE id = :id",
            vec![
                SqlParameter::new("bytes", bytes as i64),
                SqlParameter::new("id", id),
            ],
            None,
        )
        .await?;
        Ok(())
    }

    async fn finish(
        &self,
        new: &NewImage,
        meta: &Metadata,
        stored: &Stored,
        at: Moment,
    ) -> Result<()> {
        // No transaction: the row is this upload's own and still hidden
        // (`uploading`), and a step that fails withdraws it whole. The tags
        // first, so a row that became `pending` has them.
        let id = new.id.as_str();
        if meta.tags != new.meta.tags {
            if !new.meta.tags.is_empty() {
                self.exec(
                    "DELETE FROM image_tags WHERE image_id = :id",
                    vec![SqlParameter::new("id", id)],
                    None,
                )
                .await?;
            }
            self.insert_tags(id, &meta.tags, None).await?;
        }
        // The resize Lambda may already have finished (the event can beat
        // this update), so only `uploading` moves to `pending`.
        let mut params = meta_params(meta);
        params.extend([
            SqlParameter::new("id", id),
            SqlParameter::new("bytes", stored.bytes as i64),
            SqlParameter::new("sha", stored.sha256_b64.as_str()),
            SqlParameter::new("uploading", Status::Uploading.as_str()),
            SqlParameter::new("pending", Status::Pending.as_str()),
            SqlParameter::new("deleting", Status::Deleting.as_str()),
            SqlParameter::new("at", at.sql()),
        ]);
        let out = self
            .exec(
                "UPDATE images SET title = :title, description = :description, tags = :tags, extra = :extra, \
                 visibility = :visibility, status = IF(status = :uploading, :pending, status), bytes = :bytes, \
                 checksum_sha256 = :sha, updated_at = :at WHERE id = :id AND status <> :deleting",
                params,
                None,
            )
            .await?;
        if out.number_of_records_updated.unwrap_or(0) == 0 && !self.live(id, None).await? {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    async fn duplicate_of(&self, owner: &str, sha256_b64: &str) -> Result<Option<Image>> {
        // `images_owner_sha256` (migration 0005) makes this an index lookup.
        let sql = format!(
            "SELECT {COLUMNS} FROM images WHERE owner = :owner AND checksum_sha256 = :sha \
             AND status IN ('pending', 'ready') ORDER BY id LIMIT 1"
        );
        Ok(self
            .select(
                &sql,
                vec![
                    SqlParameter::new("owner", owner),
                    SqlParameter::new("sha", sha256_b64),
                ],
            )
            .await?
            .pop())
    }

    async fn hold_checksum(&self, owner: &str, sha256_b64: &str, id: &str) -> Result<Hold> {
        let params = |extra: Option<(&str, &str)>| {
            let mut p = vec![
                SqlParameter::new("owner", owner),
                SqlParameter::new("sha", sha256_b64),
                SqlParameter::new("id", id),
            ];
            p.extend(extra.map(|(k, v)| SqlParameter::new(k, v)));
            p
        };
        // Twice at most: a holder that failed or is being deleted hands its
        // hold over, and one whose row went meanwhile leaves a free key.
        for _ in 0..2 {
            let insert = self
                .exec(
                    "INSERT INTO image_checksums (owner, checksum_sha256, image_id) VALUES (:owner, :sha, :id)",
                    params(None),
                    None,
                )
                .await;
            match insert {
                Ok(_) => return Ok(Hold::Held),
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let sql = format!(
                "SELECT {COLUMNS} FROM images WHERE id = (SELECT image_id FROM image_checksums \
                 WHERE owner = :owner AND checksum_sha256 = :sha)"
            );
            let Some(holder) = self.select(&sql, params(None)).await?.pop() else {
                continue;
            };
            match holder.status {
                // A hold retried after its answer was lost.
                _ if holder.id == id => return Ok(Hold::Held),
                Status::Pending | Status::Ready => return Ok(Hold::Duplicate(Box::new(holder))),
                status => {
                    // Failed, being deleted, or `uploading` past its time:
                    // taken over only if it is still the same holder.
                    let stale = if status == Status::Uploading {
                        format!(
                            " AND held_at < CURRENT_TIMESTAMP(3) - INTERVAL {HOLD_STALE_SECS} SECOND"
                        )
                    } else {
                        String::new()
                    };
                    let out = self
                        .exec(
                            &format!(
                                "UPDATE image_checksums SET image_id = :id, held_at = CURRENT_TIMESTAMP(3) \
                                 WHERE owner = :owner AND checksum_sha256 = :sha AND image_id = :old{stale}"
                            ),
                            params(Some(("old", holder.id.as_str()))),
                            None,
                        )
                        .await?;
                    if out.number_of_records_updated == Some(1) {
                        return Ok(Hold::Held);
                    }
                    if status == Status::Uploading {
                        return Ok(Hold::InFlight);
                    }
                }
            }
        }
        Ok(Hold::InFlight)
    }

    async fn release_hold(&self, id: &str) -> Result<()> {
        self.exec(
            "DELETE FROM image_checksums WHERE image_id = :id",
            vec![SqlParameter::new("id", id)],
            None,
        )
        .await?;
        Ok(())
    }
}

/// The filter of a reprocess selection over `ready` rows, and its parameters.
fn selection_filter(sel: &Selection) -> (String, Vec<SqlParameter>) {
    let mut sql = String::from(" status = :ready");
    let mut params = vec![SqlParameter::new("ready", Status::Ready.as_str())];
    if let Some(owner) = &sel.owner {
        sql.push_str(" AND owner = :owner");
        params.push(SqlParameter::new("owner", owner.as_str()));
    }
    if let Some(recipe) = &sel.except_recipe {
        sql.push_str(" AND (recipe IS NULL OR recipe <> :recipe)");
        params.push(SqlParameter::new("recipe", recipe.as_str()));
    }
    (sql, params)
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

#[derive(Deserialize)]
struct RecipeRow {
    recipe: Option<String>,
    n: i64,
}

impl ReprocessQueue for Db {
    async fn queue_one(&self, owner: &str, id: &str) -> Result<Option<Status>> {
        let params = || {
            vec![
                SqlParameter::new("id", id),
                SqlParameter::new("owner", owner),
                SqlParameter::new("ready", Status::Ready.as_str()),
            ]
        };
        let out = self
            .exec(
                "UPDATE images SET reprocess_at = CURRENT_TIMESTAMP(3) \
                 WHERE id = :id AND owner = :owner AND status = :ready",
                params(),
                None,
            )
            .await?;
        if out.number_of_records_updated.unwrap_or(0) > 0 {
            return Ok(Some(Status::Ready));
        }
        let found = self
            .exec(
                "SELECT status FROM images WHERE id = :id AND owner = :owner AND status <> :ready",
                params(),
                None,
            )
            .await?;
        Ok(found
            .rows::<StatusRow>()?
            .first()
            .and_then(|r| Status::parse(&r.status)))
    }

    async fn queue_batch(
        &self,
        sel: &Selection,
        after: Option<&str>,
        limit: u32,
    ) -> Result<QueuedBatch> {
        let (filter, mut params) = selection_filter(sel);
        params.push(SqlParameter::new("after", after.unwrap_or("")));
        params.push(SqlParameter::new("limit", i64::from(limit)));
        let out = self
            .exec(
                &format!(
                    "SELECT id FROM images WHERE{filter} AND id > :after ORDER BY id LIMIT :limit"
                ),
                params,
                None,
            )
            .await?;
        let ids: Vec<IdRow> = out.rows()?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(QueuedBatch {
                queued: 0,
                next: None,
            });
        };
        let (filter, mut params) = selection_filter(sel);
        params.push(SqlParameter::new("first", first.id.as_str()));
        params.push(SqlParameter::new("last", last.id.as_str()));
        let out = self
            .exec(
                &format!(
                    "UPDATE images SET reprocess_at = CURRENT_TIMESTAMP(3) \
                     WHERE{filter} AND id >= :first AND id <= :last"
                ),
                params,
                None,
            )
            .await?;
        Ok(QueuedBatch {
            queued: out.number_of_records_updated.unwrap_or(0).max(0) as u64,
            next: (ids.len() as u32 == limit).then(|| last.id.clone()),
        })
    }

    async fn state(&self) -> Result<QueueState> {
        let ready = || vec![SqlParameter::new("ready", Status::Ready.as_str())];
        let queued = self
            .exec(
                "SELECT COUNT(*) AS n FROM images WHERE reprocess_at IS NOT NULL AND status = :ready",
                ready(),
                None,
            )
            .await?
            .rows::<CountRow>()?
            .first()
            .map_or(0, |r| r.n.max(0) as u64);
        let recipes = self
            .exec(
                "SELECT recipe, COUNT(*) AS n FROM images WHERE status = :ready \
                 GROUP BY recipe ORDER BY n DESC LIMIT 100",
                ready(),
                None,
            )
            .await?
            .rows::<RecipeRow>()?
            .into_iter()
            .map(|r| (r.recipe, r.n.max(0) as u64))
            .collect();
        Ok(QueueState { queued, recipes })
    }
}

impl SweepRows for Db {
    /// Rows in `status` for more than `minutes`, oldest first: `uploading`
    /// counted from the claim (its creation), anything else from the row's
    /// last update (e.g. `deleting`: a DELETE that stopped half way).
    async fn stale(&self, status: Status, minutes: u32, limit: u32) -> Result<Vec<RowRef>> {
        let since = if status == Status::Uploading {
            "created_at"
        } else {
            "updated_at"
        };
        // A tombstone waits until its presigned PUT expired as long ago.
        let put = if status == Status::Deleting {
            " AND (upload_expires_at IS NULL \
             OR upload_expires_at < CURRENT_TIMESTAMP(3) - INTERVAL :minutes MINUTE)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, original_key FROM images WHERE status = :status \
             AND {since} < CURRENT_TIMESTAMP(3) - INTERVAL :minutes MINUTE{put} ORDER BY id LIMIT :limit"
        );
        let out = self
            .exec(
                &sql,
                vec![
                    SqlParameter::new("status", status.as_str()),
                    SqlParameter::new("minutes", i64::from(minutes)),
                    SqlParameter::new("limit", i64::from(limit)),
                ],
                None,
            )
            .await?;
        let rows: Vec<RefRow> = out.rows()?;
        Ok(rows
            .into_iter()
            .map(|r| RowRef {
                id: r.id,
                original_key: r.original_key,
            })
            .collect())
    }

    async fn existing(&self, ids: &[&str]) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (list, params) = id_list(ids);
        let sql = format!("SELECT id FROM images WHERE id IN ({list})");
        let out = self.exec(&sql, params, None).await?;
        let rows: Vec<IdRow> = out.rows()?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Marks `pending` rows untouched for `minutes` as failed: their resize
    /// never finished (every attempt killed by a timeout, or no event came).
    /// A later delivery can still complete them (`failed` is processable).
    async fn fail_stale_pending(&self, minutes: u32) -> Result<u64> {
        let out = self
            .exec(
                "UPDATE images SET status = :failed, \
                   failure_reason = CONCAT('timeout: not resized within ', :minutes, ' minutes'), \
                   updated_at = CURRENT_TIMESTAMP(3) \
                 WHERE status = :pending AND updated_at < CURRENT_TIMESTAMP(3) - INTERVAL :minutes MINUTE",
                vec![
                    SqlParameter::new("minutes", i64::from(minutes)),
                    SqlParameter::new("failed", Status::Failed.as_str()),
                    SqlParameter::new("pending", Status::Pending.as_str()),
                ],
                None,
            )
            .await?;
        Ok(out.number_of_records_updated.unwrap_or(0).max(0) as u64)
    }

    async fn sweep_cursor(&self, prefix: &str) -> Result<Option<String>> {
        let out = self
            .exec(
                "SELECT after_key FROM sweep_cursors WHERE prefix = :prefix",
                vec![SqlParameter::new("prefix", prefix)],
                None,
            )
            .await?;
        let rows: Vec<CursorRow> = out.rows()?;
        Ok(rows.into_iter().next().and_then(|r| r.after_key))
    }

    async fn set_sweep_cursor(&self, prefix: &str, after: Option<&str>) -> Result<()> {
        self.exec(
            "INSERT INTO sweep_cursors (prefix, after_key) VALUES (:prefix, :after) \
             ON DUPLICATE KEY UPDATE after_key = VALUES(after_key), updated_at = CURRENT_TIMESTAMP(3)",
            vec![
                SqlParameter::new("prefix", prefix),
                SqlParameter::new("after", opt(after)),
            ],
            None,
        )
        .await?;
        Ok(())
    }

    async fn recorded_bucket(&self, bucket: &str) -> Result<String> {
        self.exec(
            "INSERT IGNORE INTO sweep_bucket (singleton, bucket) VALUES (1, :bucket)",
            vec![SqlParameter::new("bucket", bucket)],
            None,
        )
        .await?;
        let out = self
            .exec(
                "SELECT bucket FROM sweep_bucket WHERE singleton = 1",
                vec![],
                None,
            )
            .await?;
        out.rows::<BucketRow>()?
            .pop()
            .map(|r| r.bucket)
            .ok_or_else(|| AwsError::Rows("sweep_bucket holds no row".into()).into())
    }
}

/// `:id0, :id1, ...` for an `IN (...)` and the parameters that bind them:
/// the Data API takes no array parameters.
fn id_list(ids: &[&str]) -> (String, Vec<SqlParameter>) {
    let names: Vec<String> = (0..ids.len()).map(|n| format!(":id{n}")).collect();
    let params = ids
        .iter()
        .enumerate()
        .map(|(n, id)| SqlParameter::new(format!("id{n}"), *id))
        .collect();
    (names.join(", "), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_what_fits_the_budget_and_never_nothing() {
        let row = PAGE_BUDGET_BYTES / 4 - ROW_OVERHEAD_BYTES;
        assert_eq!(fit([row; 10].into_iter(), PAGE_BUDGET_BYTES), 4);
        assert_eq!(fit([1u64; 100].into_iter(), PAGE_BUDGET_BYTES), 100);
        assert_eq!(
            fit([10 * PAGE_BUDGET_BYTES, 1].into_iter(), PAGE_BUDGET_BYTES),
            1
        );
        assert_eq!(fit(std::iter::empty(), PAGE_BUDGET_BYTES), 0);
    }
}
