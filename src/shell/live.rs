//! The sessions this process is relaying, so a shutdown can end them on record (the client is
//! told, the row gets its end) instead of leaving rows that started and never ended.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a shutdown waits for live sessions to write their end.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub struct LiveSessions {
    stop: CancellationToken,
    count: watch::Sender<usize>,
}

impl Default for LiveSessions {
    fn default() -> Self {
        Self {
            stop: CancellationToken::new(),
            count: watch::Sender::new(0),
        }
    }
}

/// Held by a running session; dropping it (however the session ends) counts it out.
pub struct LiveGuard {
    count: watch::Sender<usize>,
    pub stop: CancellationToken,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl LiveSessions {
    pub fn enter(&self) -> LiveGuard {
        self.count.send_modify(|n| *n += 1);
        LiveGuard {
            count: self.count.clone(),
            stop: self.stop.clone(),
        }
    }

    pub fn len(&self) -> usize {
        *self.count.borrow()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every live session and waits (a few seconds at most) until each has recorded it.
    pub async fn close(&self) {
        self.stop.cancel();
        let mut rx = self.count.subscribe();
        if tokio::time::timeout(CLOSE_WAIT, rx.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                live = self.len(),
                "shell sessions did not record their end before shutdown"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_stops_sessions_and_waits_for_them() {
        let live = LiveSessions::default();
        let guard = live.enter();
        assert_eq!(live.len(), 1);
        let stop = guard.stop.clone();
        let session = tokio::spawn(async move {
            stop.cancelled().await;
            drop(guard);
        });
        live.close().await;
        assert!(live.is_empty());
        session.await.unwrap();
    }
}
