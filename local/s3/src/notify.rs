//! Bucket notification configuration in S3's own JSON shape
//! (`GetBucketNotificationConfiguration` output), so the file doubles as the
//! reference for what the production bucket must be configured with.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

/// `local/s3/notifications.json`: per-bucket configurations plus where each
/// function is reached locally (AWS resolves the ARN itself; here it is a URL).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NotificationFile {
    #[serde(default)]
    pub buckets: BTreeMap<String, NotificationConfiguration>,
    /// Function ARN or name -> invoke URL. Missing entries resolve against the
    /// Lambda endpoint: `{endpoint}/2015-03-31/functions/{name}/invocations`.
    #[serde(default)]
    pub destinations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationConfiguration {
    #[serde(default)]
    pub lambda_function_configurations: Vec<LambdaFunctionConfiguration>,
    /// Accepted so an exported AWS config loads, but never delivered locally.
    #[serde(default)]
    pub topic_configurations: Vec<serde_json::Value>,
    #[serde(default)]
    pub queue_configurations: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LambdaFunctionConfiguration {
    #[serde(default)]
    pub id: Option<String>,
    pub lambda_function_arn: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub key: KeyFilter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyFilter {
    #[serde(default)]
    pub filter_rules: Vec<FilterRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterRule {
    pub name: String,
    pub value: String,
}

/// A validated rule: what S3 itself would accept from
/// PutBucketNotificationConfiguration, checked once at start.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub function_arn: String,
    pub invoke_url: String,
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

const KNOWN_EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
];

impl Rule {
    /// True when S3 would send `event_name` (e.g. `ObjectCreated:Put`) for `key`
    /// under this rule. Filters compare the raw key, case-sensitively, as S3 does.
    pub fn matches(&self, event_name: &str, key: &str) -> bool {
        let event_ok = self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            match e.strip_suffix('*') {
                Some(family) => event_name.starts_with(family),
                None => e == event_name,
            }
        });
        event_ok && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }
}

/// Function name from a Lambda ARN (`arn:aws:lambda:r:acct:function:NAME[:qualifier]`)
/// or a bare name.
pub fn function_name(arn_or_name: &str) -> &str {
    let parts: Vec<&str> = arn_or_name.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1],
        _ => arn_or_name,
    }
}

/// Per-bucket rules, ready for matching.
#[derive(Debug, Default)]
pub struct Rules {
    by_bucket: BTreeMap<String, Vec<Rule>>,
}

impl Rules {
    pub fn load(path: &Path, lambda_endpoint: &str) -> Result<Self, Error> {
        if !path.exists() {
            tracing::warn!(path = %path.display(), "no notification config; no events will be sent");
            return Ok(Self::default());
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
        let file: NotificationFile = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::from_file(file, lambda_endpoint)
    }

    pub fn from_file(file: NotificationFile, lambda_endpoint: &str) -> Result<Self, Error> {
        let mut by_bucket = BTreeMap::new();
        for (bucket, cfg) in file.buckets {
            if !cfg.topic_configurations.is_empty() || !cfg.queue_configurations.is_empty() {
                tracing::warn!(%bucket, "topic/queue configurations are ignored locally");
            }
            let mut rules = Vec::new();
            for (i, c) in cfg.lambda_function_configurations.into_iter().enumerate() {
                rules.push(validate(
                    &bucket,
                    i,
                    c,
                    &file.destinations,
                    lambda_endpoint,
                )?);
            }
            by_bucket.insert(bucket, rules);
        }
        Ok(Self { by_bucket })
    }

    pub fn matching<'a>(
        &'a self,
        bucket: &str,
        event_name: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Rule> {
        self.by_bucket
            .get(bucket)
            .into_iter()
            .flatten()
            .filter(move |r| r.matches(event_name, key))
    }

    pub fn len(&self) -> usize {
        self.by_bucket.values().map(Vec::len).sum()
    }
}

fn validate(
    bucket: &str,
    index: usize,
    c: LambdaFunctionConfiguration,
    destinations: &BTreeMap<String, String>,
    lambda_endpoint: &str,
) -> Result<Rule, Error> {
    let invalid =
        |msg: String| Error::Config(format!("bucket {bucket}, configuration {index}: {msg}"));
    if c.events.is_empty() {
        return Err(invalid("Events must not be empty".into()));
    }
    for e in &c.events {
        if !KNOWN_EVENTS.contains(&e.as_str()) {
            return Err(invalid(format!("unsupported event {e:?}")));
        }
    }
    let (mut prefix, mut suffix) = (None, None);
    for rule in c.filter.map(|f| f.key.filter_rules).unwrap_or_default() {
        let slot = match rule.name.to_ascii_lowercase().as_str() {
            "prefix" => &mut prefix,
            "suffix" => &mut suffix,
            other => {
                return Err(invalid(format!(
                    "filter rule name must be prefix or suffix, not {other:?}"
                )));
            }
        };
        if slot.replace(rule.value).is_some() {
            return Err(invalid(format!("filter rule {} given twice", rule.name)));
        }
    }
    let name = function_name(&c.lambda_function_arn);
    let invoke_url = destinations
        .get(&c.lambda_function_arn)
        .or_else(|| destinations.get(name))
        .cloned()
        .unwrap_or_else(|| {
            format!(
                "{}/2015-03-31/functions/{name}/invocations",
                lambda_endpoint.trim_end_matches('/')
            )
        });
    Ok(Rule {
        // S3 generates an id when none is given; a stable one is friendlier locally.
        id: c.id.unwrap_or_else(|| format!("config-{index}")),
        function_arn: c.lambda_function_arn,
        invoke_url,
        events: c.events,
        prefix: prefix.unwrap_or_default(),
        suffix: suffix.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Rules, Error> {
        Rules::from_file(
            serde_json::from_str(json).expect("json"),
            "http://127.0.0.1:9002",
        )
    }

    const CFG: &str = r#"{"Buckets": {"b": {"LambdaFunctionConfigurations": [{
        "Id": "resize", "LambdaFunctionArn": "arn:aws:lambda:us-east-1:0:function:fn",
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "originals/"}, {"Name": "suffix", "Value": ".jpg"}]}}
    }]}}}"#;

    #[test]
    fn prefix_and_suffix_filter() {
        let r = rules(CFG).expect("valid");
        assert_eq!(
            r.matching("b", "ObjectCreated:Put", "originals/x.jpg")
                .count(),
            1
        );
        assert_eq!(
            r.matching("b", "ObjectCreated:Copy", "originals/x.jpg")
                .count(),
            1
        );
        assert_eq!(
            r.matching("b", "ObjectCreated:Put", "variants/x.jpg")
                .count(),
            0
        );
        assert_eq!(
            r.matching("b", "ObjectCreated:Put", "originals/x.png")
                .count(),
            0
        );
        assert_eq!(
            r.matching("other", "ObjectCreated:Put", "originals/x.jpg")
                .count(),
            0
        );
        assert_eq!(
            r.matching("b", "ObjectRemoved:Delete", "originals/x.jpg")
                .count(),
            0
        );
    }

    #[test]
    fn specific_event_names() {
        let r = rules(
            r#"{"Buckets": {"b": {"LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": "fn", "Events": ["s3:ObjectCreated:Put"]}]}}}"#,
        )
        .expect("valid");
        assert_eq!(r.matching("b", "ObjectCreated:Put", "k").count(), 1);
        assert_eq!(r.matching("b", "ObjectCreated:Copy", "k").count(), 0);
        let rule = r
            .matching("b", "ObjectCreated:Put", "k")
            .next()
            .expect("rule");
        assert_eq!(rule.id, "config-0");
        assert_eq!(
            rule.invoke_url,
            "http://127.0.0.1:9002/2015-03-31/functions/fn/invocations"
        );
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(
            rules(r#"{"Buckets": {"b": {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "f", "Events": ["s3:Nope"]}]}}}"#)
                .is_err()
        );
        assert!(rules(r#"{"Buckets": {"b": {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "f", "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "glob", "Value": "x"}]}}}]}}}"#)
        .is_err());
    }

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:0:function:fn"),
            "fn"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:0:function:fn:live"),
            "fn"
        );
        assert_eq!(function_name("fn"), "fn");
    }
}
