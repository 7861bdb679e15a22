//! Settings from the environment over the built-in `local/ports.env`
//! (`pixport-local-env`), checked once at start so a typo fails loudly
//! instead of on the first request.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
#[error("config: {0}")]
pub struct ConfigError(String);

/// One Secrets Manager secret the Data API can be handed: its ARN and the
/// database user and password it holds. The Data API connects as that user,
/// so MariaDB enforces the user's grants.
#[derive(Clone)]
pub struct DbSecret {
    pub arn: String,
    pub user: String,
    pub password: String,
}

/// The roles whose secrets are read from `PIXPORT_DB_<ROLE>_SECRET_ARN`,
/// `_USER` and `_PASSWORD` (deploy/template.yaml's EdgeDatabaseSecret and
/// ResizerDatabaseSecret; migrations/0010_role_users.sql makes the users).
const ROLES: [&str; 2] = ["EDGE", "RESIZER"];

/// Everything the server needs; secrets are redacted from `Debug`.
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// `Host` values answered: the listening address, `localhost` on its
    /// port, and `PIXPORT_DATAAPI_ALLOWED_HOSTS`. Anything else is refused,
    /// since the local key is committed and a rebinding page could sign.
    pub allowed_hosts: Vec<String>,
    pub region: String,
    /// The identities, their keys and policies (local/iam.py writes it from
    /// deploy/template.yaml): who signed a request and what it may do.
    pub iam_policies: std::path::PathBuf,
    pub cluster_arn: String,
    pub secret_arn: String,
    pub db_name: String,
    pub db_user: String,
    pub db_password: String,
    /// The roles' secrets besides the master's (`secret_arn`, `db_user`).
    pub role_secrets: Vec<DbSecret>,
    /// Unix socket of the local MariaDB; preferred over TCP when it exists
    /// because it skips the network stack and TCP auth.
    pub db_socket: Option<String>,
    pub db_host: String,
    pub db_port: u16,
    /// Idle time after which a transaction is rolled back (AWS: 3 minutes).
    pub tx_idle_timeout: Duration,
    /// AWS: 1 MiB per response.
    pub max_response_bytes: usize,
    /// AWS: 64 KB per row.
    pub max_row_bytes: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("region", &self.region)
            .field("iam_policies", &self.iam_policies)
            .field("cluster_arn", &self.cluster_arn)
            .field("secret_arn", &self.secret_arn)
            .field("db_name", &self.db_name)
            .field("db_user", &self.db_user)
            .field(
                "role_secrets",
                &self
                    .role_secrets
                    .iter()
                    .map(|s| (&s.arn, &s.user))
                    .collect::<Vec<_>>(),
            )
            .field("db_socket", &self.db_socket)
            .field("db_host", &self.db_host)
            .field("db_port", &self.db_port)
            .field("tx_idle_timeout", &self.tx_idle_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_row_bytes", &self.max_row_bytes)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = pixport_local_env::process_env().map_err(|e| ConfigError(e.to_string()))?;
        Self::from_lookup(env)
    }

    /// Separate from `from_env` so tests need not touch process state.
    /// `get` answers every variable, local/ports.env's included.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let req = |k: &str| -> Result<String, ConfigError> {
            match get(k) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
                _ => Err(ConfigError(format!(
                    "{k} must be set (see local/ports.env)"
                ))),
            }
        };
        let opt = |k: &str, d: &str| get(k).filter(|v| !v.is_empty()).unwrap_or_else(|| d.into());
        let num = |k: &str, d: u64| -> Result<u64, ConfigError> {
            opt(k, &d.to_string())
                .parse()
                .map_err(|_| ConfigError(format!("{k} must be a whole number")))
        };

        let addr = req("PIXPORT_DATAAPI_ADDR")?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| ConfigError(format!("PIXPORT_DATAAPI_ADDR {addr:?} is not host:port")))?;
        if !addr.ip().is_loopback() && opt("PIXPORT_DATAAPI_ALLOW_REMOTE", "0") != "1" {
            return Err(ConfigError(format!(
                "PIXPORT_DATAAPI_ADDR {addr} is not a loopback address: the local Data API runs \
                 SQL for anyone holding the committed local key; set PIXPORT_DATAAPI_ALLOW_REMOTE=1 \
                 to serve other machines anyway"
            )));
        }
        let port = addr.port();
        let mut allowed_hosts = vec![
            addr.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        allowed_hosts.extend(
            opt("PIXPORT_DATAAPI_ALLOWED_HOSTS", "")
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        );
        let cluster_arn = req("PIXPORT_DB_CLUSTER_ARN")?;
        if !cluster_arn.starts_with("arn:aws:rds:") {
            return Err(ConfigError(
                "PIXPORT_DB_CLUSTER_ARN must be an arn:aws:rds: ARN".into(),
            ));
        }
        let secret_arn = req("PIXPORT_DB_SECRET_ARN")?;
        if !secret_arn.starts_with("arn:aws:secretsmanager:") {
            return Err(ConfigError(
                "PIXPORT_DB_SECRET_ARN must be an arn:aws:secretsmanager: ARN".into(),
            ));
        }
        let mut role_secrets = Vec::new();
        for role in ROLES {
            let Some(arn) = get(&format!("PIXPORT_DB_{role}_SECRET_ARN")).filter(|v| !v.is_empty())
            else {
                continue;
            };
            if !arn.starts_with("arn:aws:secretsmanager:") || arn == secret_arn {
                return Err(ConfigError(format!(
                    "PIXPORT_DB_{role}_SECRET_ARN must be an arn:aws:secretsmanager: ARN of its own"
                )));
            }
            role_secrets.push(DbSecret {
                arn,
                user: req(&format!("PIXPORT_DB_{role}_USER"))?,
                password: req(&format!("PIXPORT_DB_{role}_PASSWORD"))?,
            });
        }
        let db_port = req("PIXPORT_MARIADB_PORT")?
            .parse::<u16>()
            .map_err(|_| ConfigError("PIXPORT_MARIADB_PORT must be a port number".into()))?;
        let tx_secs = num("PIXPORT_DATAAPI_TX_TIMEOUT_SECS", 180)?;
        if tx_secs == 0 {
            return Err(ConfigError(
                "PIXPORT_DATAAPI_TX_TIMEOUT_SECS must be > 0".into(),
            ));
        }
        Ok(Self {
            addr,
            allowed_hosts,
            region: req("PIXPORT_REGION")?,
            iam_policies: req("PIXPORT_IAM_POLICIES")?.into(),
            cluster_arn,
            secret_arn,
            db_name: req("PIXPORT_DB_NAME")?,
            db_user: opt("PIXPORT_DB_USER", "pixport"),
            db_password: opt("PIXPORT_DB_PASSWORD", "pixport-local"),
            role_secrets,
            db_socket: get("PIXPORT_MARIADB_SOCKET").filter(|s| !s.is_empty()),
            db_host: opt("PIXPORT_MARIADB_HOST", "127.0.0.1"),
            db_port,
            tx_idle_timeout: Duration::from_secs(tx_secs),
            max_response_bytes: usize::try_from(num(
                "PIXPORT_DATAAPI_MAX_RESPONSE_BYTES",
                1 << 20,
            )?)
            .map_err(|_| ConfigError("PIXPORT_DATAAPI_MAX_RESPONSE_BYTES too large".into()))?,
            max_row_bytes: usize::try_from(num("PIXPORT_DATAAPI_MAX_ROW_BYTES", 64 * 1024)?)
                .map_err(|_| ConfigError("PIXPORT_DATAAPI_MAX_ROW_BYTES too large".into()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixport_local_env::PortsEnv;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("PIXPORT_DATAAPI_ADDR", "127.0.0.1:9001"),
            ("PIXPORT_REGION", "us-east-1"),
            ("PIXPORT_MARIADB_PORT", "3307"),
            ("PIXPORT_DB_NAME", "pixport"),
            ("PIXPORT_IAM_POLICIES", "/tmp/iam.json"),
            (
                "PIXPORT_DB_CLUSTER_ARN",
                "arn:aws:rds:us-east-1:0:cluster:x",
            ),
            (
                "PIXPORT_DB_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:0:secret:x",
            ),
        ])
    }

    fn load(m: &HashMap<&str, &str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_mirror_aws_limits() {
        let c = load(&base()).unwrap();
        assert_eq!(c.tx_idle_timeout, Duration::from_secs(180));
        assert_eq!(c.max_response_bytes, 1 << 20);
        assert_eq!(c.max_row_bytes, 65536);
    }

    #[test]
    fn ports_env_alone_is_a_whole_config() {
        let file = PortsEnv::committed().expect("local/ports.env parses");
        let iam = |k: &str| (k == "PIXPORT_IAM_POLICIES").then(|| "/tmp/iam.json".to_owned());
        let c = Config::from_lookup(file.under(iam)).expect("valid");
        let want = |k| file.get(k).unwrap_or_default();
        assert_eq!(c.addr.to_string(), want("PIXPORT_DATAAPI_ADDR"));
        assert_eq!(c.db_port.to_string(), want("PIXPORT_MARIADB_PORT"));
        assert_eq!(c.db_name, want("PIXPORT_DB_NAME"));
        assert_eq!(c.secret_arn, want("PIXPORT_DB_SECRET_ARN"));
        let users: Vec<_> = c.role_secrets.iter().map(|s| s.user.as_str()).collect();
        assert_eq!(
            users,
            [
                want("PIXPORT_DB_EDGE_USER"),
                want("PIXPORT_DB_RESIZER_USER")
            ]
        );
        let over = |k: &str| match k {
            "PIXPORT_MARIADB_PORT" => Some("9203".to_owned()),
            _ => iam(k),
        };
        assert_eq!(
            Config::from_lookup(file.under(over))
                .expect("valid")
                .db_port,
            9203
        );
    }

    #[test]
    fn loopback_only_unless_asked() {
        let mut m = base();
        m.insert("PIXPORT_DATAAPI_ADDR", "0.0.0.0:9001");
        let err = load(&m).unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        m.insert("PIXPORT_DATAAPI_ALLOW_REMOTE", "1");
        assert!(load(&m).is_ok());
        let mut m = base();
        m.insert("PIXPORT_DATAAPI_ALLOWED_HOSTS", "Dataapi.test:9001, ");
        let c = load(&m).unwrap();
        assert!(c.allowed_hosts.contains(&"localhost:9001".to_string()));
        assert!(c.allowed_hosts.contains(&"dataapi.test:9001".to_string()));
        assert_eq!(c.allowed_hosts.len(), 5);
    }

    #[test]
    fn role_secrets_need_their_user_and_password() {
        let mut m = base();
        assert!(load(&m).unwrap().role_secrets.is_empty());
        m.insert(
            "PIXPORT_DB_EDGE_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:0:secret:edge",
        );
        assert!(load(&m).is_err());
        m.insert("PIXPORT_DB_EDGE_USER", "pixport_edge");
        m.insert("PIXPORT_DB_EDGE_PASSWORD", "pw");
        let c = load(&m).unwrap();
        assert_eq!(c.role_secrets.len(), 1);
        assert_eq!(c.role_secrets[0].user, "pixport_edge");
        assert!(!format!("{c:?}").contains("\"pw\""));
        m.insert(
            "PIXPORT_DB_EDGE_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:0:secret:x",
        );
        assert!(
            load(&m).is_err(),
            "a role may not share the master's secret"
        );
    }

    #[test]
    fn rejects_bad_values() {
        let mut m = base();
        m.insert("PIXPORT_DATAAPI_ADDR", "nope");
        assert!(load(&m).is_err());
        let mut m = base();
        m.remove("PIXPORT_IAM_POLICIES");
        assert!(load(&m).is_err());
        let mut m = base();
        m.insert("PIXPORT_DB_SECRET_ARN", "arn:aws:rds:x");
        assert!(load(&m).is_err());
        let mut m = base();
        m.insert("PIXPORT_DATAAPI_TX_TIMEOUT_SECS", "0");
        assert!(load(&m).is_err());
        for port in ["70000", "x"] {
            let mut m = base();
            m.insert("PIXPORT_MARIADB_PORT", port);
            assert!(load(&m).is_err(), "{port}");
        }
        let mut m = base();
        m.remove("PIXPORT_DB_NAME");
        assert!(load(&m).is_err());
    }
}
