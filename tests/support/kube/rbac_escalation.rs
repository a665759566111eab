//! RBAC's escalation check, as the registry of roles and bindings runs it before storing one:
//! a Role or ClusterRole may hold only rules its author holds (or has `escalate` on it), a
//! binding may grant only a role its author holds entirely (or may `bind`). A refusal lists
//! the missing grants as the real message does. Kept apart from the authorizer (rbac.rs),
//! which answers single requests.

use serde_json::{Value, json};

use super::rbac::{Attrs, Identity, allows, role_rules, rules_for, strings, url_matches};
use super::resources::{self, RBAC};
use super::status::ApiError;
use super::store::State;
use super::util;

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
pub fn check(st: &State, rd: &resources::ResourceDef, obj: &Value) -> Result<(), ApiError> {
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
