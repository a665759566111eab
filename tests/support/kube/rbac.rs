//! RBAC as the API server's authorizer evaluates it, from the ClusterRoles, Roles,
//! ClusterRoleBindings and RoleBindings the fake holds (created through the API like any
//! object): who the caller is (an `Identity` the authentication layer in tls.rs attached),
//! which bindings name it (User, Group, ServiceAccount subjects), and whether a rule of their
//! roles matches the request's attributes (apiGroups, resources with subresources and `*`,
//! verbs, resourceNames, nonResourceURLs). A RoleBinding to a ClusterRole grants it only in
//! the binding's namespace.
//!
//! Beyond the stored objects only what every real cluster's bootstrap policy has is built in:
//! `system:masters` may do anything (the tests' own admin client is in it), and every
//! authenticated user may read discovery and ask SelfSubjectAccessReviews (system:discovery,
//! system:basic-user). Creating or updating a role or binding is also checked for privilege
//! escalation (rbac_escalation.rs).
//!
//! RBAC is enforced once a test asks for it (`authorize_with`, or users on the builder);
//! until then the fake authorizes every request, as most tests want.

use serde_json::{Value, json};

use super::resources::{self, RBAC};
use super::status::{ApiError, BOT_USER};
use super::store::State;
use super::util;

pub const AUTHENTICATED: &str = "system:authenticated";
const MASTERS: &str = "system:masters";

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// Including "system:authenticated".
    pub groups: Vec<String>,
}

impl Identity {
    /// `user` in `groups`, plus "system:authenticated" as every authenticated request has.
    pub fn new(user: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        Identity {
            user: user.to_owned(),
            groups,
        }
    }

    /// deckhand's service account, as a token of the service account authenticates.
    pub fn deckhand() -> Self {
        Identity::new(BOT_USER, &["system:serviceaccounts", "system:serviceaccounts:deckhand"])
    }

    /// The tests' own client: a cluster admin.
    pub fn admin() -> Self {
        Identity::new("kubernetes-admin", &[MASTERS])
    }

    pub(super) fn superuser(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// Who sent a request that passed authentication (tls.rs attaches the identity); without
    /// one, the admin token still means the admin and anyone else is deckhand.
    pub fn of(found: Option<&Identity>, headers: &axum::http::HeaderMap) -> Self {
        if let Some(who) = found {
            return who.clone();
        }
        if super::store::is_admin(headers) {
            Identity::admin()
        } else {
            Identity::deckhand()
        }
    }
}

/// The attributes the authorizer decides a resource request on.
#[derive(Clone, Copy, Debug)]
pub struct Attrs<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// The plural, without the subresource.
    pub resource: &'a str,
    pub sub: Option<&'a str>,
    /// None: cluster-scoped, or a namespaced resource across all namespaces.
    pub namespace: Option<&'a str>,
    /// "" for list, watch, create and deletecollection.
    pub name: &'a str,
}

/// Rules every authenticated user has in any cluster (bootstrap policy).
fn bootstrap_rules() -> Vec<Value> {
    vec![
        json!({"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz",
            "/version", "/version/", "/openapi", "/openapi/*"], "verbs": ["get"]}),
        json!({"apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}),
    ]
}

pub(super) fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// rbac/v1 `appliesToUser`: a ServiceAccount subject without a namespace takes the binding's.
fn subject_matches(subject: &Value, who: &Identity, binding_ns: &str) -> bool {
    let name = util::str_at(subject, "name");
    match util::str_at(subject, "kind") {
        "User" => who.user == name,
        "Group" => who.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = match util::str_at(subject, "namespace") {
                "" => binding_ns,
                ns => ns,
            };
            who.user == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn binds(binding: &Value, who: &Identity) -> bool {
    let ns = util::str_at(binding, "metadata.namespace");
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subjects| subjects.iter().any(|s| subject_matches(s, who, ns)))
}

/// The rules of the role a binding refers to (a RoleBinding's Role lives in its namespace).
pub(super) fn role_rules(st: &State, role_ref: &Value, binding_ns: &str) -> Option<Vec<Value>> {
    let (plural, ns) = match util::str_at(role_ref, "kind") {
        "ClusterRole" => ("clusterroles", ""),
        "Role" => ("roles", binding_ns),
        _ => return None,
    };
    let rd = resources::by_plural(RBAC, plural)?;
    let role = st.get(rd, ns, util::str_at(role_ref, "name"))?;
    Some(role.get("rules").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// Every rule `who` holds in `namespace` (None: the cluster-wide ones only).
pub(super) fn rules_for(st: &State, who: &Identity, namespace: Option<&str>) -> Vec<Value> {
    let mut rules = bootstrap_rules();
    if let Some(rd) = resources::by_plural(RBAC, "clusterrolebindings") {
        for b in st.list(rd, None).iter().filter(|b| binds(b, who)) {
            rules.extend(role_rules(st, b.get("roleRef").unwrap_or(&Value::Null), "").unwrap_or_default());
        }
    }
    if let (Some(ns), Some(rd)) = (namespace, resources::by_plural(RBAC, "rolebindings")) {
        for b in st.list(rd, Some(ns)).iter().filter(|b| binds(b, who)) {
            rules.extend(role_rules(st, b.get("roleRef").unwrap_or(&Value::Null), ns).unwrap_or_default());
        }
    }
    rules
}

/// rbac/v1 ResourceMatches: `*`, the exact `resource/sub`, or `*/sub`.
fn resource_matches(rule_resource: &str, a: &Attrs) -> bool {
    match a.sub {
        _ if rule_resource == "*" => true,
        None => rule_resource == a.resource,
        Some(sub) => rule_resource == format!("{}/{sub}", a.resource) || rule_resource == format!("*/{sub}"),
    }
}

fn rule_allows(rule: &Value, a: &Attrs) -> bool {
    let any = |k: &str, want: &str| strings(rule, k).iter().any(|v| *v == "*" || *v == want);
    let names = strings(rule, "resourceNames");
    any("verbs", a.verb)
        && any("apiGroups", a.group)
        && strings(rule, "resources").iter().any(|r| resource_matches(r, a))
        && (names.is_empty() || names.contains(&a.name))
}

pub(super) fn url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Whether `who` may make the resource request `a`.
pub fn allows(st: &State, who: &Identity, a: &Attrs) -> bool {
    who.superuser() || rules_for(st, who, a.namespace).iter().any(|r| rule_allows(r, a))
}

/// Whether `who` may `verb` the non-resource URL `path` (/version, /healthz, ...).
pub fn allows_path(st: &State, who: &Identity, verb: &str, path: &str) -> bool {
    who.superuser()
        || rules_for(st, who, None).iter().any(|r| {
            strings(r, "verbs").iter().any(|v| *v == "*" || *v == verb)
                && strings(r, "nonResourceURLs").iter().any(|u| url_matches(u, path))
        })
}

/// The authorizer's 403 for a non-resource URL.
pub fn path_forbidden(who: &Identity, verb: &str, path: &str) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", who.user),
    )
}

/// Where `kubectl auth can-i` asks.
pub const SELF_SUBJECT_ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// The answer to a SelfSubjectAccessReview: the review with `status.allowed` as the
/// authorizer would decide the attributes for the caller (a denial without a reason, as
/// RBAC gives none).
pub fn self_subject_access_review(st: &State, who: &Identity, review: &Value) -> Result<Value, ApiError> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let allowed = if let Some(ra) = spec.get("resourceAttributes") {
        let s = |k: &str| util::str_at(ra, k);
        let attrs = Attrs {
            verb: s("verb"),
            group: s("group"),
            resource: s("resource"),
            sub: (!s("subresource").is_empty()).then(|| s("subresource")),
            namespace: (!s("namespace").is_empty()).then(|| s("namespace")),
            name: s("name"),
        };
        !st.denies(who, &attrs)
    } else if let Some(nra) = spec.get("nonResourceAttributes") {
        !st.rbac || allows_path(st, who, util::str_at(nra, "verb"), util::str_at(nra, "path"))
    } else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    Ok(json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": {"allowed": allowed},
    }))
}
