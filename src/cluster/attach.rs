//! Attaching to a pod with a terminal for a browser shell (src/shell/): kube exec with tty
//! and stdin, no stderr (a terminal has one output stream), and the terminal-size channel
//! for resizes. Here because only src/cluster/ talks to Kubernetes.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::AttachParams, api::AttachedProcess};

use crate::cluster::{Cluster, ClusterError};
use crate::shell::Session;

/// How long connecting to the kubelet may take before the person is told.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("pod {pod} did not answer within {}s", ATTACH_TIMEOUT.as_secs())]
    TimedOut { pod: String },
}

pub async fn attach(cluster: &Cluster, session: &Session) -> Result<AttachedProcess, AttachError> {
    let client = cluster.client().await?;
    let mut ap = AttachParams::interactive_tty();
    if let Some(c) = &session.container {
        ap = ap.container(c.as_str());
    }
    let api = Api::<Pod>::namespaced(client, &session.env);
    // Not retried: a shell that started but lost its connection must not start twice.
    let start = api.exec(&session.pod, session.command.clone(), &ap);
    match tokio::time::timeout(ATTACH_TIMEOUT, start).await {
        Ok(r) => r.map_err(|e| ClusterError::from_kube(e, &format!("pod {} in {}", session.pod, session.env)).into()),
        Err(_) => Err(AttachError::TimedOut {
            pod: session.pod.clone(),
        }),
    }
}
