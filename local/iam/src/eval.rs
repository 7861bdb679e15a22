//! Policy evaluation as AWS documents it for identity-based policies in one
//! account: an explicit Deny in any matching statement wins; otherwise a
//! matching Allow allows; otherwise the request is denied by default.

use std::collections::BTreeMap;

use crate::policy::{Condition, Effect, Operator, Patterns, Principal};

/// The request context: condition keys (lower-cased) and their values.
/// Keys a request does not carry are absent, which matters: a positive
/// operator on an absent key fails, a negated one holds.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: BTreeMap<String, String>,
}

impl Context {
    /// The keys every request to a stand-in carries: the caller's ARN and
    /// account, and `aws:SecureTransport` = `true`, because each local
    /// endpoint stands for an HTTPS endpoint of AWS (the worker and the
    /// Lambda only ever speak TLS to it there).
    pub fn for_principal(p: &Principal) -> Self {
        let account = p.arn.split(':').nth(4).unwrap_or_default().to_owned();
        Self::default()
            .with("aws:PrincipalArn", &p.arn)
            .with("aws:PrincipalAccount", &account)
            .with("aws:SecureTransport", "true")
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.values
            .insert(key.to_ascii_lowercase(), value.to_owned());
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// One authorization question: may the principal do `action` on `resource`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows it.
    ImplicitDeny,
    /// A Deny statement matches.
    ExplicitDeny,
}

impl Decision {
    pub fn allowed(self) -> bool {
        self == Self::Allow
    }
}

impl Principal {
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if !patterns_match(&s.actions, req.action, true)
                || !patterns_match(&s.resources, req.resource, false)
                || !s.conditions.iter().all(|c| condition_holds(c, req.context))
            {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }

    /// AWS's wording of a denial ("User:" for role sessions too). S3
    /// quotes the resource; other services do not.
    pub fn denial(&self, req: &Request<'_>, decision: Decision, quote_resource: bool) -> String {
        let resource = if quote_resource {
            format!("\"{}\"", req.resource)
        } else {
            req.resource.to_owned()
        };
        let why = match decision {
            Decision::ExplicitDeny => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
            _ => format!(
                "because no identity-based policy allows the {} action",
                req.action
            ),
        };
        format!(
            "User: {} is not authorized to perform: {} on resource: {resource} {why}",
            self.arn, req.action
        )
    }
}

fn patterns_match(p: &Patterns, value: &str, case_insensitive: bool) -> bool {
    let hit = p
        .patterns
        .iter()
        .any(|pat| wildcard_match(pat, value, case_insensitive));
    hit != p.negated
}

fn condition_holds(c: &Condition, ctx: &Context) -> bool {
    let Some(actual) = ctx.get(&c.key) else {
        return match c.operator {
            Operator::Null => c.values.iter().any(|v| v.eq_ignore_ascii_case("true")),
            op => c.if_exists || op.negated(),
        };
    };
    // A list of values is an OR for positive operators; for negated ones
    // the key must match none of them.
    let any = |f: &dyn Fn(&str) -> bool| c.values.iter().any(|v| f(v));
    match c.operator {
        Operator::StringEquals => any(&|v| v == actual),
        Operator::StringNotEquals => !any(&|v| v == actual),
        Operator::StringEqualsIgnoreCase => any(&|v| v.eq_ignore_ascii_case(actual)),
        Operator::StringNotEqualsIgnoreCase => !any(&|v| v.eq_ignore_ascii_case(actual)),
        Operator::StringLike => any(&|v| wildcard_match(v, actual, false)),
        Operator::StringNotLike => !any(&|v| wildcard_match(v, actual, false)),
        Operator::ArnEquals | Operator::ArnLike => any(&|v| arn_like(v, actual)),
        Operator::ArnNotEquals | Operator::ArnNotLike => !any(&|v| arn_like(v, actual)),
        Operator::Bool => any(&|v| v.eq_ignore_ascii_case(actual)),
        Operator::Null => any(&|v| v.eq_ignore_ascii_case("false")),
    }
}

/// ARNs compare segment by segment (partition, service, region, account,
/// resource), each with `*` and `?`.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a, false))
}

/// `*` matches any run of characters (`/` and `:` included), `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let eq = |a: char, b: char| {
        if case_insensitive {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Identities;

    const BUCKET: &str = "arn:aws:s3:::pixport-local";

    fn principal(statements: serde_json::Value) -> std::sync::Arc<Principal> {
        let ids = Identities::from_json(
            &serde_json::json!({"version": 1, "principals": {"P": {
                "arn": "arn:aws:iam::000000000000:user/P", "keys": {"AK": "SK"},
                "statements": statements}}})
            .to_string(),
        )
        .expect("valid");
        ids.by_access_key("AK").expect("key").0.clone()
    }

    fn decide(p: &Principal, action: &str, resource: &str, ctx: &Context) -> Decision {
        p.decide(&Request {
            action,
            resource,
            context: ctx,
        })
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("originals/*", "originals/a/b", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a?c", "abc", false));
        assert!(!wildcard_match("a?c", "ac", false));
        assert!(wildcard_match("*a*b*", "xxaYYb", false));
        assert!(!wildcard_match("*a*b*", "xxbYYa", false));
        assert!(wildcard_match("s3:get*", "s3:GetObject", true));
        assert!(!wildcard_match("s3:get*", "s3:GetObject", false));
        assert!(wildcard_match(
            "arn:aws:s3:::b/v/*",
            "arn:aws:s3:::b/v/x:y/z",
            false
        ));
        assert!(!wildcard_match(
            "arn:aws:s3:::b/v/*",
            "arn:aws:s3:::b/variants/x",
            false
        ));
    }

    #[test]
    fn default_deny_allow_and_explicit_deny_wins() {
        let p = principal(serde_json::json!([
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": format!("{BUCKET}/*")},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": format!("{BUCKET}/originals/*")},
        ]));
        let ctx = Context::for_principal(&p);
        let key = |k: &str| format!("{BUCKET}/{k}");
        assert_eq!(
            decide(&p, "s3:GetObject", &key("originals/x"), &ctx),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, "s3:PutObject", &key("variants/x"), &ctx),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, "s3:PutObject", &key("originals/x"), &ctx),
            Decision::ExplicitDeny
        );
        assert_eq!(
            decide(&p, "s3:DeleteObject", &key("variants/x"), &ctx),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&p, "s3:GetObject", "arn:aws:s3:::other/x", &ctx),
            Decision::ImplicitDeny
        );
        // Actions are case-insensitive, resources are not.
        assert_eq!(decide(&p, "S3:getobject", &key("a"), &ctx), Decision::Allow);
        assert_eq!(
            decide(&p, "s3:GetObject", "arn:aws:s3:::PIXPORT-LOCAL/a", &ctx),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = principal(serde_json::json!([
            {"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": format!("{BUCKET}/originals/*")},
        ]));
        let ctx = Context::for_principal(&p);
        assert!(decide(&p, "s3:PutObject", &format!("{BUCKET}/variants/a"), &ctx).allowed());
        assert!(!decide(&p, "s3:DeleteObject", &format!("{BUCKET}/variants/a"), &ctx).allowed());
        assert!(!decide(&p, "s3:PutObject", &format!("{BUCKET}/originals/a"), &ctx).allowed());
    }

    #[test]
    fn string_like_on_s3_prefix() {
        let p = principal(serde_json::json!([
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
             "Condition": {"StringLike": {"s3:prefix": "variants/*"}}},
        ]));
        let base = Context::for_principal(&p);
        let list = |ctx: &Context| decide(&p, "s3:ListBucket", BUCKET, ctx);
        assert!(list(&base.clone().with("s3:prefix", "variants/abc/")).allowed());
        assert!(!list(&base.clone().with("s3:prefix", "originals/")).allowed());
        assert!(!list(&base.clone().with("s3:prefix", "")).allowed());
        // No prefix in the request: the key is absent and StringLike fails.
        assert!(!list(&base).allowed());
        // Condition keys are case-insensitive.
        assert!(list(&base.clone().with("S3:Prefix", "variants/x")).allowed());
    }

    #[test]
    fn bool_null_negated_and_if_exists() {
        let p = principal(serde_json::json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": false}}},
            {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*",
             "Condition": {"StringNotLike": {"s3:prefix": ["variants/*", "originals/*"]}}},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*",
             "Condition": {"StringEqualsIfExists": {"s3:ExistingObjectTag/secret": "yes"}}},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"Null": {"s3:x-amz-server-side-encryption": "false"}}},
        ]));
        let secure = Context::for_principal(&p);
        let plain = secure.clone().with("aws:SecureTransport", "false");
        assert_eq!(
            decide(&p, "s3:DeleteObject", "arn:aws:s3:::b/k", &secure),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, "s3:DeleteObject", "arn:aws:s3:::b/k", &plain),
            Decision::ExplicitDeny
        );
        // StringNotLike: an absent key or one matching none of the values denies.
        assert_eq!(
            decide(&p, "s3:ListBucket", "arn:aws:s3:::b", &secure),
            Decision::ExplicitDeny
        );
        let other = secure.clone().with("s3:prefix", "tmp/");
        assert_eq!(
            decide(&p, "s3:ListBucket", "arn:aws:s3:::b", &other),
            Decision::ExplicitDeny
        );
        let ok = secure.clone().with("s3:prefix", "originals/a");
        assert_eq!(
            decide(&p, "s3:ListBucket", "arn:aws:s3:::b", &ok),
            Decision::Allow
        );
        // IfExists: absent key holds, so the Deny applies.
        assert_eq!(
            decide(&p, "s3:GetObject", "arn:aws:s3:::b/k", &secure),
            Decision::ExplicitDeny
        );
        // Null "false": key present -> the condition holds.
        assert_eq!(
            decide(&p, "s3:PutObject", "arn:aws:s3:::b/k", &secure),
            Decision::Allow
        );
        let sse = secure
            .clone()
            .with("s3:x-amz-server-side-encryption", "AES256");
        assert_eq!(
            decide(&p, "s3:PutObject", "arn:aws:s3:::b/k", &sse),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn arn_operators_compare_segments() {
        assert!(arn_like(
            "arn:aws:rds:*:*:cluster:pixport-*",
            "arn:aws:rds:us-east-1:0:cluster:pixport-local"
        ));
        assert!(!arn_like(
            "arn:aws:rds:*:*:cluster:pixport-*",
            "arn:aws:rds:us-east-1:0:db:pixport-local"
        ));
        assert!(!arn_like(
            "arn:aws:rds:*",
            "arn:aws:rds:us-east-1:0:cluster:x"
        ));
        let p = principal(serde_json::json!([
            {"Effect": "Allow", "Action": "rds-data:*", "Resource": "*",
             "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/P"}}},
        ]));
        let ctx = Context::for_principal(&p);
        assert!(
            decide(
                &p,
                "rds-data:ExecuteStatement",
                "arn:aws:rds:us-east-1:0:cluster:x",
                &ctx
            )
            .allowed()
        );
    }

    #[test]
    fn denial_messages_name_the_action_and_resource() {
        let p = principal(serde_json::json!([
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"},
        ]));
        let ctx = Context::for_principal(&p);
        let req = Request {
            action: "s3:PutObject",
            resource: "arn:aws:s3:::b/k",
            context: &ctx,
        };
        assert_eq!(
            p.denial(&req, Decision::ImplicitDeny, true),
            "User: arn:aws:iam::000000000000:user/P is not authorized to perform: s3:PutObject on \
             resource: \"arn:aws:s3:::b/k\" because no identity-based policy allows the s3:PutObject action"
        );
        assert!(p.denial(&req, Decision::ExplicitDeny, false).ends_with(
            "on resource: arn:aws:s3:::b/k with an explicit deny in an identity-based policy"
        ));
    }
}
