//! NetworkPolicy validation as the real API server does it (networking/validation): field
//! names of the schema only, label selectors, peers (one of podSelector/namespaceSelector, or
//! ipBlock alone), ports (TCP/UDP/SCTP, 1-65535 or a port name, endPort), CIDRs and
//! policyTypes. A policy the real server would refuse is refused here with the same paths.

use std::net::IpAddr;

use serde_json::Value;

use super::status::FieldError;

const SPEC: &[&str] = &["podSelector", "ingress", "egress", "policyTypes"];
const INGRESS: &[&str] = &["from", "ports"];
const EGRESS: &[&str] = &["to", "ports"];
const PEER: &[&str] = &["podSelector", "namespaceSelector", "ipBlock"];
const PORT: &[&str] = &["protocol", "port", "endPort"];
const IP_BLOCK: &[&str] = &["cidr", "except"];
const SELECTOR: &[&str] = &["matchLabels", "matchExpressions"];
const EXPRESSION: &[&str] = &["key", "operator", "values"];

fn known(obj: &Value, at: &str, fields: &[&str], errs: &mut Vec<FieldError>) {
    for key in obj.as_object().into_iter().flat_map(|m| m.keys()) {
        if !fields.contains(&key.as_str()) {
            errs.push(FieldError::invalid(
                format!("{at}.{key}"),
                key,
                "field not declared in schema",
            ));
        }
    }
}

fn items(v: &Value, key: &str) -> Vec<Value> {
    v.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

pub fn validate(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    known(&spec, "spec", SPEC, errs);
    selector(spec.get("podSelector"), "spec.podSelector", errs);
    for (dir, peers, fields) in [("ingress", "from", INGRESS), ("egress", "to", EGRESS)] {
        for (i, rule) in items(&spec, dir).iter().enumerate() {
            let at = format!("spec.{dir}[{i}]");
            known(rule, &at, fields, errs);
            for (j, p) in items(rule, "ports").iter().enumerate() {
                port(p, &format!("{at}.ports[{j}]"), errs);
            }
            for (j, p) in items(rule, peers).iter().enumerate() {
                peer(p, &format!("{at}.{peers}[{j}]"), errs);
            }
        }
    }
    let types = items(&spec, "policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            format!("{types:?}"),
            "may not specify more than two policyTypes",
        ));
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or_default();
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                format!("spec.policyTypes[{i}]"),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
}

fn selector(sel: Option<&Value>, at: &str, errs: &mut Vec<FieldError>) {
    let Some(sel) = sel else { return };
    known(sel, at, SELECTOR, errs);
    for (i, e) in items(sel, "matchExpressions").iter().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        known(e, &at, EXPRESSION, errs);
        if e.get("key").and_then(Value::as_str).is_none_or(str::is_empty) {
            errs.push(FieldError::required(format!("{at}.key"), ""));
        }
        let values = items(e, "values");
        match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
    }
}

fn peer(p: &Value, at: &str, errs: &mut Vec<FieldError>) {
    known(p, at, PEER, errs);
    selector(p.get("podSelector"), &format!("{at}.podSelector"), errs);
    selector(p.get("namespaceSelector"), &format!("{at}.namespaceSelector"), errs);
    let count = PEER.iter().filter(|k| p.get(**k).is_some()).count();
    if count == 0 {
        errs.push(FieldError::required(at, "must specify a peer"));
    } else if count > 1 && p.get("ipBlock").is_some() {
        errs.push(FieldError::forbidden(
            at,
            "may not specify both ipBlock and another peer",
        ));
    }
    if let Some(block) = p.get("ipBlock") {
        ip_block(block, &format!("{at}.ipBlock"), errs);
    }
}

fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn contains((net, bits): (IpAddr, u8), (ip, sub): (IpAddr, u8)) -> bool {
    let mask = |b: u8, w: u32| if b == 0 { 0u128 } else { u128::MAX << (w - u32::from(b)) };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let m = mask(bits, 32) as u32;
            sub > bits && u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let m = mask(bits, 128);
            sub > bits && u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

fn ip_block(b: &Value, at: &str, errs: &mut Vec<FieldError>) {
    known(b, at, IP_BLOCK, errs);
    let text = b.get("cidr").and_then(Value::as_str).unwrap_or_default();
    if text.is_empty() {
        errs.push(FieldError::required(format!("{at}.cidr"), ""));
        return;
    }
    let Some(net) = cidr(text) else {
        errs.push(FieldError::invalid(
            format!("{at}.cidr"),
            text,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
        return;
    };
    for (i, e) in items(b, "except").iter().enumerate() {
        let e = e.as_str().unwrap_or_default();
        let field = format!("{at}.except[{i}]");
        match cidr(e) {
            None => errs.push(FieldError::invalid(
                field,
                e,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            )),
            Some(sub) if !contains(net, sub) => {
                errs.push(FieldError::invalid(field, e, "must be a strict subset of `cidr`"));
            }
            Some(_) => {}
        }
    }
}

fn port(p: &Value, at: &str, errs: &mut Vec<FieldError>) {
    known(p, at, PORT, errs);
    if let Some(proto) = p.get("protocol").and_then(Value::as_str)
        && !matches!(proto, "TCP" | "UDP" | "SCTP")
    {
        errs.push(FieldError::not_supported(
            format!("{at}.protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end = p.get("endPort").and_then(Value::as_i64);
    match p.get("port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid(
                    format!("{at}.port"),
                    n.to_string(),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            if end.is_some_and(|e| e < n) {
                errs.push(FieldError::invalid(
                    format!("{at}.endPort"),
                    end.unwrap_or(0).to_string(),
                    "must be greater than or equal to `port`",
                ));
            }
        }
        Some(Value::String(name)) => {
            if end.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{at}.endPort"),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            let ok = (1..=15).contains(&name.len())
                && name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && name.bytes().any(|c| c.is_ascii_lowercase())
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--");
            if !ok {
                errs.push(FieldError::invalid(
                    format!("{at}.port"),
                    name,
                    "must be an IANA_SVC_NAME (at most 15 characters, matching regex [a-z0-9]([a-z0-9-]*[a-z0-9])*)",
                ));
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            format!("{at}.port"),
            other.to_string(),
            "must be an integer or a port name",
        )),
        None if end.is_some() => errs.push(FieldError::required(
            format!("{at}.port"),
            "must be specified when `endPort` is specified",
        )),
        None => {}
    }
}
