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
//! system:basic-user). Creating or updating a role or binding is checked for privilege
//! escalation as the RBAC registry does it (`escalate`/`bind`, or holding every granted rule).
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

    fn superuser(&self) -> bool {
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

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
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
fn role_rules(st: &State, role_ref: &Value, binding_ns: &str) -> Option<Vec<Value>> {
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
fn rules_for(st: &State, who: &Identity, namespace: Option<&str>) -> Vec<Value> {
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

fn url_matches(rule_url: &str, path: &str) -> bool {
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

// ---- privilege escalation ------------------------------------------------------------------

/// One grant: (group, resource, verb, resourceName) or (nonResourceURL, verb).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Atom {
    Resource {
        group: String,
        resource: String,
        name: Option<String>,
        verb: String,
    },
    Url {
        url: String,
        verb: String,
    },
}

fn atoms(rule: &Value) -> Vec<Atom> {
    let mut out = Vec::new();
    let names: Vec<Option<String>> = match strings(rule, "resourceNames") {
        n if n.is_empty() => vec![None],
        n => n.into_iter().map(|s| Some(s.to_owned())).collect(),
    };
    for verb in strings(rule, "verbs") {
        for group in strings(rule, "apiGroups") {
            for resource in strings(rule, "resources") {
                for name in &names {
                    out.push(Atom::Resource {
                        group: group.into(),
                        resource: resource.into(),
                        name: name.clone(),
                        verb: verb.into(),
                    });
                }
            }
        }
        for url in strings(rule, "nonResourceURLs") {
            out.push(Atom::Url {
                url: url.into(),
                verb: verb.into(),
            });
        }
    }
    out
}

/// rbac validation `ruleCovers` for one atomic grant.
fn covers(owner: &Value, atom: &Atom) -> bool {
    let has = |k: &str, v: &str| strings(owner, k).iter().any(|x| *x == "*" || *x == v);
    match atom {
        Atom::Url { url, verb } => {
            has("verbs", verb) && strings(owner, "nonResourceURLs").iter().any(|u| url_matches(u, url))
        }
        Atom::Resource {
            group,
            resource,
            name,
            verb,
        } => {
            let resources = strings(owner, "resources");
            let resource_ok = resources.iter().any(|r| *r == "*" || r == resource)
                || resource
                    .split_once('/')
                    .is_some_and(|(_, sub)| resources.contains(&format!("*/{sub}").as_str()));
            let names = strings(owner, "resourceNames");
            let name_ok = names.is_empty() || name.as_deref().is_some_and(|n| names.contains(&n));
            has("verbs", verb) && has("apiGroups", group) && resource_ok && name_ok
        }
    }
}

/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}`, as rbac/v1
/// CompactString prints a missing grant (verbs of the same target merged).
fn describe(missing: &[Atom]) -> String {
    let q = |v: &[&str]| format!("[{}]", v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" "));
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for atom in missing {
        let (target, verb) = match atom {
            Atom::Resource {
                group,
                resource,
                name,
                verb,
            } => {
                let mut t = format!("APIGroups:{}, Resources:{}", q(&[group]), q(&[resource]));
                if let Some(n) = name {
                    t.push_str(&format!(", ResourceNames:{}", q(&[n])));
                }
                (t, verb)
            }
            Atom::Url { url, verb } => (format!("NonResourceURLs:{}", q(&[url])), verb),
        };
        match merged.iter_mut().find(|(t, _)| *t == target) {
            Some((_, verbs)) => verbs.push(verb.clone()),
            None => merged.push((target, vec![verb.clone()])),
        }
    }
    let mut lines: Vec<String> = merged
        .into_iter()
        .map(|(t, verbs)| {
            let verbs: Vec<&str> = verbs.iter().map(String::as_str).collect();
            format!("{{{t}, Verbs:{}}}", q(&verbs))
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn escalation(rd: &resources::ResourceDef, name: &str, who: &Identity, why: &str) -> ApiError {
    let groups: Vec<String> = who.groups.iter().map(|g| format!("{g:?}")).collect();
    let why = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{why}",
        who.user,
        groups.join(" ")
    );
    ApiError::forbidden(rd, name, &why)
}

/// The RBAC registry's escalation check on a Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding about to be stored by the current caller (`st.caller`, set for the
/// duration of an API request): a role may only hold rules its author holds (or has
/// `escalate`), a binding may only grant a role its author holds entirely (or may `bind`).
pub fn check_escalation(st: &State, rd: &resources::ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let Some(who) = st.caller.as_ref() else {
        return Ok(());
    };
    if rd.group != RBAC || !st.rbac || who.superuser() {
        return Ok(());
    }
    let ns = util::str_at(obj, "metadata.namespace");
    let name = util::str_at(obj, "metadata.name");
    let scope = (!ns.is_empty()).then_some(ns);
    let granted: Vec<Value> = match rd.plural {
        "roles" | "clusterroles" => {
            let escalate = Attrs {
                verb: "escalate",
                group: RBAC,
                resource: rd.plural,
                sub: None,
                namespace: scope,
                name,
            };
            if allows(st, who, &escalate) {
                return Ok(());
            }
            obj.get("rules").and_then(Value::as_array).cloned().unwrap_or_default()
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = obj.get("roleRef").cloned().unwrap_or(Value::Null);
            let plural = match util::str_at(&role_ref, "kind") {
                "Role" => "roles",
                _ => "clusterroles",
            };
            let bind = Attrs {
                verb: "bind",
                group: RBAC,
                resource: plural,
                sub: None,
                namespace: scope,
                name: util::str_at(&role_ref, "name"),
            };
            if allows(st, who, &bind) {
                return Ok(());
            }
            match role_rules(st, &role_ref, ns) {
                Some(rules) => rules,
                None => {
                    let why = format!(
                        "{}.rbac.authorization.k8s.io {:?} not found",
                        util::str_at(&role_ref, "kind").to_ascii_lowercase(),
                        util::str_at(&role_ref, "name")
                    );
                    return Err(ApiError::forbidden(rd, name, &why));
                }
            }
        }
        _ => return Ok(()),
    };
    let held = rules_for(st, who, scope);
    let missing: Vec<Atom> = granted
        .iter()
        .flat_map(atoms)
        .filter(|atom| !held.iter().any(|r| covers(r, atom)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(escalation(rd, name, who, &describe(&missing)))
}

/// Takes the grant (`group`, `resource`, `verb`) out of a role's rules where a rule names it
/// exactly, splitting that rule so the rest of what it granted stays granted.
pub fn without_grant(rules: &[Value], group: &str, resource: &str, verb: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for rule in rules {
        let (groups, res, verbs) = (
            strings(rule, "apiGroups"),
            strings(rule, "resources"),
            strings(rule, "verbs"),
        );
        if !(groups.contains(&group) && res.contains(&resource) && verbs.contains(&verb)) {
            out.push(rule.clone());
            continue;
        }
        let minus =
            |v: &[&str], x: &str| -> Vec<String> { v.iter().filter(|s| **s != x).map(|s| s.to_string()).collect() };
        let mut part = |g: Vec<String>, r: Vec<String>, v: Vec<String>| {
            if !g.is_empty() && !r.is_empty() && !v.is_empty() {
                let mut p = rule.clone();
                p["apiGroups"] = json!(g);
                p["resources"] = json!(r);
                p["verbs"] = json!(v);
                out.push(p);
            }
        };
        let all = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        part(minus(&groups, group), all(&res), all(&verbs));
        part(vec![group.into()], minus(&res, resource), all(&verbs));
        part(vec![group.into()], vec![resource.into()], minus(&verbs, verb));
    }
    out
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
