//! The lifecycle of an `images` row (see `migrations/0001_images.sql`).
//!
//! The edge moves a row through `uploading` -> `pending` and into
//! `deleting`; the Lambda moves it to `ready` or `failed`. Both filter SQL
//! by these names, so they are spelled here only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Claimed by an upload whose original may not be stored yet; hidden.
    Uploading,
    /// The original is stored; the resize has not finished.
    Pending,
    Ready,
    Failed,
    /// A DELETE is removing its objects; hidden.
    Deleting,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Uploading,
        Status::Pending,
        Status::Ready,
        Status::Failed,
        Status::Deleting,
    ];
    /// What clients are shown: a row whose original is stored and which is
    /// not being deleted.
    pub const VISIBLE: [Status; 3] = [Status::Pending, Status::Ready, Status::Failed];
    /// What anyone may see, with or without a token: a stored original, not
    /// failed and not being deleted. The rest only its owner sees.
    pub const PUBLIC: [Status; 2] = [Status::Pending, Status::Ready];
    /// What the resize Lambda may (re)process: not finished, not being
    /// deleted. `failed` is included so a later delivery can still complete it.
    pub const PROCESSABLE: [Status; 3] = [Status::Uploading, Status::Pending, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploading => "uploading",
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// `('a','b')`, for an SQL `IN` over constant statuses (the names are
    /// fixed identifiers, never user input).
    pub fn sql_list(statuses: &[Status]) -> String {
        let names: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(","))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the five statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus;

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown image status")
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::parse(s).ok_or(UnknownStatus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_serde() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Status::parse("Ready"), None);
        assert_eq!("".parse::<Status>(), Err(UnknownStatus));
    }

    #[test]
    fn sql_list_quotes_each_name() {
        assert_eq!(
            Status::sql_list(&Status::PROCESSABLE),
            "('uploading','pending','failed')"
        );
        assert_eq!(
            Status::sql_list(&Status::VISIBLE),
            "('pending','ready','failed')"
        );
    }
}
