//! Integrations (a workspace's configured adapters), their delivery log,
//! playbooks and playbook runs.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{json_column, now, reading, Reads, Store, StoreError, StoreResult, WriteTx};

/// A configured adapter in a workspace.
#[derive(Debug, Clone)]
pub struct Integration {
    /// Identifier.
    pub id: i64,
    /// Unique name in the workspace (`ops-slack`).
    pub name: String,
    /// The adapter's registered name (`slack_notifier`).
    pub adapter: String,
    /// Settings that are not secret.
    pub config: Map<String, Value>,
    /// Secret settings, each value sealed with the server's secrets key.
    pub sealed_secrets: Map<String, Value>,
    /// Whether events are delivered through it.
    pub enabled: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

const INTEGRATION_COLUMNS: &str =
    "i.id, i.name, i.adapter, i.config, i.secrets, i.enabled, u.email AS created_by, i.created_at, i.updated_at";
const INTEGRATION_FROM: &str = "integrations i LEFT JOIN users u ON u.id = i.created_by";

fn object(text: &str, what: &str) -> StoreResult<Map<String, Value>> {
    match json_column(text, what)? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt(format!("{what} is not an object"))),
    }
}

fn integration_from_row(row: &AnyRow) -> StoreResult<Integration> {
    Ok(Integration {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        adapter: row.try_get("adapter")?,
        config: object(&row.try_get::<String, _>("config")?, "integration config")?,
        sealed_secrets: object(&row.try_get::<String, _>("secrets")?, "integration secrets")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Stores a new integration.
pub async fn insert_integration(
    tx: &mut WriteTx,
    workspace_id: i64,
    name: &str,
    adapter: &str,
    config: &Map<String, Value>,
    sealed_secrets: &Map<String, Value>,
    created_by: i64,
) -> StoreResult<Integration> {
    let at = now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO integrations (workspace_id, name, adapter, config, secrets, enabled, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) RETURNING id",
    )
    .bind(workspace_id)
    .bind(name)
    .bind(adapter)
    .bind(Value::Object(config.clone()).to_string())
    .bind(Value::Object(sealed_secrets.clone()).to_string())
    .bind(created_by)
    .bind(&at)
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::IntegrationName(name.to_owned()))
    }))?;
    integration_in(tx, workspace_id, &id.to_string()).await
}

/// Replaces an integration's settings and enabled flag.
pub async fn update_integration(
    tx: &mut WriteTx,
    workspace_id: i64,
    integration: &Integration,
) -> StoreResult<Integration> {
    sqlx::query(
        "UPDATE integrations SET config = $1, secrets = $2, enabled = $3, updated_at = $4
         WHERE workspace_id = $5 AND id = $6",
    )
    .bind(Value::Object(integration.config.clone()).to_string())
    .bind(Value::Object(integration.sealed_secrets.clone()).to_string())
    .bind(i64::from(integration.enabled))
    .bind(now())
    .bind(workspace_id)
    .bind(integration.id)
    .execute(tx.conn())
    .await?;
    integration_in(tx, workspace_id, &integration.id.to_string()).await
}

/// Deletes an integration (its delivery log stays).
pub async fn delete_integration(tx: &mut WriteTx, workspace_id: i64, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM integrations WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An integration by id or name, inside a transaction.
pub async fn integration_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    id_or_name: &str,
) -> StoreResult<Integration> {
    let id = id_or_name.parse::<i64>().unwrap_or(-1);
    let row = sqlx::query(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM {INTEGRATION_FROM}
         WHERE i.workspace_id = $1 AND (i.id = $2 OR i.name = $3)"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(id_or_name)
    .fetch_optional(reading(conn))
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Integration(id_or_name.to_owned())))?;
    integration_from_row(&row)
}

/// A delivery attempt to record.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The integration (None if it was deleted meanwhile).
    pub integration_id: Option<i64>,
    /// Its name.
    pub integration: &'a str,
    /// Its adapter.
    pub adapter: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// What sent it: `test`, `playbook:<run id>`, `task:<name>`.
    pub source: &'a str,
    /// Whether the adapter delivered it.
    pub ok: bool,
    /// The adapter's report.
    pub detail: Option<&'a Value>,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// A recorded delivery attempt.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Identifier.
    pub id: i64,
    /// Integration name.
    pub integration: String,
    /// Adapter name.
    pub adapter: String,
    /// Event type.
    pub event_type: String,
    /// `test`, `playbook:<run id>` or `task:<name>`.
    pub source: String,
    /// Whether it was delivered.
    pub ok: bool,
    /// What the adapter reported (for example the remote status code).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When (RFC 3339).
    pub created_at: String,
}

impl Store {
    /// Every integration in the workspace, by name.
    pub async fn list_integrations(&self, workspace_id: i64) -> StoreResult<Vec<Integration>> {
        let rows = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM {INTEGRATION_FROM} WHERE i.workspace_id = $1 ORDER BY i.name"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(integration_from_row).collect()
    }

    /// One integration by id or name.
    pub async fn integration(
        &self,
        workspace_id: i64,
        id_or_name: &str,
    ) -> StoreResult<Integration> {
        let mut conn = self.pool().acquire().await?;
        integration_in(&mut conn, workspace_id, id_or_name).await
    }

    /// Records a delivery attempt.
    pub async fn record_delivery(
        &self,
        workspace_id: i64,
        delivery: NewDelivery<'_>,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (workspace_id, integration_id, integration, adapter, event_type, source, ok, detail, error, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(workspace_id)
        .bind(delivery.integration_id)
        .bind(delivery.integration)
        .bind(delivery.adapter)
        .bind(delivery.event_type)
        .bind(delivery.source)
        .bind(i64::from(delivery.ok))
        .bind(delivery.detail.map(Value::to_string))
        .bind(delivery.error)
        .bind(now())
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The last `limit` deliveries of one integration, newest first.
    pub async fn deliveries(
        &self,
        workspace_id: i64,
        integration_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, integration, adapter, event_type, source, ok, detail, error, created_at
             FROM deliveries WHERE workspace_id = $1 AND integration_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(integration_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let detail: Option<String> = row.try_get("detail")?;
                Ok(Delivery {
                    id: row.try_get("id")?,
                    integration: row.try_get("integration")?,
                    adapter: row.try_get("adapter")?,
                    event_type: row.try_get("event_type")?,
                    source: row.try_get("source")?,
                    ok: row.try_get::<i64, _>("ok")? != 0,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                    error: row.try_get("error")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// A stored playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Identifier.
    pub id: i64,
    /// Unique name in the workspace.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The steps (validated when written).
    pub steps: Value,
    /// Who created it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

const PLAYBOOK_COLUMNS: &str =
    "p.id, p.name, p.description, p.steps, u.email AS created_by, p.created_at, p.updated_at";
const PLAYBOOK_FROM: &str = "playbooks p LEFT JOIN users u ON u.id = p.created_by";

fn playbook_from_row(row: &AnyRow) -> StoreResult<Playbook> {
    Ok(Playbook {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        steps: json_column(&row.try_get::<String, _>("steps")?, "playbook steps")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Stores a new playbook.
pub async fn insert_playbook(
    tx: &mut WriteTx,
    workspace_id: i64,
    name: &str,
    description: &str,
    steps: &Value,
    created_by: i64,
) -> StoreResult<Playbook> {
    let at = now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO playbooks (workspace_id, name, description, steps, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(workspace_id)
    .bind(name)
    .bind(description)
    .bind(steps.to_string())
    .bind(created_by)
    .bind(&at)
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::PlaybookName(name.to_owned()))
    }))?;
    playbook_in(tx, workspace_id, &id.to_string()).await
}

/// Replaces a playbook's name, description and steps.
pub async fn update_playbook(
    tx: &mut WriteTx,
    workspace_id: i64,
    playbook: &Playbook,
) -> StoreResult<Playbook> {
    sqlx::query(
        "UPDATE playbooks SET name = $1, description = $2, steps = $3, updated_at = $4
         WHERE workspace_id = $5 AND id = $6",
    )
    .bind(&playbook.name)
    .bind(&playbook.description)
    .bind(playbook.steps.to_string())
    .bind(now())
    .bind(workspace_id)
    .bind(playbook.id)
    .execute(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::PlaybookName(playbook.name.clone()))
    }))?;
    playbook_in(tx, workspace_id, &playbook.id.to_string()).await
}

/// Deletes a playbook (its run records stay).
pub async fn delete_playbook(tx: &mut WriteTx, workspace_id: i64, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM playbooks WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A playbook by id or name, inside a transaction.
pub async fn playbook_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    id_or_name: &str,
) -> StoreResult<Playbook> {
    let id = id_or_name.parse::<i64>().unwrap_or(-1);
    let row = sqlx::query(&format!(
        "SELECT {PLAYBOOK_COLUMNS} FROM {PLAYBOOK_FROM}
         WHERE p.workspace_id = $1 AND (p.id = $2 OR p.name = $3)"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(id_or_name)
    .fetch_optional(reading(conn))
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Playbook(id_or_name.to_owned())))?;
    playbook_from_row(&row)
}

crate::model::words::words! {
    /// Where a playbook run stands.
    pub enum RunStatus ("run status") {
        /// It is running.
        Running = "running",
        /// Every step did its work (or failed and was let go on).
        Succeeded = "succeeded",
        /// A step failed.
        Failed = "failed",
        /// A dry run found nothing wrong.
        Ok = "ok",
        /// A dry run found a step that would fail.
        WouldFail = "would_fail",
        /// Its server stopped before it ended.
        Abandoned = "abandoned",
    }
}

/// A playbook run record.
#[derive(Debug, Clone)]
pub struct PlaybookRun {
    /// Identifier.
    pub id: i64,
    /// The playbook (None once deleted).
    pub playbook_id: Option<i64>,
    /// Its name at the time.
    pub playbook: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Where it stands.
    pub status: RunStatus,
    /// The run's input variables.
    pub input: Value,
    /// Each step's result.
    pub steps: Value,
    /// Who started it.
    pub started_by: Option<String>,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: Option<String>,
}

const RUN_COLUMNS: &str = "r.id, r.playbook_id, r.playbook, r.dry_run, r.status, r.input, r.steps, u.email AS started_by, r.started_at, r.finished_at";
const RUN_FROM: &str = "playbook_runs r LEFT JOIN users u ON u.id = r.started_by";

fn run_from_row(row: &AnyRow) -> StoreResult<PlaybookRun> {
    Ok(PlaybookRun {
        id: row.try_get("id")?,
        playbook_id: row.try_get("playbook_id")?,
        playbook: row.try_get("playbook")?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
        status: super::word(row, "status", "playbook run")?,
        input: json_column(&row.try_get::<String, _>("input")?, "playbook run input")?,
        steps: json_column(&row.try_get::<String, _>("steps")?, "playbook run steps")?,
        started_by: row.try_get("started_by")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Starts a run record.
pub async fn insert_playbook_run(
    tx: &mut WriteTx,
    workspace_id: i64,
    playbook: &Playbook,
    dry_run: bool,
    input: &Value,
    started_by: i64,
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO playbook_runs (workspace_id, playbook_id, playbook, dry_run, status, input, steps, started_by, started_at)
         VALUES ($1, $2, $3, $4, 'running', $5, '[]', $6, $7) RETURNING id",
    )
    .bind(workspace_id)
    .bind(playbook.id)
    .bind(&playbook.name)
    .bind(i64::from(dry_run))
    .bind(input.to_string())
    .bind(started_by)
    .bind(now())
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Finishes a run record.
pub async fn finish_playbook_run(
    tx: &mut WriteTx,
    run_id: i64,
    status: RunStatus,
    steps: &Value,
) -> StoreResult<()> {
    sqlx::query("UPDATE playbook_runs SET status = $1, steps = $2, finished_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(steps.to_string())
        .bind(now())
        .bind(run_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

impl Store {
    /// Every playbook in the workspace, by name.
    pub async fn list_playbooks(&self, workspace_id: i64) -> StoreResult<Vec<Playbook>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAYBOOK_COLUMNS} FROM {PLAYBOOK_FROM} WHERE p.workspace_id = $1 ORDER BY p.name"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(playbook_from_row).collect()
    }

    /// One playbook by id or name.
    pub async fn playbook(&self, workspace_id: i64, id_or_name: &str) -> StoreResult<Playbook> {
        let mut conn = self.pool().acquire().await?;
        playbook_in(&mut conn, workspace_id, id_or_name).await
    }

    /// The workspace's playbook runs, newest first, optionally of one playbook.
    pub async fn list_playbook_runs(
        &self,
        workspace_id: i64,
        playbook_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<PlaybookRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM {RUN_FROM}
             WHERE r.workspace_id = $1 AND ($2 = -1 OR r.playbook_id = $2) ORDER BY r.id DESC LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(playbook_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// One run.
    pub async fn playbook_run(&self, workspace_id: i64, run_id: i64) -> StoreResult<PlaybookRun> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.workspace_id = $1 AND r.id = $2"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(super::Missing::PlaybookRun(run_id)))?;
        run_from_row(&row)
    }
}
