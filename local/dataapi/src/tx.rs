//! Open transactions, each pinned to its own connection.
//!
//! AWS ends a transaction that sees no call for three minutes; the same
//! happens here (rolled back by a reaper), so code that dawdles between calls
//! breaks locally too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::ApiError;

pub struct TxEntry {
    /// `None` once committed, rolled back or expired.
    pub conn: tokio::sync::Mutex<Option<Conn>>,
    /// The secret Begin named: the transaction is that database user's, and
    /// a call naming another secret does not find it.
    pub secret_arn: String,
    last_used: Mutex<Instant>,
}

impl TxEntry {
    pub fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

pub struct Transactions {
    open: Mutex<HashMap<String, Arc<TxEntry>>>,
    idle_timeout: Duration,
}

/// AWS's wording, which callers may match on.
pub fn not_found(id: &str) -> ApiError {
    ApiError::bad(format!("Transaction {id} is not found"))
}

impl Transactions {
    pub fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            idle_timeout,
        })
    }

    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Arc<TxEntry>>>, ApiError> {
        self.open
            .lock()
            .map_err(|_| ApiError::Internal("transaction table poisoned".into()))
    }

    /// How many transactions are open (an open one keeps Aurora from pausing).
    pub fn open(&self) -> usize {
        self.open.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn insert(&self, conn: Conn, secret_arn: &str) -> Result<String, ApiError> {
        let id = new_id()?;
        let entry = Arc::new(TxEntry {
            conn: tokio::sync::Mutex::new(Some(conn)),
            secret_arn: secret_arn.to_owned(),
            last_used: Mutex::new(Instant::now()),
        });
        self.map()?.insert(id.clone(), entry);
        Ok(id)
    }

    /// The live transaction `id`, marked as used now.
    pub fn get(&self, id: &str) -> Result<Arc<TxEntry>, ApiError> {
        let entry = self.map()?.get(id).cloned().ok_or_else(|| not_found(id))?;
        if entry.idle_for() > self.idle_timeout {
            self.expire(id);
            return Err(not_found(id));
        }
        entry.touch();
        Ok(entry)
    }

    /// Ends `id` for commit or rollback; later calls see "not found".
    pub fn remove(&self, id: &str) -> Result<Arc<TxEntry>, ApiError> {
        let entry = self.map()?.remove(id).ok_or_else(|| not_found(id))?;
        if entry.idle_for() > self.idle_timeout {
            tokio::spawn(rollback(entry));
            return Err(not_found(id));
        }
        Ok(entry)
    }

    fn expire(&self, id: &str) {
        let entry = self.open.lock().ok().and_then(|mut m| m.remove(id));
        if let Some(entry) = entry {
            tracing::info!(transaction = id, "transaction expired; rolling back");
            tokio::spawn(rollback(entry));
        }
    }

    /// Rolls back idle transactions until the process ends.
    pub async fn reap_forever(self: Arc<Self>) {
        let tick =
            (self.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::time::sleep(tick).await;
            let stale: Vec<String> = match self.open.lock() {
                Ok(m) => m
                    .iter()
                    .filter(|(_, e)| e.idle_for() > self.idle_timeout)
                    .map(|(k, _)| k.clone())
                    .collect(),
                Err(_) => continue,
            };
            for id in stale {
                self.expire(&id);
            }
        }
    }
}

async fn rollback(entry: Arc<TxEntry>) {
    let conn = entry.conn.lock().await.take();
    if let Some(mut c) = conn
        && let Err(e) = c.query_drop("ROLLBACK").await
    {
        tracing::warn!(error = %e, "rollback of expired transaction failed");
    }
}

/// Opaque and unguessable like AWS's ids (which are base64 too).
fn new_id() -> Result<String, ApiError> {
    let mut raw = [0u8; 48];
    getrandom::fill(&mut raw).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(B64.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_base64() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(B64.decode(&a).is_ok());
    }

    #[test]
    fn unknown_id_message() {
        let t = Transactions::new(Duration::from_secs(1));
        let e = t.get("nope").err().unwrap();
        assert_eq!(e.to_string(), "Transaction nope is not found");
    }
}
