//! IAM for the local Data API: the signer of each request must be allowed
//! the operation's `rds-data:` action on the request's `resourceArn`, and
//! `secretsmanager:GetSecretValue` on its `secretArn` (the Data API fetches
//! the secret as the caller), under deploy/template.yaml's policies.

use std::sync::Arc;

use pixport_local_iam::{Context, Counters, Identities, Principal, Request};
use serde::Deserialize;

use crate::error::ApiError;

pub struct Iam {
    pub identities: Identities,
    pub counters: Counters,
}

/// The operation behind each path: its API name (counted) and IAM action.
pub fn operation(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/Execute" => ("ExecuteStatement", "rds-data:ExecuteStatement"),
        "/BatchExecute" => ("BatchExecuteStatement", "rds-data:BatchExecuteStatement"),
        "/BeginTransaction" => ("BeginTransaction", "rds-data:BeginTransaction"),
        "/CommitTransaction" => ("CommitTransaction", "rds-data:CommitTransaction"),
        "/RollbackTransaction" => ("RollbackTransaction", "rds-data:RollbackTransaction"),
        _ => return None,
    })
}

/// The two ARNs every operation names; absent ones are left to the
/// operation's own validation ("resourceArn is required").
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Arns {
    #[serde(default)]
    resource_arn: Option<String>,
    #[serde(default)]
    secret_arn: Option<String>,
}

impl Iam {
    /// `Ok` when `principal` may run `action` with the body's cluster and
    /// secret; else `AccessDeniedException` worded as AWS words it.
    pub fn authorize(
        &self,
        principal: &Arc<Principal>,
        action: &str,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let arns: Arns = serde_json::from_slice(body).unwrap_or_default();
        let context = Context::for_principal(principal);
        let checks = [
            arns.resource_arn.as_deref().map(|r| (action, r)),
            arns.secret_arn
                .as_deref()
                .map(|s| ("secretsmanager:GetSecretValue", s)),
        ];
        for (action, resource) in checks.into_iter().flatten() {
            let req = Request {
                action,
                resource,
                context: &context,
            };
            let decision = principal.decide(&req);
            if !decision.allowed() {
                tracing::info!(principal = %principal.name, action, resource, "access denied");
                return Err(ApiError::AccessDenied(
                    principal.denial(&req, decision, false),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "arn:aws:rds:us-east-1:000000000000:cluster:pixport-local";
    const SECRET: &str =
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:pixport-local-db-AbCdEf";

    fn iam() -> Iam {
        let identities = Identities::from_json(
            &serde_json::json!({"version": 1, "principals": {
                "EdgeUser": {"arn": "arn:aws:iam::000000000000:user/EdgeUser", "keys": {"AK": "SK"},
                    "statements": [
                        {"Effect": "Allow", "Action": "rds-data:ExecuteStatement", "Resource": CLUSTER},
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET}]},
                "NoSecret": {"arn": "arn:aws:iam::000000000000:user/NoSecret", "keys": {"AK2": "SK"},
                    "statements": [{"Effect": "Allow", "Action": "rds-data:*", "Resource": CLUSTER}]}}})
            .to_string(),
        )
        .unwrap();
        Iam {
            identities,
            counters: Counters::default(),
        }
    }

    fn body(resource: &str, secret: &str) -> Vec<u8> {
        serde_json::json!({"resourceArn": resource, "secretArn": secret, "sql": "SELECT 1"})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn needs_the_action_on_the_cluster_and_the_secret() {
        let iam = iam();
        let (edge, _) = iam.identities.by_access_key("AK").unwrap();
        let edge = edge.clone();
        iam.authorize(&edge, "rds-data:ExecuteStatement", &body(CLUSTER, SECRET))
            .unwrap();
        let e = iam
            .authorize(&edge, "rds-data:BeginTransaction", &body(CLUSTER, SECRET))
            .unwrap_err();
        let (status, name, message) = e.parts();
        assert_eq!((status.as_u16(), name), (403, "AccessDeniedException"));
        assert_eq!(
            message,
            format!(
                "User: arn:aws:iam::000000000000:user/EdgeUser is not authorized to perform: \
                 rds-data:BeginTransaction on resource: {CLUSTER} because no identity-based \
                 policy allows the rds-data:BeginTransaction action"
            )
        );
        let other = "arn:aws:rds:us-east-1:000000000000:cluster:other";
        assert!(
            iam.authorize(&edge, "rds-data:ExecuteStatement", &body(other, SECRET))
                .is_err()
        );
        let (no_secret, _) = iam.identities.by_access_key("AK2").unwrap();
        let e = iam
            .authorize(
                no_secret,
                "rds-data:ExecuteStatement",
                &body(CLUSTER, SECRET),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("secretsmanager:GetSecretValue"),
            "{e}"
        );
    }

    #[test]
    fn absent_arns_are_left_to_validation() {
        let iam = iam();
        let (edge, _) = iam.identities.by_access_key("AK").unwrap();
        assert!(
            iam.authorize(edge, "rds-data:ExecuteStatement", b"{}")
                .is_ok()
        );
        assert!(
            iam.authorize(edge, "rds-data:ExecuteStatement", b"not json")
                .is_ok()
        );
    }

    #[test]
    fn paths_name_operations() {
        assert_eq!(
            operation("/BatchExecute"),
            Some(("BatchExecuteStatement", "rds-data:BatchExecuteStatement"))
        );
        assert_eq!(operation("/Nope"), None);
    }
}
