//! Templates of service classes, rendered by minijinja: sandboxed (no file or environment
//! access), strict about undefined names so a typo fails validation instead of rendering an
//! empty field, and with a fuel limit so a template cannot loop for ever.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

/// Template instructions one render may spend; the shipped classes need a few hundred.
const FUEL: u64 = 50_000;
/// Objects one service may consist of.
const MAX_OBJECTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("does not render: {0}")]
    Render(String),
    #[error("{0}")]
    Shape(String),
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        Renderer { env }
    }

    fn render(&self, template: &str, ctx: &impl Serialize) -> Result<String, TemplateError> {
        self.env
            .render_str(template, minijinja::Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| TemplateError::Render(describe(&e, template)))
    }

    pub fn check_syntax(&self, template: &str) -> Result<(), TemplateError> {
        self.env
            .template_from_str(template)
            .map(|_| ())
            .map_err(|e| TemplateError::Render(describe(&e, template)))
    }

    /// The YAML documents a template renders, each a Kubernetes object with apiVersion, kind
    /// and metadata.name.
    pub fn objects(&self, template: &str, ctx: &impl Serialize) -> Result<Vec<Value>, TemplateError> {
        let text = self.render(template, ctx)?;
        let mut out = Vec::new();
        for (i, doc) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let v = <Value as serde::Deserialize>::deserialize(doc)
                .map_err(|e| TemplateError::Shape(format!("document {} is not valid YAML: {e}", i + 1)))?;
            if v.is_null() {
                continue;
            }
            for field in ["apiVersion", "kind"] {
                if v[field].as_str().is_none_or(str::is_empty) {
                    return Err(TemplateError::Shape(format!("object {} has no {field}", i + 1)));
                }
            }
            let name = v["metadata"]["name"].as_str().unwrap_or_default();
            if !is_subdomain(name) {
                return Err(TemplateError::Shape(format!(
                    "object {} ({}) has no valid metadata.name: '{name}'",
                    i + 1,
                    v["kind"].as_str().unwrap_or_default()
                )));
            }
            out.push(v);
        }
        if out.is_empty() || out.len() > MAX_OBJECTS {
            return Err(TemplateError::Shape(format!(
                "renders {} objects; a class renders 1 to {MAX_OBJECTS}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// A Kubernetes object name (a Secret's, say).
    pub fn name(&self, template: &str, ctx: &impl Serialize) -> Result<String, TemplateError> {
        let s = self.render(template, ctx)?.trim().to_owned();
        if is_subdomain(&s) {
            Ok(s)
        } else {
            Err(TemplateError::Shape(format!(
                "renders '{s}', which is not an object name"
            )))
        }
    }

    /// One line of text (an annotation, an environment variable's value, an endpoint).
    pub fn value(&self, template: &str, ctx: &impl Serialize) -> Result<String, TemplateError> {
        let s = self.render(template, ctx)?.trim().to_owned();
        if s.contains('\n') || s.len() > 1024 {
            return Err(TemplateError::Shape(
                "must render a single line of at most 1024 characters".into(),
            ));
        }
        Ok(s)
    }
}

/// minijinja's message plus the line it points at, quoted.
fn describe(e: &minijinja::Error, source: &str) -> String {
    let text = e.to_string();
    let text = text.split(" (in <string>").next().unwrap_or(&text).to_owned();
    match e.line() {
        Some(line) => match source.lines().nth(line.saturating_sub(1)) {
            Some(l) => format!("{text} at template line {line}: `{}`", l.trim()),
            None => format!("{text} at template line {line}"),
        },
        None => text,
    }
}

/// An RFC 1123 subdomain, what most kinds accept as metadata.name.
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_names_and_loops_fail() {
        let r = Renderer::new();
        let ctx = serde_json::json!({ "name": "db" });
        assert!(
            r.value("{{ nmae }}", &ctx)
                .unwrap_err()
                .to_string()
                .contains("undefined")
        );
        assert!(
            r.value(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &ctx
            )
            .is_err()
        );
        assert_eq!(r.name("{{ name }}-conn", &ctx).unwrap(), "db-conn");
        assert!(r.name("{{ name }} conn", &ctx).is_err());
    }

    #[test]
    fn objects_need_kind_and_name() {
        let r = Renderer::new();
        let ctx = serde_json::json!({ "name": "db" });
        let two = "apiVersion: v1\nkind: A\nmetadata: {name: '{{ name }}'}\n---\napiVersion: v1\nkind: B\nmetadata: {name: b}\n";
        assert_eq!(r.objects(two, &ctx).unwrap().len(), 2);
        let nameless = "apiVersion: v1\nkind: A\nmetadata: {}\n";
        assert!(
            r.objects(nameless, &ctx)
                .unwrap_err()
                .to_string()
                .contains("metadata.name")
        );
    }
}
