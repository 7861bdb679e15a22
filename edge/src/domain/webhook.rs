//! Webhooks: one endpoint per owner, events `image.ready` and
//! `image.failed`, signed per the Standard Webhooks spec.
//!
//! Events are never sent from the code that settles an image: a trigger
//! (migration 0005) writes an outbox row in the very UPDATE that marks the
//! row `ready` or `failed`, so the resize pays one indexed insert and an
//! event cannot be lost between the two. The Lambda's wake-up call starts
//! a delivery run right after (`pixport_contract::wake::call`), and the
//! cron delivers what is still due (every minute, when `wake` says there
//! may be any), and a receiver that is down or answers non-2xx gets the same
//! event (same `webhook-id`) again after `RETRY_AFTER_SECS`; once that
//! schedule is used up the row is marked given up and kept for operators.
//! Delivery is at least once: receivers dedupe on `webhook-id`.

use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use serde_json::json;

use crate::domain::error::{Error, Result};
use crate::domain::hmac::hmac_sha256;
use crate::domain::id;
use crate::domain::ports::{
    Attempt, Delivery, DueEvent, Endpoint, Receiver, Requeue, WebhookStore,
};
use crate::runtime::clock;

/// Wait after the n-th failed attempt (Standard Webhooks' suggested
/// schedule, coarsened to the one-minute cron): 9 attempts over ~28 h.
pub const RETRY_AFTER_SECS: [u64; 8] = [60, 300, 1800, 7200, 18_000, 36_000, 36_000, 36_000];
/// Rows a cron run claims, round-robin across owners.
const BATCH: u32 = 50;
/// Rows of one owner a run claims: one owner's backlog cannot fill a run.
const PER_OWNER: u32 = 5;
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
pub fn check_url(url: &str, allow_private: bool) -> Result<String> {
    let refuse = |why: &str| Error::invalid_field("url", why.to_string());
    if url.len() > MAX_URL {
        return Err(refuse("at most 2000 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|_| refuse("an absolute https URL"))?;
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
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            !(name == "localhost" || name.ends_with(".localhost"))
        }
        Some(url::Host::Ipv4(ip)) => {
            // The parser reads `2130706433`, `0x7f.1`, `017700000001` and
            // `127.1` as 127.0.0.1, as fetch would: only the dotted form is
            // taken, so what the owner sees is what is reached.
            if raw_host(url).is_none_or(|h| h != ip.to_string()) {
                return Err(refuse("an IPv4 address only in dotted decimal (a.b.c.d)"));
            }
            is_public_v4(ip)
        }
        Some(url::Host::Ipv6(ip)) => is_public_v6(ip),
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

/// What one delivery run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub gave_up: usize,
    /// Claimed but not tried: their owner's receiver had just failed.
    pub deferred: usize,
    /// Outcomes that could not be recorded (the lease runs out instead).
    pub errors: usize,
}

/// The webhook service, over the store and the receiver.
pub struct Webhooks<'a, S, X> {
    pub store: &'a S,
    pub receiver: &'a X,
    /// Plain `http` and private receivers allowed (`check_url`).
    pub allow_private: bool,
    /// How long one POST may take (`WEBHOOK_TIMEOUT_MS`).
    pub timeout: Duration,
}

impl<S: WebhookStore, X: Receiver> Webhooks<'_, S, X> {
    /// The owner's endpoint and secret, if set.
    pub async fn get(&self, owner: &str) -> Result<Option<Endpoint>> {
        self.store.endpoint(owner).await
    }

    /// Sets the owner's endpoint; the secret is made once and kept when the
    /// URL changes (receivers need not be reconfigured).
    pub async fn put(&self, owner: &str, url: &str) -> Result<Endpoint> {
        let url = check_url(url.trim(), self.allow_private)?;
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).map_err(|e| Error::Runtime(format!("no randomness: {e}")))?;
        self.store
            .set_endpoint(owner, &url, &new_secret(random))
            .await?;
        self.store.endpoint(owner).await?.ok_or(Error::NotFound)
    }

    /// Removes the endpoint and the events still waiting for it.
    pub async fn delete(&self, owner: &str) -> Result<()> {
        if self.store.remove_endpoint(owner).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// When the earliest event still to be delivered is due (unix ms), if
    /// any: what the cron records so it need not ask the database until
    /// then (`adapters::wake`).
    pub async fn next_due_ms(&self) -> Result<Option<u64>> {
        self.store.next_due_ms().await
    }

    /// Sends the due events this run leases; failures are rescheduled, not
    /// returned.
    ///
    /// A run first leases its rows: the store hands them to this run's
    /// token, so a run that overlaps it (a slow run still going when the
    /// next minute's starts) cannot take them and no event is sent twice
    /// at once. It then sends owners side by side, at most `CONCURRENCY`
    /// at a time, each owner's events one by one, oldest first, and stops
    /// an owner's events at its first failure: a receiver that never
    /// answers costs its owner one timeout per run, and the other owners
    /// nothing. What it did not send it gives back at the end; a run that
    /// dies midway leaves its lease to run out (`lease_secs`).
    pub async fn deliver_due(&self) -> Result<Delivered> {
        self.deliver_due_until(None).await
    }

    /// `deliver_due`, starting no attempt after `stop_at_ms` (unix ms): a
    /// run that must end within a bound (the wake-up's, inside the
    /// runtime's time after a response) gives back what it did not start.
    pub async fn deliver_due_until(&self, stop_at_ms: Option<u64>) -> Result<Delivered> {
        let token = new_ulid()?;
        let leased = self
            .store
            .lease_due(&token, BATCH, PER_OWNER, lease_secs(self.timeout))
            .await?;
        let mut by_owner: Vec<Vec<DueEvent>> = Vec::new();
        for event in leased {
            match by_owner.iter_mut().find(|g| g[0].owner == event.owner) {
                Some(group) => group.push(event),
                None => by_owner.push(vec![event]),
            }
        }
        let token = token.as_str();
        let runs = futures_util::stream::iter(by_owner)
            .map(|events| self.deliver_owner(events, token, stop_at_ms))
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
        // What was leased and not sent (owners stopped at a failure) is due
        // again at the next run, with no attempt counted.
        self.store.release(token).await?;
        Ok(done)
    }

    /// Sends one owner's leased events in order, up to its first failure.
    async fn deliver_owner(
        &self,
        events: Vec<DueEvent>,
        token: &str,
        stop_at_ms: Option<u64>,
    ) -> Delivered {
        let mut done = Delivered::default();
        let mut events = events.into_iter().peekable();
        while let Some(event) =
            events.next_if(|_| stop_at_ms.is_none_or(|stop| clock::unix_ms(clock::now()) < stop))
        {
            match self.deliver_one(&event, token).await {
                Ok(Attempt::Delivered) => done.sent += 1,
                Ok(Attempt::Retry { .. }) => {
                    done.retrying += 1;
                    break;
                }
                Ok(Attempt::GaveUp { .. }) => {
                    done.gave_up += 1;
                    break;
                }
                Err(e) => {
                    tracing::error!(outbox = event.outbox_id, error = %e, "webhook delivery could not be recorded");
                    done.errors += 1;
                    break;
                }
            }
        }
        done.deferred += events.len();
        done
    }

    /// The owner's delivery log: up to `limit` events, newest first, older
    /// than the outbox row `before`; `more` when there are older ones.
    pub async fn deliveries(
        &self,
        owner: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<(Vec<Delivery>, bool)> {
        let mut page = self
            .store
            .deliveries(owner, limit.saturating_add(1), before)
            .await?;
        let more = page.len() > limit as usize;
        page.truncate(limit as usize);
        Ok((page, more))
    }

    /// Makes one of the owner's events due now: `id` is its `webhook-id`
    /// (`msg_` + ULID) or the bare ULID. The next delivery run sends it
    /// with the same id, as one more attempt; an event a run is sending
    /// now is refused (`DeliveryInProgress`) rather than sent twice at once.
    pub async fn redeliver(&self, owner: &str, id: &str) -> Result<Delivery> {
        let ulid = id.strip_prefix("msg_").unwrap_or(id);
        if !id::is_valid(ulid) {
            return Err(Error::NotFound);
        }
        match self.store.requeue(owner, ulid).await? {
            Requeue::Requeued(d) => Ok(*d),
            Requeue::Sending => Err(Error::DeliveryInProgress),
            Requeue::NotFound => Err(Error::NotFound),
        }
    }

    /// One attempt at one event, recorded.
    async fn deliver_one(&self, event: &DueEvent, token: &str) -> Result<Attempt> {
        let attempts = event.attempts.saturating_add(1);
        let event_id = match &event.event_id {
            Some(e) => e.clone(),
            None => {
                let candidate = new_ulid()?;
                self.store
                    .give_event_id(event.outbox_id, &candidate)
                    .await?
                    .ok_or(Error::NotFound)?
            }
        };
        let attempt = match self.post(event, &event_id).await {
            Ok(()) => Attempt::Delivered,
            Err(why) => {
                tracing::warn!(outbox = event.outbox_id, attempts, error = %why, "webhook delivery failed");
                let why: String = why.chars().take(500).collect();
                match retry_after(attempts) {
                    Some(after_secs) => Attempt::Retry { why, after_secs },
                    None => Attempt::GaveUp { why },
                }
            }
        };
        self.store.record(event.outbox_id, token, &attempt).await?;
        Ok(attempt)
    }

    /// One signed POST; any answer but 2xx, or none, is a failure to retry.
    /// The endpoint is checked again (it may have been stored under older
    /// rules); the receiver follows no redirect, so a public endpoint
    /// cannot bounce the request to an address `check_url` refuses.
    async fn post(&self, event: &DueEvent, event_id: &str) -> std::result::Result<(), String> {
        let url = check_url(&event.endpoint.url, self.allow_private)
            .map_err(|_| "the endpoint is no longer an allowed URL".to_string())?;
        let msg_id = format!("msg_{event_id}");
        let timestamp = clock::unix_ms(clock::now()) / 1000;
        let body = event_body(&event.event_type, &event.image_id, &event.created_at);
        let signature = sign(&event.endpoint.secret, &msg_id, timestamp, body.as_bytes())
            .ok_or_else(|| "the stored secret is not a whsec_ secret".to_string())?;
        let timestamp = timestamp.to_string();
        let headers = [
            ("content-type", "application/json"),
            ("user-agent", "pixport-webhooks"),
            ("webhook-id", msg_id.as_str()),
            ("webhook-timestamp", timestamp.as_str()),
            ("webhook-signature", signature.as_str()),
        ];
        self.receiver.post(&url, &headers, &body).await
    }
}

/// How long a run's lease on its rows lasts: longer than the run can take
/// (every owner slot busy with attempts that each run to the timeout, and
/// one owner's `PER_OWNER` attempts in a row), so a live run never loses a
/// row it is sending; a run that died frees its rows after this.
pub fn lease_secs(timeout: Duration) -> u64 {
    let timeout = timeout.as_secs().max(1);
    let rounds = u64::from(BATCH).div_ceil(CONCURRENCY as u64) + u64::from(PER_OWNER);
    rounds * timeout + 60
}

/// A ULID, unique to its run or event: the time and 80 random bits, so it
/// says nothing about other owners' events.
fn new_ulid() -> Result<String> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| Error::Runtime(format!("no randomness: {e}")))?;
    Ok(id::ulid(clock::unix_ms(clock::now()), random))
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

    mod service {
        use std::time::Duration;

        use futures_executor::block_on;

        use super::super::*;
        use crate::adapters::memory::{Memory, OutboxRow, Receivers};

        fn event(id: i64, owner: &str, attempts: u32) -> OutboxRow {
            OutboxRow {
                id,
                owner: owner.into(),
                image_id: format!("IMG{id}"),
                event_type: "image.ready".into(),
                attempts,
                ..OutboxRow::default()
            }
        }

        fn hooks<'a>(m: &'a Memory, r: &'a Receivers) -> Webhooks<'a, Memory, Receivers> {
            Webhooks {
                store: m,
                receiver: r,
                allow_private: false,
                timeout: Duration::from_secs(1),
            }
        }

        #[test]
        fn endpoints_are_checked_and_keep_their_secret() {
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            let refused = block_on(h.put("a", "http://127.0.0.1/hook")).expect_err("private");
            assert!(matches!(refused, Error::InvalidField { .. }), "{refused}");
            let first = block_on(h.put("a", " https://a.example/hook ")).unwrap();
            assert_eq!(first.url, "https://a.example/hook");
            assert!(first.secret.starts_with("whsec_"));
            let moved = block_on(h.put("a", "https://b.example/hook")).unwrap();
            assert_eq!(moved.secret, first.secret, "receivers need no new secret");
            block_on(h.delete("a")).unwrap();
            assert!(matches!(block_on(h.delete("a")), Err(Error::NotFound)));
        }

        #[test]
        fn a_failing_receiver_costs_its_owner_one_attempt_and_others_nothing() {
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            let a = block_on(h.put("a", "https://a.example/hook")).unwrap();
            block_on(h.put("b", "https://b.example/hook")).unwrap();
            r.failing
                .borrow_mut()
                .insert(a.url.clone(), "the receiver answered 500".into());
            *m.outbox.borrow_mut() = vec![
                event(1, "a", 0),
                event(2, "a", 0),
                event(3, "b", 0),
                event(4, "a", 0),
                event(5, "b", 0),
            ];
            let done = block_on(h.deliver_due()).unwrap();
            assert_eq!(
                done,
                Delivered {
                    sent: 2,
                    retrying: 1,
                    gave_up: 0,
                    deferred: 2,
                    errors: 0,
                }
            );
            let outbox = m.outbox.borrow();
            let by_id = |id: i64| outbox.iter().find(|e| e.id == id).unwrap().clone();
            assert!(by_id(3).delivered && by_id(5).delivered);
            let failed = by_id(1);
            assert_eq!(
                (failed.attempts, failed.due_in_secs),
                (1, RETRY_AFTER_SECS[0] as i64)
            );
            assert_eq!(
                failed.last_error.as_deref(),
                Some("the receiver answered 500")
            );
            for id in [2, 4] {
                let e = by_id(id);
                assert_eq!(
                    (e.attempts, e.token.clone()),
                    (0, None),
                    "{id} released untried"
                );
            }
            // B's in order, each signed with B's secret as Standard Webhooks says.
            let received = r.received.borrow();
            let b: Vec<_> = received
                .iter()
                .filter(|p| p.url.contains("b.example"))
                .collect();
            assert_eq!(b.len(), 2);
            assert!(b[0].body.contains("IMG3") && b[1].body.contains("IMG5"));
            let secret = m.endpoints.borrow()["b"].secret.clone();
            for p in b {
                let ts: u64 = p.headers["webhook-timestamp"].parse().unwrap();
                let want = sign(&secret, &p.headers["webhook-id"], ts, p.body.as_bytes());
                assert_eq!(Some(&p.headers["webhook-signature"]), want.as_ref());
            }
        }

        #[test]
        fn a_run_past_its_stop_time_starts_nothing_and_gives_its_rows_back() {
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            block_on(h.put("a", "https://a.example/hook")).unwrap();
            *m.outbox.borrow_mut() = vec![event(1, "a", 0), event(2, "a", 0)];
            let done = block_on(h.deliver_due_until(Some(0))).unwrap();
            assert_eq!((done.sent, done.deferred), (0, 2));
            assert!(r.received.borrow().is_empty());
            assert!(
                m.outbox
                    .borrow()
                    .iter()
                    .all(|e| e.token.is_none() && e.attempts == 0)
            );
            assert_eq!(block_on(h.deliver_due()).unwrap().sent, 2);
        }

        #[test]
        fn the_log_pages_newest_first_and_redelivery_sends_the_same_id_again() {
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            block_on(h.put("a", "https://a.example/hook")).unwrap();
            block_on(h.put("b", "https://b.example/hook")).unwrap();
            *m.outbox.borrow_mut() = vec![event(1, "a", 0), event(2, "b", 0), event(3, "a", 0)];
            block_on(h.deliver_due()).unwrap();
            let (page, more) = block_on(h.deliveries("a", 1, None)).unwrap();
            assert!(more);
            assert_eq!(page[0].outbox_id, 3);
            assert_eq!(
                page[0].state,
                crate::domain::ports::DeliveryState::Delivered
            );
            let (rest, more) = block_on(h.deliveries("a", 5, Some(3))).unwrap();
            assert!(!more);
            assert_eq!(rest.iter().map(|d| d.outbox_id).collect::<Vec<_>>(), [1]);
            let id = page[0].event_id.clone().unwrap();
            // Another owner's event, a malformed id: no such event.
            assert!(matches!(
                block_on(h.redeliver("b", &id)),
                Err(Error::NotFound)
            ));
            assert!(matches!(
                block_on(h.redeliver("a", "msg_nope")),
                Err(Error::NotFound)
            ));
            // Held by a run: not sent twice at once.
            m.outbox.borrow_mut()[2].token = Some("run".into());
            assert!(matches!(
                block_on(h.redeliver("a", &format!("msg_{id}"))),
                Err(Error::DeliveryInProgress)
            ));
            m.outbox.borrow_mut()[2].token = None;
            let again = block_on(h.redeliver("a", &format!("msg_{id}"))).unwrap();
            assert_eq!(again.attempts, 1);
            block_on(h.deliver_due()).unwrap();
            let sent: Vec<String> = r
                .received
                .borrow()
                .iter()
                .filter(|p| p.body.contains("IMG3"))
                .map(|p| p.headers["webhook-id"].clone())
                .collect();
            assert_eq!(sent, [format!("msg_{id}"), format!("msg_{id}")]);
            assert_eq!(m.outbox.borrow()[2].attempts, 2);
        }

        #[test]
        fn an_event_past_its_last_retry_is_given_up_and_one_id_is_kept() {
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            let a = block_on(h.put("a", "https://a.example/hook")).unwrap();
            r.failing.borrow_mut().insert(a.url, "no answer".into());
            let last = RETRY_AFTER_SECS.len() as u32;
            *m.outbox.borrow_mut() = vec![event(1, "a", last)];
            let done = block_on(h.deliver_due()).unwrap();
            assert_eq!(done.gave_up, 1);
            assert!(m.outbox.borrow()[0].gave_up);
            assert_eq!(block_on(h.next_due_ms()).unwrap(), None);
            // Retried deliveries of one event carry one webhook-id.
            let (m, r) = (Memory::default(), Receivers::default());
            let h = hooks(&m, &r);
            let a = block_on(h.put("a", "https://a.example/hook")).unwrap();
            r.failing.borrow_mut().insert(a.url.clone(), "down".into());
            *m.outbox.borrow_mut() = vec![event(1, "a", 0)];
            block_on(h.deliver_due()).unwrap();
            m.outbox.borrow_mut()[0].due_in_secs = 0;
            r.failing.borrow_mut().clear();
            block_on(h.deliver_due()).unwrap();
            let ids: Vec<String> = r
                .received
                .borrow()
                .iter()
                .map(|p| p.headers["webhook-id"].clone())
                .collect();
            assert_eq!(ids.len(), 2);
            assert_eq!(ids[0], ids[1]);
            assert!(m.outbox.borrow()[0].delivered);
        }
    }
}
