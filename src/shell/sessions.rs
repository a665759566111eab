//! The `shell_sessions` table: one row per shell link, the token kept only as its hash, and
//! the session's audit (who, pod, start, end, exit, lines typed when recorded).

use sqlx::{AnyPool, Row, any::AnyRow};

use super::ShellError;
use crate::domain::{HumanDuration, new_token, now_ms};

/// What `pod.shell` stores when it hands out a link.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub request_id: String,
    pub requester: String,
    pub env: String,
    pub app: String,
    pub pod: String,
    pub container: Option<String>,
    pub command: Vec<String>,
    pub record: bool,
    /// How long the link works, from the moment the session is stored (negative: already
    /// expired). One clock reading gives both ends, so the stored lifetime is exact.
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub request_id: String,
    pub requester: String,
    pub env: String,
    pub app: String,
    pub pod: String,
    pub container: Option<String>,
    pub command: Vec<String>,
    pub record: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub started_at: Option<i64>,
    /// `browser` or `cli`: what opened the session.
    pub client: Option<String>,
    pub ended_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub end_reason: Option<String>,
    pub input_lines: Vec<String>,
}

/// Whether a link can still start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Expired,
    Used,
}

impl Session {
    pub fn state_at(&self, now: i64) -> LinkState {
        if self.started_at.is_some() {
            LinkState::Used
        } else if self.expires_at <= now {
            LinkState::Expired
        } else {
            LinkState::Open
        }
    }
}

/// How a session ended, as stored and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The shell exited with this code.
    Exited(i32),
    /// The person closed the page or the CLI before the shell exited.
    Disconnected,
    /// Nothing was typed for this long (`kubernetes.shell_idle_timeout`).
    Idle(HumanDuration),
    /// The connection to the pod broke or the process could not run: what was said.
    Failed(String),
}

impl Ending {
    fn code(&self) -> Option<i64> {
        match self {
            Ending::Exited(c) => Some(i64::from(*c)),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Ending::Exited(c) => format!("exited with {c}"),
            Ending::Disconnected => "disconnected by the client".into(),
            Ending::Idle(d) => format!("ended after {d} without input"),
            Ending::Failed(why) => format!("failed: {why}"),
        }
    }
}

const COLUMNS: &str = "id, request_id, requester, env, app, pod, container, command, record, created_at, expires_at, \
     started_at, client, ended_at, exit_code, end_reason, input_lines";

fn session_from_row(row: &AnyRow) -> Result<Session, ShellError> {
    let get = |e: sqlx::Error| ShellError::Corrupt(e.to_string());
    let command: String = row.try_get("command").map_err(get)?;
    let lines: Option<String> = row.try_get("input_lines").map_err(get)?;
    Ok(Session {
        id: row.try_get("id").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        requester: row.try_get("requester").map_err(get)?,
        env: row.try_get("env").map_err(get)?,
        app: row.try_get("app").map_err(get)?,
        pod: row.try_get("pod").map_err(get)?,
        container: row.try_get("container").map_err(get)?,
        command: serde_json::from_str(&command).map_err(|e| ShellError::Corrupt(format!("command: {e}")))?,
        record: row.try_get::<i64, _>("record").map_err(get)? != 0,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        started_at: row.try_get("started_at").map_err(get)?,
        client: row.try_get("client").map_err(get)?,
        ended_at: row.try_get("ended_at").map_err(get)?,
        exit_code: row.try_get("exit_code").map_err(get)?,
        end_reason: row.try_get("end_reason").map_err(get)?,
        input_lines: match lines {
            Some(l) => serde_json::from_str(&l).map_err(|e| ShellError::Corrupt(format!("input_lines: {e}")))?,
            None => Vec::new(),
        },
    })
}

/// The sessions, over the store's pool (SQLite or PostgreSQL, portable SQL).
#[derive(Clone)]
pub struct Sessions {
    pool: AnyPool,
}

impl Sessions {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn insert(&self, new: &NewSession) -> Result<Session, ShellError> {
        let id = format!("sh-{}", new_token(10));
        let now = now_ms();
        let command = serde_json::to_string(&new.command).map_err(|e| ShellError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO shell_sessions (id, token_hash, request_id, requester, env, app, pod, container, command, record, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(&new.token_hash)
        .bind(&new.request_id)
        .bind(&new.requester)
        .bind(&new.env)
        .bind(&new.app)
        .bind(&new.pod)
        .bind(new.container.as_deref())
        .bind(command)
        .bind(i64::from(new.record))
        .bind(now)
        .bind(now.saturating_add(new.ttl_ms))
        .execute(&self.pool)
        .await?;
        self.get(&id)
            .await?
            .ok_or_else(|| ShellError::Corrupt("session vanished after insert".into()))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Session>, ShellError> {
        self.one_where("id", id).await
    }

    pub async fn by_hash(&self, token_hash: &str) -> Result<Option<Session>, ShellError> {
        self.one_where("token_hash", token_hash).await
    }

    /// The session whose unique `column` (a name from this file, never input) is `value`.
    async fn one_where(&self, column: &'static str, value: &str) -> Result<Option<Session>, ShellError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM shell_sessions WHERE {column} = $1"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The hash of the browser secret the link is bound to, once a browser opened it.
    pub async fn browser_hash(&self, id: &str) -> Result<Option<String>, ShellError> {
        let hash: Option<Option<String>> = sqlx::query_scalar("SELECT browser_hash FROM shell_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(hash.flatten())
    }

    /// Binds the link to a browser; false when another browser was first.
    pub async fn bind_browser(&self, id: &str, hash: &str) -> Result<bool, ShellError> {
        let n = sqlx::query("UPDATE shell_sessions SET browser_hash = $2 WHERE id = $1 AND browser_hash IS NULL")
            .bind(id)
            .bind(hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// The sessions a request handed out, oldest first.
    pub async fn of_request(&self, request_id: &str) -> Result<Vec<Session>, ShellError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM shell_sessions WHERE request_id = $1 ORDER BY created_at, id"
        )))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Starts the session if the link is unused and unexpired: one compare-and-set, so two
    /// tabs (or a tab and a CLI) racing for the same link get one shell between them. The
    /// audit row goes in the same transaction.
    pub async fn claim(&self, session: &Session, client: &str) -> Result<bool, ShellError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE shell_sessions SET started_at = $2, client = $3 \
             WHERE id = $1 AND started_at IS NULL AND expires_at > $2",
        )
        .bind(&session.id)
        .bind(now)
        .bind(client)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        let detail = format!(
            "{} started a shell in pod {}{} of {} in {} from the {client}",
            session.requester,
            session.pod,
            session
                .container
                .as_deref()
                .map(|c| format!(" (container {c})"))
                .unwrap_or_default(),
            session.app,
            session.env,
        );
        audit(&mut tx, session, "shell.start", &detail, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives the link back when the pod could not be reached, so it can be tried again
    /// until it expires; the attempt stays in the audit log.
    pub async fn release(&self, session: &Session, why: &str) -> Result<(), ShellError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE shell_sessions SET started_at = NULL, client = NULL WHERE id = $1 AND ended_at IS NULL")
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, session, "shell.attach_failed", why, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Keeps the lines typed so far (recording tiers); written line by line, so a crash of
    /// deckhand loses at most the line being typed.
    pub async fn record_lines(&self, id: &str, lines: &[String]) -> Result<(), ShellError> {
        let json = serde_json::to_string(lines).map_err(|e| ShellError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE shell_sessions SET input_lines = $2 WHERE id = $1")
            .bind(id)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a started session, once, with its audit row.
    pub async fn finish(&self, session: &Session, ending: &Ending) -> Result<(), ShellError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE shell_sessions SET ended_at = $2, exit_code = $3, end_reason = $4 \
             WHERE id = $1 AND started_at IS NOT NULL AND ended_at IS NULL",
        )
        .bind(&session.id)
        .bind(now)
        .bind(ending.code())
        .bind(ending.describe())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            let detail = format!("shell in pod {} {}", session.pod, ending.describe());
            audit(&mut tx, session, "shell.end", &detail, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// An audit row like the store's own (actor, surface, request), so `request <id>` readers
/// and audit exports see sessions next to the request's state changes.
async fn audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    session: &Session,
    action: &str,
    detail: &str,
    now: i64,
) -> Result<(), ShellError> {
    sqlx::query(
        "INSERT INTO audit (id, at, actor, surface, request_id, action, from_state, to_state, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7)",
    )
    .bind(crate::domain::ordered_token(8))
    .bind(now)
    .bind(&session.requester)
    .bind("shell")
    .bind(&session.request_id)
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
