//! `Status` error objects shaped exactly like the real API server's, so client code that
//! branches on `code`/`reason`/`details` behaves here as it does against a cluster.

use serde_json::{Map, Value, json};

use super::resources::ResourceDef;

/// The user the fake pretends the bot runs as (matches the ServiceAccount in deploy/).
pub const BOT_USER: &str = "system:serviceaccount:deckhand:deckhand";

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

/// One field error of a 422 Invalid.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueForbidden`.
    pub kind: &'static str,
    pub detail: String,
    pub value: Option<String>,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, value: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: "FieldValueInvalid",
            detail: detail.into(),
            value: Some(value.into()),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: "FieldValueRequired",
            detail: detail.into(),
            value: None,
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: "FieldValueForbidden",
            detail: detail.into(),
            value: None,
        }
    }

    pub fn not_supported(field: impl Into<String>, value: impl Into<String>, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            field: field.into(),
            kind: "FieldValueNotSupported",
            detail: format!("supported values: {}", list.join(", ")),
            value: Some(value.into()),
        }
    }

    /// The part after `field: ` (what `causes[].message` holds).
    fn body(&self) -> String {
        let head = match self.kind {
            "FieldValueRequired" => "Required value".to_string(),
            "FieldValueForbidden" => "Forbidden".to_string(),
            "FieldValueNotSupported" => {
                format!("Unsupported value: {:?}", self.value.clone().unwrap_or_default())
            }
            _ => format!("Invalid value: {:?}", self.value.clone().unwrap_or_default()),
        };
        if self.detail.is_empty() {
            head
        } else {
            format!("{head}: {}", self.detail)
        }
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, rd: Option<&ResourceDef>, name: &str, kind: Option<&str>) -> Self {
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if let Some(rd) = rd
            && !rd.group.is_empty()
        {
            d.insert("group".into(), json!(rd.group));
        }
        let kind = kind.map(str::to_string).or_else(|| rd.map(|r| r.plural.to_string()));
        if let Some(k) = kind {
            d.insert("kind".into(), json!(k));
        }
        self.details = Some(Value::Object(d));
        self
    }

    pub fn not_found(rd: &ResourceDef, name: &str) -> Self {
        ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", rd.key())).with_details(Some(rd), name, None)
    }

    /// 404 for a path the server does not serve at all.
    pub fn no_route() -> Self {
        let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource");
        e.details = Some(json!({}));
        e
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found")).with_details(
            None,
            ns,
            Some("namespaces"),
        )
    }

    pub fn already_exists(rd: &ResourceDef, name: &str) -> Self {
        ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", rd.key())).with_details(
            Some(rd),
            name,
            None,
        )
    }

    pub fn conflict(rd: &ResourceDef, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", rd.key()),
        )
        .with_details(Some(rd), name, None)
    }

    pub fn stale(rd: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            rd,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(rd: &ResourceDef, name: &str, errs: &[FieldError]) -> Self {
        let rendered: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect();
        let list = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {list}", rd.qualified_kind()),
        )
        .with_details(Some(rd), name, Some(rd.kind));
        if let Some(Value::Object(d)) = e.details.as_mut() {
            let causes: Vec<Value> = errs
                .iter()
                .map(|fe| json!({"reason": fe.kind, "message": fe.body(), "field": fe.field}))
                .collect();
            d.insert("causes".into(), Value::Array(causes));
        }
        e
    }

    /// `pods "x" is forbidden: <why>` (admission denials such as quota and namespace lifecycle).
    pub fn forbidden(rd: &ResourceDef, name: &str, why: &str) -> Self {
        let subject = if name.is_empty() {
            rd.key()
        } else {
            format!("{} \"{name}\"", rd.key())
        };
        ApiError::new(403, "Forbidden", format!("{subject} is forbidden: {why}")).with_details(Some(rd), name, None)
    }

    /// An RBAC denial, worded like the real authorizer's.
    pub fn rbac(
        user: &str,
        rd: &ResourceDef,
        sub: Option<&str>,
        verb: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Self {
        let resource = match sub {
            Some(s) => format!("{}/{s}", rd.plural),
            None => rd.plural.to_string(),
        };
        let scope = match namespace {
            Some(ns) if rd.namespaced => format!("in the namespace \"{ns}\""),
            _ => "at the cluster scope".to_string(),
        };
        let why = format!(
            "User {user:?} cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
            rd.group
        );
        Self::forbidden(rd, name, &why)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        // A real server leaves out an empty reason (its 500s for errors it did not classify).
        if self.reason.is_empty()
            && let Some(m) = s.as_object_mut()
        {
            m.remove("reason");
        }
        s
    }
}

/// The `Status` a delete answers with when the object is gone at once.
pub fn success_status(rd: &ResourceDef, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": rd.plural, "uid": uid});
    if !rd.group.is_empty() {
        details["group"] = json!(rd.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
