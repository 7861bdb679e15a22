//! The resolved policy file (`iam.json`, written by local/iam.py) and its
//! checked, ready-to-evaluate form.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::Error;

/// `"x"` or `["x", "y"]`, as IAM accepts both.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

impl OneOrMany {
    fn values(self) -> Vec<serde_json::Value> {
        match self {
            Self::One(v) => vec![v],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
struct FileFormat {
    version: u32,
    principals: BTreeMap<String, PrincipalFile>,
}

#[derive(Debug, Deserialize)]
struct PrincipalFile {
    arn: String,
    /// Access key id -> secret access key.
    #[serde(default)]
    keys: BTreeMap<String, String>,
    statements: Vec<StatementFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementFile {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: String,
    #[serde(rename = "Action")]
    action: Option<OneOrMany>,
    #[serde(rename = "NotAction")]
    not_action: Option<OneOrMany>,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany>,
    #[serde(rename = "NotResource")]
    not_resource: Option<OneOrMany>,
    #[serde(rename = "Condition")]
    condition: Option<BTreeMap<String, BTreeMap<String, OneOrMany>>>,
    /// Where the statement came from (logical id, policy name), for messages.
    #[serde(rename = "Origin")]
    origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or (for `NotAction`/`NotResource`) everything but them.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<String>,
}

/// The condition operators the evaluator implements; `…IfExists` variants
/// are [`Condition::if_exists`]. Anything else in a policy is a load error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Bool,
    Null,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "StringEquals" => Self::StringEquals,
            "StringNotEquals" => Self::StringNotEquals,
            "StringEqualsIgnoreCase" => Self::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Self::StringNotEqualsIgnoreCase,
            "StringLike" => Self::StringLike,
            "StringNotLike" => Self::StringNotLike,
            "ArnEquals" => Self::ArnEquals,
            "ArnNotEquals" => Self::ArnNotEquals,
            "ArnLike" => Self::ArnLike,
            "ArnNotLike" => Self::ArnNotLike,
            "Bool" => Self::Bool,
            "Null" => Self::Null,
            _ => return None,
        })
    }

    /// Negated operators hold when the key is absent (AWS: "...NotEquals"
    /// against a missing key matches).
    pub(crate) fn negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals
                | Self::StringNotEqualsIgnoreCase
                | Self::StringNotLike
                | Self::ArnNotEquals
                | Self::ArnNotLike
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    pub(crate) if_exists: bool,
    /// Lower-cased: condition keys are case-insensitive.
    pub(crate) key: String,
    pub(crate) values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub(crate) actions: Patterns,
    pub(crate) resources: Patterns,
    pub(crate) conditions: Vec<Condition>,
}

/// One identity: an IAM user or a role session, with its policies.
#[derive(Debug)]
pub struct Principal {
    /// The template's logical name (`EdgeUser`, `ResizeFunctionRole`) or a
    /// local-only name (`admin`): what counters and logs show.
    pub name: String,
    pub arn: String,
    pub statements: Vec<Statement>,
}

/// Every principal of the file, and which access key is whose.
#[derive(Debug, Default)]
pub struct Identities {
    principals: Vec<Arc<Principal>>,
    by_key: HashMap<String, (Arc<Principal>, String)>,
}

impl Identities {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read(shown.clone(), e))?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Parse(_, source) => Error::Parse(shown, source),
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, Error> {
        let file: FileFormat =
            serde_json::from_str(text).map_err(|e| Error::Parse("iam.json".into(), e))?;
        if file.version != 1 {
            return Err(Error::Invalid {
                principal: "-".into(),
                statement: "-".into(),
                message: format!("file version {} (this build reads 1)", file.version),
            });
        }
        let mut out = Self::default();
        for (name, p) in file.principals {
            let statements = p
                .statements
                .into_iter()
                .enumerate()
                .map(|(i, s)| compile(&name, i, s))
                .collect::<Result<Vec<_>, _>>()?;
            let principal = Arc::new(Principal {
                name,
                arn: p.arn,
                statements,
            });
            for (key, secret) in p.keys {
                if out
                    .by_key
                    .insert(key.clone(), (principal.clone(), secret))
                    .is_some()
                {
                    return Err(Error::DuplicateKey(key));
                }
            }
            out.principals.push(principal);
        }
        Ok(out)
    }

    /// The principal an access key belongs to, and the key's secret.
    pub fn by_access_key(&self, key: &str) -> Option<(&Arc<Principal>, &str)> {
        self.by_key.get(key).map(|(p, s)| (p, s.as_str()))
    }

    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.principals.iter()
    }
}

fn compile(principal: &str, index: usize, s: StatementFile) -> Result<Statement, Error> {
    let label = match (&s.sid, &s.origin) {
        (Some(sid), Some(o)) => format!("{sid} ({o})"),
        (Some(sid), None) => sid.clone(),
        (None, Some(o)) => format!("#{index} ({o})"),
        (None, None) => format!("#{index}"),
    };
    let invalid = |message: String| Error::Invalid {
        principal: principal.to_owned(),
        statement: label.clone(),
        message,
    };
    let effect = match s.effect.as_str() {
        "Allow" => Effect::Allow,
        "Deny" => Effect::Deny,
        other => {
            return Err(invalid(format!(
                "Effect {other:?} is neither Allow nor Deny"
            )));
        }
    };
    let strings = |v: OneOrMany, what: &str| -> Result<Vec<String>, Error> {
        v.values()
            .into_iter()
            .map(|x| match x {
                serde_json::Value::String(s) => Ok(s),
                other => Err(invalid(format!(
                    "{what} entries must be strings, got {other}"
                ))),
            })
            .collect()
    };
    let actions = match (s.action, s.not_action) {
        (Some(a), None) => Patterns {
            negated: false,
            patterns: strings(a, "Action")?,
        },
        (None, Some(a)) => Patterns {
            negated: true,
            patterns: strings(a, "NotAction")?,
        },
        _ => return Err(invalid("needs exactly one of Action and NotAction".into())),
    };
    for a in &actions.patterns {
        if a != "*"
            && !a
                .split_once(':')
                .is_some_and(|(svc, op)| !svc.is_empty() && !op.is_empty())
        {
            return Err(invalid(format!("action {a:?} is not service:Action")));
        }
    }
    let resources = match (s.resource, s.not_resource) {
        (Some(r), None) => Patterns {
            negated: false,
            patterns: strings(r, "Resource")?,
        },
        (None, Some(r)) => Patterns {
            negated: true,
            patterns: strings(r, "NotResource")?,
        },
        _ => {
            return Err(invalid(
                "needs exactly one of Resource and NotResource".into(),
            ));
        }
    };
    for r in &resources.patterns {
        if r.contains("${") {
            return Err(invalid(format!(
                "resource {r:?} uses a policy variable, which this evaluator does not expand"
            )));
        }
        if r != "*" && !r.starts_with("arn:") {
            return Err(invalid(format!("resource {r:?} is not an ARN or *")));
        }
    }
    let mut conditions = Vec::new();
    for (op_name, keys) in s.condition.unwrap_or_default() {
        let (base, if_exists) = match op_name.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (op_name.as_str(), false),
        };
        let operator = Operator::parse(base).ok_or_else(|| {
            invalid(format!(
                "condition operator {op_name:?} is not supported by the local IAM evaluator \
                 (supported: String*, Arn*, Bool, Null, each with IfExists); \
                 add it to local/iam before relying on it"
            ))
        })?;
        for (key, values) in keys {
            if key.contains(':') && key.split_once(':').is_some_and(|(k, _)| k.is_empty()) {
                return Err(invalid(format!(
                    "condition key {key:?} has no service prefix"
                )));
            }
            let values = values
                .values()
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s),
                    serde_json::Value::Bool(b) => Ok(b.to_string()),
                    serde_json::Value::Number(n) => Ok(n.to_string()),
                    other => Err(invalid(format!(
                        "condition value {other} for {key} is not a scalar"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if values.is_empty() {
                return Err(invalid(format!("condition {op_name} {key} has no values")));
            }
            conditions.push(Condition {
                operator,
                if_exists,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(Statement {
        sid: s.sid,
        effect,
        actions,
        resources,
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(statement: serde_json::Value) -> Result<Identities, Error> {
        Identities::from_json(
            &serde_json::json!({
                "version": 1,
                "principals": {"P": {"arn": "arn:aws:iam::000000000000:user/P",
                                     "keys": {"AK": "SK"}, "statements": [statement]}}
            })
            .to_string(),
        )
    }

    #[test]
    fn loads_keys_and_statements() {
        let ids =
            one(serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))
                .expect("valid");
        let (p, secret) = ids.by_access_key("AK").expect("key");
        assert_eq!((p.name.as_str(), secret), ("P", "SK"));
        assert!(ids.by_access_key("other").is_none());
    }

    #[test]
    fn unknown_condition_operator_is_a_clear_load_error() {
        let e = one(
            serde_json::json!({"Sid": "X", "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("NumericLessThan") && e.contains("statement X"),
            "{e}"
        );
    }

    #[test]
    fn malformed_statements_refused() {
        for bad in [
            serde_json::json!({"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"}),
            serde_json::json!({"Effect": "Allow", "Resource": "*"}),
            serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "x:y", "Resource": "*"}),
            serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject"}),
            serde_json::json!({"Effect": "Allow", "Action": "GetObject", "Resource": "*"}),
            serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "bucket/key"}),
            serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject",
                               "Resource": "arn:aws:s3:::b/${aws:username}/*"}),
            serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"}),
        ] {
            assert!(one(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_belongs_to_one_principal() {
        let text = serde_json::json!({"version": 1, "principals": {
            "A": {"arn": "arn:aws:iam::0:user/A", "keys": {"AK": "1"}, "statements": []},
            "B": {"arn": "arn:aws:iam::0:user/B", "keys": {"AK": "2"}, "statements": []}}})
        .to_string();
        assert!(matches!(
            Identities::from_json(&text),
            Err(Error::DuplicateKey(_))
        ));
    }
}
