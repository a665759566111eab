//! `service list [ENV]`: the provisioned services, their state, endpoint and the apps bound
//! to them. Without an environment it asks every cluster (src/cluster/clusters.rs), since
//! an environment's services live in that environment's cluster; a cluster that does not
//! answer is named under the list rather than failing it, as `env list` does.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use serde_json::json;

use super::{
    Action, ActionContext, ActionError,
    env_clusters::every_cluster,
    service::{Classes, Found, cluster_of, find_in},
};
use crate::{
    cluster::{Cluster, ClusterError, clusters::silent_line},
    services::{BOUND_PREFIX, Catalog, Params},
};

/// (environment, service) -> the apps bound to it.
type Bound = BTreeMap<(String, String), Vec<String>>;

/// What the clusters asked hold, and (cluster, why) for those that did not answer.
#[derive(Default)]
struct Listing {
    found: Vec<Found>,
    bound: Bound,
    silent: Vec<(String, String)>,
}

pub(super) struct List(pub(super) Arc<Classes>);

#[async_trait]
impl Action for List {
    fn name(&self) -> &'static str {
        "service.list"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let catalog = self.0.get(&ctx.app)?;
        let env = ctx.request.args.name("env")?;
        let listing = match &env {
            Some(env) => {
                let cluster = cluster_of(&ctx.app, Some(env.as_str())).await?;
                let (found, bound) = in_cluster(&cluster, &catalog, Some(env.as_str())).await?;
                Listing {
                    found,
                    bound,
                    silent: Vec::new(),
                }
            }
            None => everywhere(ctx, &catalog).await?,
        };
        let where_ = env.as_ref().map(|e| format!(" in {e}")).unwrap_or_default();
        let silent: Vec<String> = listing.silent.iter().map(|(c, why)| silent_line(c, why)).collect();
        let partial = match silent.is_empty() {
            true => String::new(),
            false => format!(" (partial: {})", silent.join("; ")),
        };
        let (mut lines, rows) = render(&catalog, &listing);
        let count = rows.len();
        if lines.is_empty() {
            lines.push(format!(
                "No services{where_}. `service classes` shows what can be provisioned."
            ));
        }
        lines.extend(silent);
        let silent_names: Vec<&str> = listing.silent.iter().map(|(c, _)| c.as_str()).collect();
        let fields = match (count, silent_names.is_empty()) {
            (0, true) => crate::events::Output::default(),
            _ => crate::events::Output::fields(json!({ "services": rows, "silent_clusters": silent_names })),
        };
        ctx.output(lines.join("\n"), fields).await?;
        Ok(match count {
            0 => format!("no services{where_}{partial}"),
            _ => format!("{count} service(s){where_}{partial}"),
        })
    }
}

/// Every cluster's services (see `every_cluster`).
async fn everywhere(ctx: &ActionContext, catalog: &Catalog) -> Result<Listing, ActionError> {
    let asked = every_cluster(&ctx.app, |c| async move { in_cluster(&c, catalog, None).await }).await?;
    let mut listing = Listing {
        silent: asked.silent,
        ..Listing::default()
    };
    for (_, (found, bound)) in asked.items {
        listing.found.extend(found);
        listing.bound.extend(bound);
    }
    Ok(listing)
}

/// The services `cluster` holds in `ns` (everywhere with None) and the apps bound to them.
async fn in_cluster(
    cluster: &Cluster,
    catalog: &Catalog,
    ns: Option<&str>,
) -> Result<(Vec<Found>, Bound), ClusterError> {
    let found = find_in(cluster, catalog, ns, None).await?;
    if found.is_empty() {
        return Ok((found, Bound::new()));
    }
    let mut bound = Bound::new();
    for d in cluster.deployments(ns, "").await? {
        let (Some(app_name), Some(env)) = (d.metadata.name, d.metadata.namespace) else {
            continue;
        };
        for key in d.metadata.labels.unwrap_or_default().into_keys() {
            if let Some(service) = key.strip_prefix(BOUND_PREFIX) {
                bound
                    .entry((env.clone(), service.to_owned()))
                    .or_default()
                    .push(app_name.clone());
            }
        }
    }
    Ok((found, bound))
}

/// One line and one structured row per service.
fn render(catalog: &Catalog, listing: &Listing) -> (Vec<String>, Vec<serde_json::Value>) {
    let (mut lines, mut rows) = (Vec::new(), Vec::new());
    for f in &listing.found {
        let Some(class) = catalog.get(&f.class) else { continue };
        let meta = &f.object["metadata"];
        let (name, ns) = (
            meta["name"].as_str().unwrap_or_default(),
            meta["namespace"].as_str().unwrap_or_default(),
        );
        let state = if f.ready(class) { "ready" } else { "not ready" };
        let sizes = Params::from_map(&class.params, &f.params)
            .map(|p| p.sizes(&class.params))
            .unwrap_or_default();
        let endpoint = class.endpoint(&catalog.renderer, &f.object).unwrap_or_default();
        let apps = listing
            .bound
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default();
        let apps_text = match apps.is_empty() {
            true => String::new(),
            false => format!("bound to {}", apps.join(", ")),
        };
        lines.push(
            format!("{name}  {}  {ns}  {state}  {sizes}  {endpoint}  {apps_text}", f.class)
                .trim_end()
                .to_owned(),
        );
        rows.push(json!({ "name": name, "class": f.class, "env": ns, "ready": f.ready(class), "params": f.params, "endpoint": endpoint, "bound": apps }));
    }
    (lines, rows)
}
