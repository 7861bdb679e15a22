//! Credentials, region and endpoints, always given explicitly.
//!
//! Nothing here reads the environment or a clock: the worker has neither a
//! process environment nor a working `SystemTime::now`, and the Lambda host
//! reads its environment once at start-up and passes the values in.

use std::fmt;

use crate::Error;

/// Static or temporary AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Lambda's execution role hands out temporary credentials, which are
    /// only valid together with this token.
    pub session_token: Option<String>,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    pub(crate) fn to_identity(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            None,
            "pixport",
        )
        .into()
    }
}

/// Secrets stay out of logs even when a whole config is `{:?}`-printed.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// An AWS region name such as `eu-west-1`; part of every signature's scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where S3 requests go.
///
/// Local S3 servers (MinIO, moto, s3rver) usually need path style because
/// `bucket.127.0.0.1` does not resolve; AWS itself prefers virtual-hosted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// `scheme://host[:port][/prefix]`, without a trailing slash.
    pub base_url: String,
    /// `base_url/bucket/key` when true, `bucket.host/key` when false.
    pub path_style: bool,
}

impl S3Endpoint {
    /// The regional AWS endpoint, virtual-hosted (what boto3 uses by default).
    pub fn aws(region: &Region) -> Self {
        Self {
            base_url: format!("https://s3.{region}.amazonaws.com"),
            path_style: false,
        }
    }

    /// A custom endpoint such as `http://127.0.0.1:9000`.
    pub fn custom(base_url: &str, path_style: bool) -> Result<Self, Error> {
        Ok(Self {
            base_url: BaseUrl::parse(base_url)?.to_string(),
            path_style,
        })
    }
}

/// S3 settings for one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub region: Region,
    pub endpoint: S3Endpoint,
}

impl S3Config {
    /// AWS's own endpoint for `region`.
    pub fn aws(region: Region) -> Self {
        let endpoint = S3Endpoint::aws(&region);
        Self { region, endpoint }
    }
}

/// Which Aurora cluster and secret the Data API calls run against.
///
/// The ARNs travel in every request body, so they live with the endpoint
/// instead of being repeated at each call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataApiConfig {
    pub region: Region,
    /// `https://rds-data.<region>.amazonaws.com` unless overridden for tests.
    pub endpoint: String,
    pub resource_arn: String,
    pub secret_arn: String,
    pub database: Option<String>,
}

impl DataApiConfig {
    pub fn new(
        region: Region,
        resource_arn: impl Into<String>,
        secret_arn: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: format!("https://rds-data.{region}.amazonaws.com"),
            region,
            resource_arn: resource_arn.into(),
            secret_arn: secret_arn.into(),
            database: None,
        }
    }

    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Points requests elsewhere (a loopback listener in tests).
    pub fn with_endpoint(mut self, base_url: &str) -> Result<Self, Error> {
        self.endpoint = BaseUrl::parse(base_url)?.to_string();
        Ok(self)
    }
}

/// A validated `scheme://authority[/prefix]`; requests are built by appending to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    pub scheme: String,
    pub authority: String,
    /// Empty, or starts with `/` and has no trailing `/`.
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("endpoint {url:?}: {why}"));
        let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(bad("scheme must be http or https")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host"))?
            .as_str()
            .to_owned();
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        if uri.query().is_some() {
            return Err(bad("a query is not supported"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            prefix,
        })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}
