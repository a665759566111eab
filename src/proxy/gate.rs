//! What the proxy path keeps in memory, so a request through a link costs no database round
//! trip: links by token digest for a second, and hits counted here and written in batches.
//!
//! A link closed on this replica is dropped from the cache at once; one closed on another
//! replica is refused here within `CACHE_FOR` (sooner when it has connections here: see
//! `live`). Expiry is checked against the cached expiry
//! on every request, so it is exact. Lookups are keyed by the token's digest, so a cached
//! valid token and an uncached guess differ only in whether the digest is found, which says
//! nothing about how close a guess was.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Link, Links, ProxyError, live::Connections};

/// How long a looked-up link is trusted before it is read again.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// Beyond this many cached links, expired entries are dropped before adding one.
const CACHE_MAX: usize = 10_000;
/// How many of a link's latest requests are kept for `proxy list`.
pub const RECENT_KEPT: usize = 20;

/// One request through a link, as `proxy list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub at: i64,
    pub method: String,
    /// What followed the token: the path only, never the query (it may hold secrets).
    pub path: String,
    pub status: u16,
    pub millis: i64,
}

/// A link's requests not yet written: how many, and the latest few.
#[derive(Default)]
struct Pending {
    count: i64,
    recent: Vec<Recent>,
}

#[derive(Default)]
pub struct Gate {
    links: Mutex<HashMap<String, (Instant, Link)>>,
    hits: Mutex<HashMap<String, Pending>>,
    connections: Connections,
}

impl Gate {
    /// The link whose token has this digest, from the cache or the store.
    pub async fn link(&self, links: &Links, token_hash: &str) -> Result<Option<Link>, ProxyError> {
        if let Some((at, link)) = lock(&self.links).get(token_hash)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(Some(link.clone()));
        }
        let found = links.by_hash(token_hash).await?;
        if let Some(link) = &found {
            let mut cache = lock(&self.links);
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            }
            cache.insert(token_hash.to_owned(), (Instant::now(), link.clone()));
        }
        Ok(found)
    }

    /// Drops a link from the cache (it was just closed here).
    pub fn forget(&self, link_id: &str) {
        lock(&self.links).retain(|_, (_, l)| l.id != link_id);
    }

    /// Refuses a link from now on and cuts its connections open on this replica.
    pub fn close(&self, link_id: &str) {
        self.forget(link_id);
        self.connections.cut(link_id);
    }

    /// The connections open through links on this replica.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Counts one proxied request; written by the next `flush`.
    pub fn hit(&self, link_id: &str, request: Recent) {
        let mut hits = lock(&self.hits);
        let pending = hits.entry(link_id.to_owned()).or_default();
        pending.count += 1;
        if pending.recent.len() == RECENT_KEPT {
            pending.recent.remove(0);
        }
        pending.recent.push(request);
    }

    /// Writes the counted hits. What fails to write is put back for the next try.
    pub async fn flush(&self, links: &Links) -> Result<(), ProxyError> {
        let pending: Vec<(String, Pending)> = lock(&self.hits).drain().collect();
        let mut result = Ok(());
        for (id, p) in pending {
            if let Err(e) = links.add_hits(&id, p.count, &p.recent).await {
                let mut hits = lock(&self.hits);
                let back = hits.entry(id).or_default();
                back.count += p.count;
                let mut recent = p.recent;
                recent.append(&mut back.recent);
                let skip = recent.len().saturating_sub(RECENT_KEPT);
                back.recent = recent.split_off(skip);
                result = Err(e);
            }
        }
        result
    }
}

/// The maps hold plain data; a panic elsewhere must not wedge the proxy.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
