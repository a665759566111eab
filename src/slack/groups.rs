//! Slack user groups as deckhand sees them: `slack-group:S…` identities for the groups a
//! person is in, from usergroups.list, cached for [`GROUPS_TTL`] and refreshed in the
//! background, so a command never waits for Slack's list (but for the first load).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::web::WebApi;

/// How long the Slack user group membership list is trusted.
const GROUPS_TTL: Duration = Duration::from_secs(300);

/// Slack user group ids and their members.
type UserGroups = Vec<(String, Vec<String>)>;

/// Slack user groups and their members (usergroups.list), refreshed in the background: a
/// command never waits for Slack's list except, at most [`FIRST_LOAD_WAIT`], for the very
/// first load after a start.
#[derive(Default)]
pub(super) struct GroupCache {
    list: std::sync::RwLock<Option<(Instant, UserGroups)>>,
    refreshing: std::sync::atomic::AtomicBool,
    loaded: tokio::sync::Notify,
}

/// How long the first command after a start waits for the first user group list.
const FIRST_LOAD_WAIT: Duration = Duration::from_millis(1000);

impl GroupCache {
    fn snapshot(&self) -> Option<(Instant, UserGroups)> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts a refresh unless one is under way.
    fn refresh(self: &Arc<Self>, web: &WebApi) {
        use std::sync::atomic::Ordering;
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (cache, web) = (self.clone(), web.clone());
        tokio::spawn(async move {
            match web
                .call_form("usergroups.list", &[("include_users", "true".into())])
                .await
            {
                Ok(v) => {
                    let groups = parse_usergroups(&v);
                    *cache.list.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), groups));
                }
                Err(e) => tracing::warn!(error = %e, "could not read Slack user groups; using direct identities only"),
            }
            cache.refreshing.store(false, Ordering::Release);
            cache.loaded.notify_waiters();
        });
    }

    /// `slack-group:S…` for every user group the person is in, from the cached list; a stale
    /// list is used while a fresh one loads in the background.
    pub(super) async fn of(self: &Arc<Self>, web: &WebApi, user_id: &str) -> Vec<String> {
        let mut cached = self.snapshot();
        if cached.is_none() {
            let loaded = self.loaded.notified();
            self.refresh(web);
            let _ = tokio::time::timeout(FIRST_LOAD_WAIT, loaded).await;
            cached = self.snapshot();
        } else if cached.as_ref().is_some_and(|(at, _)| at.elapsed() >= GROUPS_TTL) {
            self.refresh(web);
        }
        cached
            .map(|(_, gs)| {
                gs.iter()
                    .filter(|(_, users)| users.iter().any(|u| u == user_id))
                    .map(|(id, _)| format!("slack-group:{id}"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_usergroups(v: &serde_json::Value) -> UserGroups {
    v["usergroups"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .filter_map(|g| {
                    let id = g["id"].as_str()?.to_owned();
                    let users = g["users"]
                        .as_array()?
                        .iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect();
                    Some((id, users))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::slack::SlackConfig;

    /// A command never waits for Slack's user group list once one is cached: a stale list
    /// answers at once while the fresh one loads in the background.
    #[tokio::test]
    async fn a_stale_group_list_answers_at_once_while_a_fresh_one_loads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        // A Slack whose usergroups.list takes 2 s.
        let slow = axum::Router::new().route(
            "/api/{method}",
            axum::routing::post(move || {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    axum::Json(serde_json::json!({ "ok": true, "usergroups": [{ "id": "SNEW", "users": ["U1"] }] }))
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, slow).await });
        let config = SlackConfig {
            api_url: format!("http://{addr}/api"),
            bot_token: "xoxb-test".into(),
            ..SlackConfig::default()
        };
        let web = WebApi::new(&config);
        let cache = Arc::new(GroupCache::default());
        let stale = Instant::now()
            .checked_sub(GROUPS_TTL + Duration::from_secs(1))
            .expect("the clock is past the TTL");
        *cache.list.write().unwrap() = Some((stale, vec![("SOLD".into(), vec!["U1".into()])]));

        let asked = Instant::now();
        assert_eq!(cache.of(&web, "U1").await, ["slack-group:SOLD"]);
        assert!(
            asked.elapsed() < Duration::from_millis(200),
            "waited {:?}",
            asked.elapsed()
        );

        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.of(&web, "U1").await != ["slack-group:SNEW"] {
            assert!(Instant::now() < deadline, "the fresh list never landed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh at a time");
    }
}
