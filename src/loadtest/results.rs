//! The `loadtests` table: each run's merged report, so the next run of the same target in
//! the same environment can say what changed.

use sqlx::{AnyPool, Row};

use crate::{
    domain::now_ms,
    loadgen::{Report, Verdict},
    store::StoreError,
};

#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub request_id: &'a str,
    pub env: &'a str,
    pub target: &'a str,
    pub url: &'a str,
    pub requester: &'a str,
    pub workers: u32,
    pub report: &'a Report,
    pub verdict: &'a Verdict,
}

/// An earlier run of a target.
#[derive(Debug, Clone)]
pub struct PastRun {
    pub request_id: String,
    pub created_at: i64,
    pub report: Report,
}

#[derive(Clone)]
pub struct Results {
    pool: AnyPool,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("loadtests: {e}"))
}

impl Results {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn insert(&self, run: &NewRun<'_>) -> Result<(), StoreError> {
        let report = serde_json::to_string(run.report).map_err(corrupt)?;
        let verdict = serde_json::to_string(run.verdict).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO loadtests (request_id, env, target, url, requester, workers, created_at, passed, report, verdict) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(run.request_id)
        .bind(run.env)
        .bind(run.target)
        .bind(run.url)
        .bind(run.requester)
        .bind(i64::from(run.workers))
        .bind(now_ms())
        .bind(i64::from(run.verdict.passed))
        .bind(report)
        .bind(verdict)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest run of `target` in `env` other than `request_id`.
    pub async fn previous(&self, env: &str, target: &str, request_id: &str) -> Result<Option<PastRun>, StoreError> {
        let row = sqlx::query(
            "SELECT request_id, created_at, report FROM loadtests \
             WHERE env = $1 AND target = $2 AND request_id <> $3 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(env)
        .bind(target)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let report: String = row.try_get("report")?;
        Ok(Some(PastRun {
            request_id: row.try_get("request_id")?,
            created_at: row.try_get("created_at")?,
            report: serde_json::from_str(&report).map_err(corrupt)?,
        }))
    }

    /// How many runs of `target` in `env` are stored.
    pub async fn count(&self, env: &str, target: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM loadtests WHERE env = $1 AND target = $2")
            .bind(env)
            .bind(target)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
