//! Webhooks: one endpoint per owner, events `image.ready` and
//! `image.failed`, signed per the Standard Webhooks spec.
//!
//! Events are never sent from the code that settles an image: a trigger
//! (migration 0005) writes an outbox row in the very UPDATE that marks the
//! row `ready` or `failed`, so the resize pays one indexed insert and an
//! event cannot be lost between the two. The cron delivers due rows (every
//! minute, when `wake` says there may be any), and a receiver that is down or answers non-2xx gets the same
//! event (same `webhook-id`) again after `RETRY_AFTER_SECS`; once that
//! schedule is used up the row is marked given up and kept for operators.
//! Delivery is at least once: receivers dedupe on `webhook-id`.

use base64::Engine;
use futures_util::StreamExt;
use pixport_aws::dataapi::{ExecuteStatementOutput, SqlParameter};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::transport;

/// Wait after the n-th failed attempt (Standard Webhooks' suggested
/// schedule, coarsened to the one-minute cron): 9 attempts over ~28 h.
pub const RETRY_AFTER_SECS: [u64; 8] = [60, 300, 1800, 7200, 18_000, 36_000, 36_000, 36_000];
/// Rows a cron run claims, round-robin across owners.
const BATCH: i64 = 50;
/// Rows of one owner a run claims: one owner's backlog cannot fill a run.
const PER_OWNER: i64 = 5;
/// Owners sent to at once: the connections a Worker may hold open at once.
const CONCURRENCY: usize = 6;
const SECRET_PREFIX: &str = "whsec_";
const MAX_URL: usize = 2000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How long to wait after `attempts` failed attempts; `None`: give up.
pub fn retry_after(attempts: u32) -> Option<u64> {
    RETRY_AFTER_SECS
        .get(attempts.checked_sub(1)? as usize)
        .copied()
}

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret(random: [u8; 24]) -> String {
    format!("{SECRET_PREFIX}{}", B64.encode(random))
}

/// The `webhook-signature` header: `v1,` + base64 HMAC-SHA256 over
/// `id.timestamp.body` keyed by the secret's decoded bytes.
pub fn sign(secret: &str, msg_id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
    let key = B64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut msg = format!("{msg_id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    Some(format!("v1,{}", B64.encode(hmac_sha256(&key, &msg))))
}

/// RFC 2104 over SHA-256 (the workspace's sha2; a few lines, no new crate).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Checks a webhook endpoint and returns it as it is stored and fetched
/// (normalised by the URL parser, so delivery reaches exactly what was
/// checked). The worker POSTs to it from Cloudflare's network on the
/// owner's behalf, so it must be a public HTTPS endpoint: no credentials in
/// it, no host that names this machine or a private network, and no IP
/// address in any spelling but the plain one. `allow_private`
/// (`WEBHOOK_ALLOW_PRIVATE`, local development only) lets plain `http` and
/// private or loopback addresses through, for receivers on the developer's
/// machine; the other rules hold even then. Hostnames are not resolved
/// (docs/security.md, "Webhook endpoints").
pub fn check_url(url: &str, allow_private: bool) -> ApiResult<String> {
    let refuse = |why: &str| ApiError::invalid_field("url", why.to_string());
    if url.len() > MAX_URL {
        return Err(refuse("at most 2000 characters"));
    }
    let parsed = worker::Url::parse(url).map_err(|_| refuse("an absolute https URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(refuse("an absolute https URL")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("a URL without credentials in it"));
    }
    let public = match parsed.host() {
        None => return Err(refuse("an absolute https URL")),
        Some(worker::url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            !(name == "localhost" || name.ends_with(".localhost"))
        }
        Some(worker::url::Host::Ipv4(ip)) => {
            // The parser reads `2130706433`, `0x7f.1`, `017700000001` and
            // `127.1` as 127.0.0.1, as fetch would: only the dotted form is
            // taken, so what the owner sees is what is reached.
            if raw_host(url).is_none_or(|h| h != ip.to_string()) {
                return Err(refuse("an IPv4 address only in dotted decimal (a.b.c.d)"));
            }
            is_public_v4(ip)
        }
        Some(worker::url::Host::Ipv6(ip)) => is_public_v6(ip),
    };
    if !public && !allow_private {
        return Err(refuse(
            "a public host (not loopback, private, link-local or otherwise reserved)",
        ));
    }
    Ok(parsed.to_string())
}

/// The host as written in `url` (between `//` and the path, without
/// credentials or port), lower-cased; `None` if there is none.
fn raw_host(url: &str) -> Option<String> {
    let rest = url.split_once("//")?.1;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    Some(host.to_ascii_lowercase())
}

/// Whether an IPv4 address is globally routable: not "this network",
/// private (RFC 1918), CGNAT (RFC 6598), loopback, link-local (cloud
/// metadata services live at 169.254.169.254), IETF protocol assignments,
/// documentation, benchmarking, multicast, reserved or broadcast.
pub fn is_public_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Whether an IPv6 address is globally routable: not unspecified,
/// loopback, link-local, site-local, unique-local, multicast or
/// documentation, and, for the forms that carry an IPv4 address
/// (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`), only if that address is public.
pub fn is_public_v6(ip: std::net::Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        is_public_v4(std::net::Ipv4Addr::new(a, b, c, d))
    };
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => false,
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        [0x2001, 0xdb8, ..] => false,
        [first, ..] => {
            !((first & 0xffc0) == 0xfe80      // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (first & 0xfe00) == 0xfc00 // unique-local fc00::/7
                || (first & 0xff00) == 0xff00) // multicast ff00::/8
        }
    }
}

/// The event body, as sent and signed.
pub fn event_body(event_type: &str, image_id: &str, occurred_at: &str) -> String {
    let status = event_type.strip_prefix("image.").unwrap_or(event_type);
    json!({
        "type": event_type,
        "timestamp": occurred_at,
        "data": {"id": image_id, "status": status},
    })
    .to_string()
}

#[derive(Deserialize)]
struct HookRow {
    url: String,
    secret: String,
}

#[derive(Deserialize)]
struct DueRow {
    id: i64,
    owner: String,
    /// The event's `webhook-id` once given (migration 0009).
    event_id: Option<String>,
    image_id: String,
    event_type: String,
    attempts: i64,
    url: String,
    secret: String,
    created_at: String,
}

/// What one delivery run did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub gave_up: usize,
    /// Claimed but not tried: their owner's receiver had just failed.
    pub deferred: usize,
    /// Outcomes that could not be recorded (the lease runs out instead).
    pub errors: usize,
}

/// The webhook table and outbox over the Data API.
pub struct Hooks<'a> {
    pub cfg: &'a Config,
}

impl Hooks<'_> {
    async fn exec(
        &self,
        sql: &str,
        params: Vec<SqlParameter>,
    ) -> ApiResult<ExecuteStatementOutput> {
        let mut st = self.cfg.database.execute_statement(sql).with_metadata();
        st.parameters = params;
        Ok(transport::run(&self.cfg.database, &st).await?)
    }

    /// The owner's endpoint and secret, if set.
    pub async fn get(&self, owner: &str) -> ApiResult<Option<Value>> {
        let out = self
            .exec(
                "SELECT url, secret FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        Ok(out
            .rows::<HookRow>()?
            .pop()
            .map(|h| json!({"url": h.url, "secret": h.secret})))
    }

    /// Sets the owner's endpoint; the secret is made once and kept when the
    /// URL changes (receivers need not be reconfigured).
    pub async fn put(&self, owner: &str, url: &str, secret: &str) -> ApiResult<Value> {
        let url = check_url(url, self.cfg.webhook_allow_private)?;
        self.exec(
            "INSERT INTO webhooks (owner, url, secret) VALUES (:owner, :url, :secret) \
             ON DUPLICATE KEY UPDATE url = VALUES(url), updated_at = CURRENT_TIMESTAMP(3)",
            vec![
                SqlParameter::new("owner", owner),
                SqlParameter::new("url", url.as_str()),
                SqlParameter::new("secret", secret),
            ],
        )
        .await?;
        self.get(owner).await?.ok_or(ApiError::NotFound)
    }

    /// Removes the endpoint and the events still waiting for it.
    pub async fn delete(&self, owner: &str) -> ApiResult<bool> {
        let out = self
            .exec(
                "DELETE FROM webhooks WHERE owner = :owner",
                vec![SqlParameter::new("owner", owner)],
            )
            .await?;
        self.exec(
            "DELETE FROM webhook_outbox WHERE owner = :owner AND delivered_at IS NULL",
            vec![SqlParameter::new("owner", owner)],
        )
        .await?;
        Ok(out.number_of_records_updated.unwrap_or(0) > 0)
    }

    /// When the earliest event still to be delivered is due (unix ms), if
    /// any: what the cron records so it need not ask the database until
    /// then (`wake`).
    pub async fn next_due_ms(&self) -> ApiResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Due {
            due_ms: Option<i64>,
        }
        let out = self
            .exec(
                "SELECT CAST(UNIX_TIMESTAMP(MIN(o.next_attempt_at)) * 1000 AS SIGNED) AS due_ms \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL",
                Vec::new(),
            )
            .await?;
        Ok(out
            .rows::<Due>()?
            .pop()
            .and_then(|d| d.due_ms)
            .map(|ms| u64::try_from(ms).unwrap_or(0)))
    }

    /// Gives outbox row `id` its event id (a ULID: the time and 80 random
    /// bits, so it says nothing about other owners' events), once: a
    /// delivery run racing this one keeps the id the first one stored.
    async fn give_event_id(&self, id: i64) -> ApiResult<String> {
        let mut random = [0u8; 10];
        getrandom::fill(&mut random)
            .map_err(|e| ApiError::Config(format!("no randomness: {e}")))?;
        let candidate = crate::id::ulid(clock::unix_ms(clock::now()), random);
        let out = self
            .exec(
                "UPDATE webhook_outbox SET event_id = :event_id WHERE id = :id AND event_id IS NULL",
                vec![
                    SqlParameter::new("event_id", candidate.as_str()),
                    SqlParameter::new("id", id),
                ],
            )
            .await?;
        if out.number_of_records_updated == Some(1) {
            return Ok(candidate);
        }
        #[derive(Deserialize)]
        struct Given {
            event_id: Option<String>,
        }
        let out = self
            .exec(
                "SELECT event_id FROM webhook_outbox WHERE id = :id",
                vec![SqlParameter::new("id", id)],
            )
            .await?;
        out.rows::<Given>()?
            .pop()
            .and_then(|g| g.event_id)
            .ok_or(ApiError::NotFound)
    }

    /// Sends the due events this run claims; failures are rescheduled, not
    /// returned.
    ///
    /// A run first claims its rows (`claim`): one conditional UPDATE leases
    /// them to this run's token, so a run that overlaps it (a slow run still
    /// going when the next minute's starts) cannot take them and no event is
    /// sent twice at once. It then sends owners side by side, at most
    /// `CONCURRENCY` at a time, each owner's events one by one, oldest
    /// first, and stops an owner's events at its first failure: a receiver
    /// that never answers costs its owner one timeout per run, and the
    /// other owners nothing. What it did not send it gives back at the end;
    /// a run that dies midway leaves its lease to run out (`lease_secs`).
    pub async fn deliver_due(&self) -> ApiResult<Delivered> {
        let token = claim_token()?;
        let claimed = self.claim(&token).await?;
        let mut by_owner: Vec<Vec<DueRow>> = Vec::new();
        for row in claimed {
            match by_owner.iter_mut().find(|g| g[0].owner == row.owner) {
                Some(group) => group.push(row),
                None => by_owner.push(vec![row]),
            }
        }
        let token = token.as_str();
        let runs = futures_util::stream::iter(by_owner)
            .map(|rows| self.deliver_owner(rows, token))
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut done = Delivered::default();
        for run in runs {
            done.sent += run.sent;
            done.retrying += run.retrying;
            done.gave_up += run.gave_up;
            done.deferred += run.deferred;
            done.errors += run.errors;
        }
        // What was claimed and not sent (owners stopped at a failure) is due
        // again at the next run, with no attempt counted.
        self.exec(
            "UPDATE webhook_outbox SET claim_token = NULL, claimed_until = NULL \
             WHERE claim_token = :token",
            vec![SqlParameter::new("token", token)],
        )
        .await?;
        Ok(done)
    }

    /// Leases up to `BATCH` due rows to `token`, taken round-robin across
    /// owners (each owner's oldest first, at most `PER_OWNER` each), and
    /// returns them oldest first. The lease is taken in one conditional
    /// UPDATE: a row another run holds (an unexpired `claimed_until`) is not
    /// taken, whichever run's statement comes first.
    async fn claim(&self, token: &str) -> ApiResult<Vec<DueRow>> {
        self.exec(
            "UPDATE webhook_outbox o JOIN ( \
               SELECT id FROM ( \
                 SELECT o.id, ROW_NUMBER() OVER (PARTITION BY o.owner ORDER BY o.id) AS nth \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
                 AND o.next_attempt_at <= CURRENT_TIMESTAMP(3) \
                 AND (o.claimed_until IS NULL OR o.claimed_until < CURRENT_TIMESTAMP(3)) \
               ) due WHERE due.nth <= :per_owner ORDER BY due.nth, due.id LIMIT :limit \
             ) pick ON pick.id = o.id \
             SET o.claim_token = :token, \
                 o.claimed_until = CURRENT_TIMESTAMP(3) + INTERVAL :lease SECOND \
             WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
             AND (o.claimed_until IS NULL OR o.claimed_until < CURRENT_TIMESTAMP(3))",
            vec![
                SqlParameter::new("per_owner", PER_OWNER),
                SqlParameter::new("limit", BATCH),
                SqlParameter::new("token", token),
                SqlParameter::new("lease", lease_secs(self.cfg) as i64),
            ],
        )
        .await?;
        let out = self
            .exec(
                "SELECT o.id, o.owner, o.event_id, o.image_id, o.event_type, o.attempts, w.url, \
                 w.secret, DATE_FORMAT(o.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at \
                 FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner \
                 WHERE o.claim_token = :token ORDER BY o.id",
                vec![SqlParameter::new("token", token)],
            )
            .await?;
        Ok(out.rows::<DueRow>()?)
    }

    /// Sends one owner's claimed events in order, up to its first failure.
    async fn deliver_owner(&self, rows: Vec<DueRow>, token: &str) -> Delivered {
        let mut done = Delivered::default();
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            match self.deliver_one(&row, token).await {
                Ok(true) => done.sent += 1,
                Ok(false) => {
                    match retry_after(attempts_after(&row)) {
                        Some(_) => done.retrying += 1,
                        None => done.gave_up += 1,
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(outbox = row.id, error = %e, "webhook delivery could not be recorded");
                    done.errors += 1;
                    break;
                }
            }
        }
        done.deferred += rows.len();
        done
    }

    /// One attempt at one event, recorded; `Ok(false)` when the receiver
    /// did not take it.
    async fn deliver_one(&self, row: &DueRow, token: &str) -> ApiResult<bool> {
        let attempts = attempts_after(row);
        let event_id = match &row.event_id {
            Some(e) => e.clone(),
            None => self.give_event_id(row.id).await?,
        };
        let id = SqlParameter::new("id", row.id);
        let token = SqlParameter::new("token", token);
        match post(row, &event_id, self.cfg).await {
            Ok(()) => {
                self.exec(
                    "UPDATE webhook_outbox SET delivered_at = CURRENT_TIMESTAMP(3), \
                     attempts = attempts + 1, last_error = NULL, claim_token = NULL, \
                     claimed_until = NULL WHERE id = :id AND claim_token = :token",
                    vec![id, token],
                )
                .await?;
                Ok(true)
            }
            Err(why) => {
                tracing::warn!(outbox = row.id, attempts, error = %why, "webhook delivery failed");
                let why = SqlParameter::new("why", why.chars().take(500).collect::<String>());
                match retry_after(attempts) {
                    Some(secs) => {
                        self.exec(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                             next_attempt_at = CURRENT_TIMESTAMP(3) + INTERVAL :secs SECOND, \
                             claim_token = NULL, claimed_until = NULL \
                             WHERE id = :id AND claim_token = :token",
                            vec![id, token, why, SqlParameter::new("secs", secs as i64)],
                        )
                        .await?;
                    }
                    None => {
                        self.exec(
                            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = :why, \
                             gave_up_at = CURRENT_TIMESTAMP(3), claim_token = NULL, \
                             claimed_until = NULL WHERE id = :id AND claim_token = :token",
                            vec![id, token, why],
                        )
                        .await?;
                    }
                }
                Ok(false)
            }
        }
    }
}

/// The attempt a delivery of `row` now makes (1 for the first).
fn attempts_after(row: &DueRow) -> u32 {
    u32::try_from(row.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// How long a run's claim on its rows lasts: longer than the run can take
/// (every owner slot busy with attempts that each run to the timeout, and
/// one owner's `PER_OWNER` attempts in a row), so a live run never loses a
/// row it is sending; a run that died frees its rows after this.
pub fn lease_secs(cfg: &Config) -> u64 {
    let timeout = cfg.webhook_timeout.as_secs().max(1);
    let rounds = (BATCH as u64).div_ceil(CONCURRENCY as u64) + PER_OWNER as u64;
    rounds * timeout + 60
}

/// A run's claim token: a ULID, unique to the run.
fn claim_token() -> ApiResult<String> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| ApiError::Config(format!("no randomness: {e}")))?;
    Ok(crate::id::ulid(clock::unix_ms(clock::now()), random))
}

/// One signed POST; any answer but 2xx, or none, is a failure to retry.
/// The endpoint is checked again (it may have been stored under older
/// rules), and a redirect is not followed: it is an answer like any other
/// non-2xx, so a public endpoint cannot bounce the request to an address
/// `check_url` refuses.
async fn post(row: &DueRow, event_id: &str, cfg: &Config) -> Result<(), String> {
    use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};
    let url = check_url(&row.url, cfg.webhook_allow_private)
        .map_err(|_| "the endpoint is no longer an allowed URL".to_string())?;
    let msg_id = format!("msg_{event_id}");
    let timestamp = clock::unix_ms(clock::now()) / 1000;
    let body = event_body(&row.event_type, &row.image_id, &row.created_at);
    let signature = sign(&row.secret, &msg_id, timestamp, body.as_bytes())
        .ok_or_else(|| "the stored secret is not a whsec_ secret".to_string())?;
    let headers = Headers::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("user-agent", "pixport-webhooks"),
        ("webhook-id", msg_id.as_str()),
        ("webhook-timestamp", timestamp.to_string().as_str()),
        ("webhook-signature", signature.as_str()),
    ] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(body.into()));
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    // The runtime's own timer aborts the fetch (`worker::Delay` cannot run
    // under nodejs_compat, whose setTimeout returns an object).
    let ms = u32::try_from(cfg.webhook_timeout.as_millis()).unwrap_or(u32::MAX);
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(ms));
    let resp = Fetch::Request(req)
        .send_with_signal(&signal)
        .await
        .map_err(|e| match signal.aborted() {
            true => format!("no answer within {ms} ms"),
            false => e.to_string(),
        })?;
    match resp.status_code() {
        200..=299 => Ok(()),
        code @ 300..=399 => Err(format!(
            "the receiver answered {code}, a redirect, which is not followed"
        )),
        code => Err(format!("the receiver answered {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' test suite.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, b""), None);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_schedule_grows_and_ends() {
        assert_eq!(retry_after(0), None);
        assert_eq!(retry_after(1), Some(60));
        assert!(RETRY_AFTER_SECS.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(retry_after(RETRY_AFTER_SECS.len() as u32 + 1), None);
    }

    #[test]
    fn only_absolute_https_urls_are_endpoints() {
        assert_eq!(
            check_url("https://example.org/hook", false).unwrap(),
            "https://example.org/hook"
        );
        assert_eq!(
            check_url("HTTPS://Example.ORG:8443/h?x=1", false).unwrap(),
            "https://example.org:8443/h?x=1"
        );
        assert!(check_url("https://8.8.8.8/h", false).is_ok());
        assert!(check_url("https://[2606:4700::1111]/h", false).is_ok());
        for bad in [
            "ftp://x/y",
            "/relative",
            "not a url",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://example.org/plain-http",
            "https://",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(new_secret([7; 24]).starts_with("whsec_"));
        assert!(sign(&new_secret([7; 24]), "m", 1, b"x").is_some());
    }

    /// Every address a Worker's request must not be sent to on an owner's
    /// say-so, in the spellings a URL parser accepts for it.
    #[test]
    fn private_and_reserved_hosts_are_refused_in_every_spelling() {
        for bad in [
            // Loopback, in decimal, hex, octal, short and mixed forms.
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://017700000001/",
            "https://127.0.0.1./",
            "https://%31%32%37.0.0.1/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://[::1]/",
            "https://[0:0:0:0:0:0:0:1]/",
            // Unspecified.
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            // Link-local, the cloud metadata address included.
            "https://169.254.169.254/latest/meta-data/",
            "https://2852039166/",
            "https://[fe80::1]/",
            "https://[fe80::1%25eth0]/",
            // Private, CGNAT, unique-local, site-local.
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://100.127.255.255/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fec0::1]/",
            // Multicast, reserved, broadcast, documentation, benchmarking.
            "https://224.0.0.1/",
            "https://239.255.255.250/",
            "https://240.0.0.1/",
            "https://255.255.255.255/",
            "https://[ff02::1]/",
            "https://192.0.2.1/",
            "https://198.18.0.1/",
            "https://[2001:db8::1]/",
            // IPv4 inside IPv6: mapped, compatible, NAT64, 6to4.
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:c0a8:0101::1]/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn public_addresses_only_in_plain_spelling() {
        // 8.8.8.8 is public, but a hook written as 134744072 or 0x8.8.8.8
        // is refused: only the dotted form is taken.
        for odd in [
            "https://134744072/",
            "https://0x08.8.8.8/",
            "https://8.526344/",
        ] {
            assert!(check_url(odd, false).is_err(), "{odd}");
            assert!(check_url(odd, true).is_err(), "{odd} (allow_private)");
        }
        assert!(check_url("https://100.128.0.1/", false).is_ok());
        assert!(check_url("https://172.32.0.1/", false).is_ok());
        assert!(check_url("https://[::ffff:8.8.8.8]/", false).is_ok());
    }

    #[test]
    fn credentials_are_never_part_of_an_endpoint() {
        for bad in [
            "https://user:pass@example.org/",
            "https://user@example.org/",
            "https://:pass@example.org/",
            "http://user:pass@127.0.0.1:8080/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_err(), "{bad} (allow_private)");
        }
    }

    #[test]
    fn local_development_may_opt_in_to_private_http_receivers() {
        for url in [
            "http://127.0.0.1:8080/x",
            "http://localhost:9/",
            "http://[::1]:8080/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("ftp://127.0.0.1/", true).is_err());
    }
}
