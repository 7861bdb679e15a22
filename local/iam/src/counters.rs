//! Requests per principal and operation, for tests that count what a call
//! cost in subrequests (a Worker may make at most 1000 per invocation).
//! Monotonic: a test reads them before and after and takes the difference,
//! so tests running side by side never reset each other's counts.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
}

impl Counters {
    pub fn count(&self, principal: &str, operation: &str) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts
            .entry(principal.to_owned())
            .or_default()
            .entry(operation.to_owned())
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `{principal: {operation: count}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.snapshot()).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_principal_and_operation() {
        let c = Counters::default();
        c.count("EdgeUser", "PutObject");
        c.count("EdgeUser", "PutObject");
        c.count("admin", "ListObjectsV2");
        assert_eq!(
            c.to_json(),
            r#"{"EdgeUser":{"PutObject":2},"admin":{"ListObjectsV2":1}}"#
        );
    }
}
