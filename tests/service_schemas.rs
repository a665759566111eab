//! Service classes against the schemas the cluster serves: a template that misspells a field
//! of its custom resource is refused before anything is applied, with the class and the
//! field named, instead of the API server dropping the field (or refusing the second object
//! of a class after creating the first).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use cluster::{install_service_providers, outcome, start_on, state};
use support::backends;

/// A valid PostgreSQLInstance, then a Bucket whose template writes `publicAccesBlock` for
/// the schema's `publicAccessBlock` and leaves out the required `name`.
const MISSPELLED: &str = r#"
name: pg-typo
description: a database and a bucket, with a typo in the template
resources:
  - { apiVersion: database.example.org/v1alpha1, kind: PostgreSQLInstance, plural: postgresqlinstances }
  - { apiVersion: s3.services.k8s.aws/v1alpha1, kind: Bucket, plural: buckets }
template: |
  apiVersion: database.example.org/v1alpha1
  kind: PostgreSQLInstance
  metadata:
    name: {{ name }}
  spec:
    parameters:
      size: small
      storageGB: 50
    writeConnectionSecretToRef:
      name: {{ name }}-conn
  ---
  apiVersion: s3.services.k8s.aws/v1alpha1
  kind: Bucket
  metadata:
    name: {{ name }}
  spec:
    nmae: acme-{{ env }}-{{ name }}
    publicAccesBlock:
      blockPublicACLs: true
ready: { condition: Ready }
"#;

/// The same class spelled right.
fn spelled_right() -> String {
    MISSPELLED
        .replace("name: pg-typo", "name: pg-fixed")
        .replace("nmae", "name")
        .replace("publicAccesBlock", "publicAccessBlock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_that_misspells_a_field_is_refused_naming_the_class_and_field_and_creates_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pg-typo.yaml"), MISSPELLED).expect("write");
        std::fs::write(dir.path().join("pg-fixed.yaml"), spelled_right()).expect("write");
        let path = dir.path().to_owned();
        let env = start_on(backend, move |c| {
            c.services.dir = path;
            c.services.ready_deadline = "20s".parse().expect("duration");
        })
        .await;
        install_service_providers(&env.kube);
        assert_eq!(state(&env.run("alice", "env create typo").await), "succeeded");

        let refused = env.run("alice", "service provision pg-typo orders in typo").await;
        assert_eq!(state(&refused), "failed", "{refused:#}");
        let file = dir.path().join("pg-typo.yaml");
        assert_eq!(
            outcome(&refused),
            format!(
                "class pg-typo ({}): template renders a Bucket that does not fit the schema this cluster serves for Bucket (s3.services.k8s.aws/v1alpha1): spec.nmae: unknown field (did you mean name?); spec.publicAccesBlock: unknown field (did you mean publicAccessBlock?); spec.name: required field is missing; nothing was created; the platform team has to fix the class",
                file.display()
            )
        );
        // Nothing was created, not even the database that came first and fits its schema.
        assert!(env.kube.object("buckets", "typo", "orders").is_none());
        assert!(env.kube.object("postgresqlinstances", "typo", "orders").is_none());
        let requests = env.kube.requests();
        let writes: Vec<&(String, String)> = requests
            .iter()
            .filter(|(m, p)| m != "GET" && (p.contains("/buckets") || p.contains("/postgresqlinstances")))
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
        assert!(
            requests.iter().any(|(m, p)| m == "GET"
                && p == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/buckets.s3.services.k8s.aws"),
            "the schema came from the cluster's CRD: {requests:?}"
        );

        // Spelled right, the same objects pass and are applied.
        let made = env.run("alice", "service provision pg-fixed orders in typo").await;
        assert_eq!(state(&made), "succeeded", "{made:#}");
        assert_eq!(
            env.object("buckets", "typo", "orders")["spec"]["name"],
            "acme-typo-orders"
        );
        assert_eq!(
            env.object("postgresqlinstances", "typo", "orders")["spec"]["parameters"]["storageGB"],
            50
        );
        env.app.shutdown().await;
    }
}
