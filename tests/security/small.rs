//! Security tests: the smaller findings of issue 12 (item 12).

use crate::support::{TestDb, backends, spawn_app_with, test_config, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db.url);
        config.server.metrics_token = "scrape-secret-42".into();
        let app = spawn_app_with(config, Default::default()).await;
        let get = |auth: Option<&'static str>| {
            let mut req = app.http.get(format!("{}/metrics", app.url));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            async move { req.send().await.expect("GET").status().as_u16() }
        };
        assert_eq!(get(None).await, 401);
        assert_eq!(get(Some("Bearer wrong")).await, 401);
        assert_eq!(get(Some("Bearer scrape-secret-42")).await, 200);
        assert_eq!(get(Some("bearer scrape-secret-42")).await, 200);
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = spawn_app_with(test_config(&db.url), Default::default()).await;
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let resp = app
                .http
                .get(format!("{}/api/v1/requests", app.url))
                .header("authorization", format!("{scheme} {}", token("alice")))
                .send()
                .await
                .expect("GET");
            assert_eq!(resp.status().as_u16(), 200, "{scheme}");
        }
        app.shutdown().await;
    }
}
