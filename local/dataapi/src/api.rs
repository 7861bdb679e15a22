//! The five operations: request shapes, ARN checks and statement execution.

use std::sync::Arc;

use mysql_async::prelude::{Protocol, Queryable};
use mysql_async::{Conn, Params, Pool, QueryResult, Value};
use serde::{Deserialize, Serialize};

use crate::aurora::{Busy, Cluster};
use crate::config::Config;
use crate::convert::{ColInfo, Field, ResultOptions, TypeHint, param_value, result_field};
use crate::error::ApiError;
use crate::jdbc::{ColumnMetadata, column_metadata};
use crate::sql::to_positional;
use crate::tx::Transactions;

pub struct App {
    pub cfg: Config,
    /// One pool per secret: the master's and each role's (`Config::role_secrets`).
    pub pools: Pools,
    pub txs: Arc<Transactions>,
    pub cluster: Cluster,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlParameter {
    pub name: Option<String>,
    pub value: Option<Field>,
    pub type_hint: Option<TypeHint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultSetOptions {
    pub decimal_return_type: Option<String>,
    pub long_return_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    #[serde(default)]
    pub resource_arn: String,
    #[serde(default)]
    pub secret_arn: String,
    pub sql: Option<String>,
    pub database: Option<String>,
    #[serde(default)]
    pub parameters: Vec<SqlParameter>,
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub include_result_metadata: bool,
    #[serde(default)]
    pub result_set_options: ResultSetOptions,
    pub format_records_as: Option<String>,
    #[serde(default)]
    pub continue_after_timeout: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    #[serde(default)]
    pub resource_arn: String,
    #[serde(default)]
    pub secret_arn: String,
    pub sql: Option<String>,
    pub database: Option<String>,
    #[serde(default)]
    pub parameter_sets: Vec<Vec<SqlParameter>>,
    pub transaction_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxRequest {
    #[serde(default)]
    pub resource_arn: String,
    #[serde(default)]
    pub secret_arn: String,
    pub database: Option<String>,
    pub transaction_id: Option<String>,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Vec<Field>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_metadata: Option<Vec<ColumnMetadata>>,
    pub number_of_records_updated: u64,
    pub generated_fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_records: Option<String>,
}

/// A connection pool per secret the Data API knows: each connects as the
/// database user its secret holds, as Aurora's Data API does, so a role's
/// statements meet that user's grants.
pub struct Pools {
    by_secret: Vec<(String, Pool)>,
}

impl Pools {
    pub fn new(by_secret: Vec<(String, Pool)>) -> Self {
        Self { by_secret }
    }

    /// The pool of `secret_arn`, if the Data API knows that secret.
    pub fn get(&self, secret_arn: &str) -> Option<&Pool> {
        self.by_secret
            .iter()
            .find(|(arn, _)| arn == secret_arn)
            .map(|(_, p)| p)
    }

    pub async fn disconnect(&self) {
        for (_, pool) in &self.by_secret {
            pool.clone().disconnect().await.ok();
        }
    }
}

/// Checks the ARNs the way the service does before touching the database;
/// the pool of the named secret.
fn check_arns<'a>(
    cfg: &Config,
    pools: &'a Pools,
    resource_arn: &str,
    secret_arn: &str,
) -> Result<&'a Pool, ApiError> {
    if resource_arn.is_empty() {
        return Err(ApiError::bad("resourceArn is required"));
    }
    if secret_arn.is_empty() {
        return Err(ApiError::bad("secretArn is required"));
    }
    if resource_arn != cfg.cluster_arn {
        return Err(ApiError::bad(format!(
            "HttpEndpoint is not enabled for resource {resource_arn}. Please refer to https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.html#data-api.troubleshooting"
        )));
    }
    pools.get(secret_arn).ok_or_else(|| {
        ApiError::bad("Error fetching secret: Secrets Manager can't find the specified secret.")
    })
}

/// Positional SQL and its bound values, in placeholder order.
fn bind(sql: &str, params: &[SqlParameter]) -> Result<(String, Vec<Value>), ApiError> {
    let (sql, names) = to_positional(sql);
    let mut values = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let p = params
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| ApiError::bad(format!("No value specified for parameter {}", i + 1)))?;
        let v = match &p.value {
            Some(f) => param_value(f, p.type_hint)?,
            None => Value::NULL,
        };
        values.push(v);
    }
    // Arrays are refused even when unreferenced, as the service validates all.
    if params
        .iter()
        .any(|p| matches!(p.value, Some(Field::ArrayValue(_))))
    {
        return Err(ApiError::bad("Array parameters are not supported."));
    }
    Ok((sql, values))
}

/// The Data API's response caps (AWS: 64 KB per row, 1 MiB per response),
/// from `Config::max_row_bytes` and `max_response_bytes`.
pub struct ResponseCaps {
    pub max_row: usize,
    pub max_total: usize,
}

/// What one statement produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub columns: Option<Vec<ColInfo>>,
    pub rows: Vec<Vec<Field>>,
    pub affected: u64,
    pub last_insert_id: Option<u64>,
}

pub fn response_too_large() -> ApiError {
    ApiError::bad("Database returned more than the allowed response size limit")
}

fn row_too_large(size: usize, limit: usize) -> ApiError {
    ApiError::bad(format!(
        "Packet for query is too large ({size} > {limit}). You can change this value on the server by setting the 'max_allowed_packet' variable."
    ))
}

async fn collect<P: Protocol>(
    mut qr: QueryResult<'_, 'static, P>,
    caps: &ResponseCaps,
    opts: ResultOptions,
) -> Result<Outcome, ApiError> {
    let cols: Vec<ColInfo> = qr
        .columns()
        .map(|c| c.iter().map(ColInfo::from_column).collect())
        .unwrap_or_default();
    let mut out = Outcome {
        affected: qr.affected_rows(),
        last_insert_id: qr.last_insert_id(),
        ..Default::default()
    };
    if cols.is_empty() {
        qr.drop_result().await?;
        return Ok(out);
    }
    let mut total = 0usize;
    let mut failure = None;
    while let Some(row) = qr.next().await? {
        let fields: Vec<Field> = row
            .unwrap()
            .into_iter()
            .zip(&cols)
            .map(|(v, c)| result_field(c, v, opts))
            .collect();
        let size: usize = fields.iter().map(Field::size).sum();
        total += size;
        if size > caps.max_row {
            failure = Some(row_too_large(size, caps.max_row));
            break;
        }
        if total > caps.max_total {
            failure = Some(response_too_large());
            break;
        }
        out.rows.push(fields);
    }
    // Leave the connection clean whether or not all rows were read.
    qr.drop_result().await?;
    if let Some(e) = failure {
        return Err(e);
    }
    out.affected = 0;
    out.columns = Some(cols);
    Ok(out)
}

pub async fn run(
    conn: &mut Conn,
    sql: &str,
    values: Vec<Value>,
    caps: &ResponseCaps,
    opts: ResultOptions,
) -> Result<Outcome, ApiError> {
    if values.is_empty() {
        // Text protocol: works for every statement, including ones MySQL
        // cannot prepare.
        let qr = conn.query_iter(sql).await?;
        collect(qr, caps, opts).await
    } else {
        let qr = conn.exec_iter(sql, Params::Positional(values)).await?;
        collect(qr, caps, opts).await
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A pooled connection that answers. After a MariaDB restart the pool still
/// holds dead connections; the real service never shows that, so they are
/// weeded out here rather than failing the caller's statement.
async fn healthy_conn(pool: &Pool) -> Result<Conn, ApiError> {
    for _ in 0..8 {
        let mut conn = pool.get_conn().await?;
        if conn.ping().await.is_ok() {
            return Ok(conn);
        }
        let _ = conn.disconnect().await;
    }
    Ok(pool.get_conn().await?)
}

/// A connection of `pool` switched to `database` when the caller names one.
async fn pooled(
    app: &App,
    pool: &Pool,
    database: Option<&str>,
) -> Result<(mysql_async::Conn, bool), ApiError> {
    let mut conn = healthy_conn(pool).await?;
    let switched = match database {
        Some(db) if !db.is_empty() && db != app.cfg.db_name => {
            conn.query_drop(format!("USE {}", quote_ident(db))).await?;
            true
        }
        _ => false,
    };
    Ok((conn, switched))
}

/// Returns a connection to the pool on the default database.
async fn release(app: &App, conn: Conn, switched: bool) {
    restore(&app.cfg.db_name, conn, switched).await;
}

/// Returns a connection to the pool on `db_name`, whoever holds it now.
async fn restore(db_name: &str, mut conn: Conn, switched: bool) {
    if switched
        && let Err(e) = conn
            .query_drop(format!("USE {}", quote_ident(db_name)))
            .await
    {
        tracing::warn!(error = %e, "could not switch pooled connection back; dropping it");
        let _ = conn.disconnect().await;
    }
}

impl App {
    /// Admits a call past the ARN checks to the database, or refuses it as
    /// a paused Aurora cluster does.
    fn enter(&self) -> Result<Busy<'_>, ApiError> {
        self.cluster.enter(self.txs.open())
    }

    /// Runs `work` (which owns its connection) within the statement timeout.
    /// Past it the caller gets `StatementTimeoutException`; the statement is
    /// killed unless `continue_after`, in which case it runs on and its
    /// connection goes back to the pool when it is done.
    async fn bounded<T: Send + 'static>(
        &self,
        pool: &Pool,
        connection_id: u32,
        continue_after: bool,
        work: impl Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let mut task = tokio::spawn(work);
        match tokio::time::timeout(self.cluster.settings.statement_timeout, &mut task).await {
            Ok(joined) => joined.map_err(|e| ApiError::Internal(format!("statement task: {e}")))?,
            Err(_) => {
                if !continue_after {
                    // As the same user: killing one's own statement needs no privilege.
                    match pool.get_conn().await {
                        Ok(mut c) => {
                            if let Err(e) =
                                c.query_drop(format!("KILL QUERY {connection_id}")).await
                            {
                                tracing::warn!(connection_id, error = %e, "could not cancel a timed-out statement");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(connection_id, error = %e, "could not cancel a timed-out statement")
                        }
                    }
                }
                Err(ApiError::StatementTimeout { connection_id })
            }
        }
    }

    fn response_caps(&self) -> ResponseCaps {
        ResponseCaps {
            max_row: self.cfg.max_row_bytes,
            max_total: self.cfg.max_response_bytes,
        }
    }

    pub async fn execute(&self, req: ExecuteRequest) -> Result<ExecuteResponse, ApiError> {
        let pool = check_arns(&self.cfg, &self.pools, &req.resource_arn, &req.secret_arn)?;
        let sql = req
            .sql
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad("SQL statement is required"))?;
        let (sql, values) = bind(sql, &req.parameters)?;
        let json = match req.format_records_as.as_deref() {
            None | Some("NONE") => false,
            Some("JSON") => true,
            Some(other) => return Err(ApiError::bad(format!("Invalid formatRecordsAs: {other}"))),
        };
        let opts = ResultOptions {
            decimal_as_number: req.result_set_options.decimal_return_type.as_deref()
                == Some("DOUBLE_OR_LONG"),
            long_as_string: req.result_set_options.long_return_type.as_deref() == Some("STRING"),
        };
        let caps = self.response_caps();
        let _busy = self.enter()?;
        let keep_going = req.continue_after_timeout;
        let out = match &req.transaction_id {
            Some(id) if !id.is_empty() => {
                let entry = self.txs.get(id)?;
                if entry.secret_arn != req.secret_arn {
                    return Err(crate::tx::not_found(id));
                }
                let connection_id = {
                    let guard = entry.conn.lock().await;
                    guard.as_ref().ok_or_else(|| crate::tx::not_found(id))?.id()
                };
                let id = id.clone();
                self.bounded(pool, connection_id, keep_going, async move {
                    let mut guard = entry.conn.lock().await;
                    let conn = guard.as_mut().ok_or_else(|| crate::tx::not_found(&id))?;
                    let r = run(conn, &sql, values, &caps, opts).await;
                    entry.touch();
                    r
                })
                .await?
            }
            _ => {
                let (mut conn, switched) = pooled(self, pool, req.database.as_deref()).await?;
                let db_name = self.cfg.db_name.clone();
                self.bounded(pool, conn.id(), keep_going, async move {
                    let r = run(&mut conn, &sql, values, &caps, opts).await;
                    restore(&db_name, conn, switched).await;
                    r
                })
                .await?
            }
        };
        let mut resp = ExecuteResponse {
            number_of_records_updated: out.affected,
            generated_fields: generated(&out),
            ..Default::default()
        };
        if let Some(cols) = out.columns {
            if req.include_result_metadata {
                resp.column_metadata = Some(cols.iter().map(column_metadata).collect());
            }
            if json {
                resp.formatted_records = Some(format_records(&cols, &out.rows));
            } else {
                resp.records = Some(out.rows);
            }
        }
        Ok(resp)
    }

    pub async fn batch_execute(&self, req: BatchRequest) -> Result<serde_json::Value, ApiError> {
        let pool = check_arns(&self.cfg, &self.pools, &req.resource_arn, &req.secret_arn)?;
        let sql = req
            .sql
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad("SQL statement is required"))?;
        let caps = self.response_caps();
        let sets: Vec<(String, Vec<Value>)> = if req.parameter_sets.is_empty() {
            vec![bind(sql, &[])?]
        } else {
            req.parameter_sets
                .iter()
                .map(|s| bind(sql, s))
                .collect::<Result<_, _>>()?
        };
        let has_sets = !req.parameter_sets.is_empty();
        let _busy = self.enter()?;
        let mut results = Vec::new();
        match &req.transaction_id {
            Some(id) if !id.is_empty() => {
                let entry = self.txs.get(id)?;
                if entry.secret_arn != req.secret_arn {
                    return Err(crate::tx::not_found(id));
                }
                let mut guard = entry.conn.lock().await;
                let conn = guard.as_mut().ok_or_else(|| crate::tx::not_found(id))?;
                for (sql, values) in sets {
                    let out = run(conn, &sql, values, &caps, ResultOptions::default()).await?;
                    results.push(serde_json::json!({ "generatedFields": generated(&out) }));
                }
                entry.touch();
            }
            _ => {
                // Outside a transaction the batch is all-or-nothing.
                let (mut conn, switched) = pooled(self, pool, req.database.as_deref()).await?;
                let r = async {
                    conn.query_drop("START TRANSACTION").await?;
                    for (sql, values) in sets {
                        let out =
                            run(&mut conn, &sql, values, &caps, ResultOptions::default()).await?;
                        results.push(serde_json::json!({ "generatedFields": generated(&out) }));
                    }
                    conn.query_drop("COMMIT").await?;
                    Ok::<_, ApiError>(())
                }
                .await;
                if r.is_err() {
                    let _ = conn.query_drop("ROLLBACK").await;
                }
                release(self, conn, switched).await;
                r?;
            }
        }
        if !has_sets {
            results.clear();
        }
        Ok(serde_json::json!({ "updateResults": results }))
    }

    pub async fn begin(&self, req: TxRequest) -> Result<serde_json::Value, ApiError> {
        let pool = check_arns(&self.cfg, &self.pools, &req.resource_arn, &req.secret_arn)?;
        let _busy = self.enter()?;
        let (mut conn, switched) = pooled(self, pool, req.database.as_deref()).await?;
        if let Err(e) = conn.query_drop("START TRANSACTION").await {
            release(self, conn, switched).await;
            return Err(e.into());
        }
        // The connection leaves the pool's hands until commit/rollback; a
        // switched database stays for the transaction's life.
        let id = self.txs.insert(conn, &req.secret_arn)?;
        tracing::debug!(transaction = %id, "begin");
        Ok(serde_json::json!({ "transactionId": id }))
    }

    pub async fn end(&self, req: TxRequest, commit: bool) -> Result<serde_json::Value, ApiError> {
        check_arns(&self.cfg, &self.pools, &req.resource_arn, &req.secret_arn)?;
        let id = req
            .transaction_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad("transactionId is required"))?;
        let _busy = self.enter()?;
        if self.txs.get(id)?.secret_arn != req.secret_arn {
            return Err(crate::tx::not_found(id));
        }
        let entry = self.txs.remove(id)?;
        let conn = entry.conn.lock().await.take();
        let mut conn = conn.ok_or_else(|| crate::tx::not_found(id))?;
        let stmt = if commit { "COMMIT" } else { "ROLLBACK" };
        conn.query_drop(stmt).await?;
        // Back to the pool on the default database, whatever Begin chose.
        release(self, conn, true).await;
        let status = if commit {
            "Transaction Committed"
        } else {
            "Rollback Complete"
        };
        Ok(serde_json::json!({ "transactionStatus": status }))
    }
}

/// `formattedRecords`: a JSON array of objects keyed by column label, keys
/// in column order (serde_json's map would sort them).
fn format_records(cols: &[ColInfo], rows: &[Vec<Field>]) -> String {
    let mut s = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('{');
        for (j, (c, f)) in cols.iter().zip(row).enumerate() {
            if j > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::Value::String(c.label.clone()).to_string());
            s.push(':');
            s.push_str(&f.to_json().to_string());
        }
        s.push('}');
    }
    s.push(']');
    s
}

/// `generatedFields`: the auto-increment value of an INSERT, if one was made.
fn generated(out: &Outcome) -> Vec<Field> {
    match out.last_insert_id {
        Some(id) if id > 0 && out.columns.is_none() => vec![Field::LongValue(i128::from(id))],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, v: Field) -> SqlParameter {
        SqlParameter {
            name: Some(name.into()),
            value: Some(v),
            type_hint: None,
        }
    }

    #[test]
    fn binds_by_name_in_placeholder_order() {
        let params = [
            p("b", Field::LongValue(2)),
            p("a", Field::StringValue("x".into())),
        ];
        let (sql, values) = bind("SELECT :a, :b, :a", &params).unwrap();
        assert_eq!(sql, "SELECT ?, ?, ?");
        assert_eq!(
            values,
            [
                Value::Bytes(b"x".to_vec()),
                Value::Int(2),
                Value::Bytes(b"x".to_vec())
            ]
        );
        assert!(bind("SELECT :missing", &params).is_err());
    }

    #[test]
    fn array_parameters_are_refused() {
        let params = [p(
            "a",
            Field::ArrayValue(serde_json::json!({"longValues": [1]})),
        )];
        assert_eq!(
            bind("SELECT 1", &params).unwrap_err().to_string(),
            "Array parameters are not supported."
        );
    }

    #[test]
    fn formatted_records_keep_column_order() {
        let col = |n: &str| crate::convert::ColInfo {
            ty: mysql_async::consts::ColumnType::MYSQL_TYPE_LONG,
            name: n.into(),
            label: n.into(),
            table: String::new(),
            length: 11,
            decimals: 0,
            charset: 63,
            unsigned: false,
            not_null: false,
            auto_increment: false,
            enum_or_set: false,
        };
        let rows = vec![vec![Field::LongValue(1), Field::StringValue("a\"b".into())]];
        let s = format_records(&[col("z"), col("a")], &rows);
        assert_eq!(s, r#"[{"z":1,"a":"a\"b"}]"#);
        assert_eq!(format_records(&[col("z")], &[]), "[]");
    }

    #[test]
    fn generated_fields_only_for_inserts() {
        let o = Outcome {
            last_insert_id: Some(7),
            ..Default::default()
        };
        assert_eq!(generated(&o), [Field::LongValue(7)]);
        let o = Outcome {
            last_insert_id: Some(0),
            ..Default::default()
        };
        assert!(generated(&o).is_empty());
    }
}
