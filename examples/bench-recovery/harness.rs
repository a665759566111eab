//! The parent side's tools: a scratch PostgreSQL database, replica processes it can
//! SIGKILL, and the few HTTP API calls the measurements make.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use sqlx::Connection;

use crate::replica::{REPLICA_CONFIG, token};

/// Where databases are created and dropped; every run gets a fresh one.
fn admin_url() -> String {
    std::env::var("DECKHAND_BENCH_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database, dropped (connections and all) by [`Db::drop_now`].
pub struct Db {
    pub url: String,
    name: String,
}

impl Db {
    pub async fn create() -> anyhow::Result<Self> {
        let admin = admin_url();
        let name = format!("deckhand_bench_{}", deckhand::domain::new_token(12).to_lowercase());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .with_context(|| format!("PostgreSQL at {admin} (set DECKHAND_BENCH_PG_ADMIN_URL)"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&admin_url()).await?;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
        Ok(())
    }
}

/// Writes the replicas' configuration file into `dir`.
pub fn write_config(dir: &Path, store_url: &str, concurrency: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("deckhand-{concurrency}.toml"));
    std::fs::write(&path, crate::replica::config_toml(store_url, concurrency))?;
    Ok(path)
}

/// A replica in a child process (this binary, re-executed).
pub struct Replica {
    child: Child,
    pub url: String,
    pub worker: String,
}

impl Replica {
    /// Starts a replica and waits for its `ready` line.
    pub fn start(config: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(REPLICA_CONFIG, config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("replica stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let (Some("ready"), Some(addr), Some(worker)) = (words.next(), words.next(), words.next()) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("replica did not start (said {line:?})");
        };
        Ok(Self {
            url: format!("http://{addr}"),
            worker: worker.to_owned(),
            child,
        })
    }

    /// SIGKILL: no shutdown, no lease release, exactly as a crash.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP API calls the bench makes, on any replica.
#[derive(Clone, Default)]
pub struct Api {
    http: reqwest::Client,
}

impl Api {
    pub async fn submit(&self, replica: &Replica, user: &str, text: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/api/v1/requests", replica.url))
            .bearer_auth(token(user))
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if status.as_u16() != 201 {
            bail!("submit {text:?}: {status} {v}");
        }
        v["request"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no request id in {v}"))
    }

    pub async fn approve(&self, replica: &Replica, user: &str, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/api/v1/requests/{id}/approve", replica.url))
            .bearer_auth(token(user))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("approve {id}: {} {}", resp.status(), resp.text().await?);
        }
        Ok(())
    }

    /// The request's API view: `request`, `events`, `approvals`.
    pub async fn get(&self, replica: &Replica, id: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}/api/v1/requests/{id}", replica.url))
            .bearer_auth(token(crate::replica::REQUESTER))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("get {id}: {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// Polls the request every `every` until `done` holds, or fails after `within`.
    pub async fn wait_until(
        &self,
        replica: &Replica,
        id: &str,
        within: Duration,
        every: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.get(replica, id).await?;
            if done(&v) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!("{what} did not happen within {within:?}: {v}");
            }
            tokio::time::sleep(every).await;
        }
    }
}
