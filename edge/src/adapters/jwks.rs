//! `KeySet` over the issuer's JWKS URL: fetched with the runtime's `fetch`,
//! kept for the isolate's life, fetched again after `FRESH_MS` or when a
//! token names a key it does not hold (the issuer rotated), but never
//! more often than `REFETCH_MIN_MS`, so tokens with made-up `kid`s cannot
//! make the worker fetch on every request. Signatures are checked by
//! WebCrypto (`runtime::webcrypto`).

use std::cell::RefCell;

use crate::domain::jwt::{Alg, Jwk, JwtError, KeySet, KeySetDoc};
use crate::runtime::clock;
use crate::runtime::webcrypto::{self, Algorithm};

/// How long a fetched key set is used without asking again.
const FRESH_MS: u64 = 10 * 60 * 1000;
/// The least time between two fetches.
const REFETCH_MIN_MS: u64 = 30 * 1000;
/// How long a fetch may take.
const FETCH_TIMEOUT_MS: u32 = 5000;
/// The most a key set may weigh.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Cache {
    keys: Vec<Jwk>,
    fetched_ms: Option<u64>,
    tried_ms: Option<u64>,
}

/// The issuer's keys, cached per isolate.
pub struct Jwks {
    pub url: String,
    cache: RefCell<Cache>,
}

impl Jwks {
    pub fn new(url: String) -> Self {
        Jwks {
            url,
            cache: RefCell::new(Cache::default()),
        }
    }

    fn lookup(&self, kid: Option<&str>, alg: Alg) -> Option<Jwk> {
        let cache = self.cache.borrow();
        match kid {
            Some(kid) => cache
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            None => {
                let mut fitting = cache.keys.iter().filter(|k| alg.fits(k));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    async fn refresh(&self, now: u64) -> Result<(), JwtError> {
        self.cache.borrow_mut().tried_ms = Some(now);
        let keys = fetch(&self.url).await.map_err(|e| {
            tracing::warn!(url = %self.url, error = %e, "the issuer's keys could not be fetched");
            JwtError::KeysUnavailable(e)
        })?;
        tracing::info!(url = %self.url, keys = keys.len(), "issuer keys fetched");
        let mut cache = self.cache.borrow_mut();
        cache.keys = keys;
        cache.fetched_ms = Some(now);
        Ok(())
    }
}

impl KeySet for Jwks {
    async fn find(&self, kid: Option<&str>, alg: Alg) -> Result<Option<Jwk>, JwtError> {
        let now = clock::unix_ms(clock::now());
        let (fresh, may_fetch) = {
            let c = self.cache.borrow();
            let fresh = c
                .fetched_ms
                .is_some_and(|t| now.saturating_sub(t) < FRESH_MS);
            let may_fetch = c
                .tried_ms
                .is_none_or(|t| now.saturating_sub(t) >= REFETCH_MIN_MS);
            (fresh, may_fetch)
        };
        if fresh && let Some(k) = self.lookup(kid, alg) {
            return Ok(Some(k));
        }
        if may_fetch {
            match self.refresh(now).await {
                Ok(()) => {}
                // Stale keys still check tokens they signed while the
                // issuer cannot be reached.
                Err(e) if self.cache.borrow().fetched_ms.is_none() => return Err(e),
                Err(_) => {}
            }
        }
        Ok(self.lookup(kid, alg))
    }

    async fn verify(
        &self,
        key: &Jwk,
        alg: Alg,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, JwtError> {
        let algorithm = match alg {
            Alg::Rs256 => Algorithm::RsaSha256,
            Alg::Es256 => Algorithm::EcdsaP256Sha256,
            Alg::EdDsa => Algorithm::Ed25519,
        };
        match webcrypto::verify(&key.public_json(), algorithm, data, signature).await {
            Ok(ok) => Ok(ok),
            Err(e) => {
                tracing::warn!(kid = ?key.kid, error = %e, "a key of the issuer cannot be used");
                Ok(false)
            }
        }
    }
}

/// GETs and reads a key set.
async fn fetch(url: &str) -> Result<Vec<Jwk>, String> {
    use worker::{AbortSignal, Fetch, Method, Request, RequestInit};
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(
        FETCH_TIMEOUT_MS,
    ));
    let mut resp = Fetch::Request(req)
        .send_with_signal(&signal)
        .await
        .map_err(|e| e.to_string())?;
    if resp.status_code() != 200 {
        return Err(format!("the key set answered {}", resp.status_code()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("the key set is over {MAX_JWKS_BYTES} bytes"));
    }
    let doc: KeySetDoc = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
    Ok(doc.usable())
}
