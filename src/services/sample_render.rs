//! A class's templates rendered once at start-up with sample parameters (the defaults, or a
//! valid sample for a required parameter without one), so that a class which cannot render,
//! or renders a kind its `resources` do not list, is refused when deckhand starts rather
//! than when someone asks for a service.

use super::{
    class::{ClassProblem, Context, ServiceClass},
    params::{ParamType, ParamValue, Params},
    render::{Renderer, TemplateError},
};

/// Every template rendered with the defaults (a required parameter without one gets a
/// valid sample value), so a class that cannot render is refused at start-up, not when
/// someone asks for a service.
pub(super) fn check_renders(
    class: &ServiceClass,
    renderer: &Renderer,
) -> Result<Vec<(String, String)>, Vec<ClassProblem>> {
    let mut problems = Vec::new();
    let mut kinds = Vec::new();
    let sample = Params(
        class
            .params
            .iter()
            .map(|p| {
                let v = p.default.clone().unwrap_or_else(|| match &p.kind {
                    ParamType::Int { min, .. } => ParamValue::Int(*min),
                    ParamType::Enum(v) => ParamValue::Str(v[0].clone()),
                    ParamType::Bool => ParamValue::Bool(false),
                    ParamType::String { .. } => ParamValue::Str("example".into()),
                });
                (p.name.clone(), v)
            })
            .collect(),
    );
    let ctx = Context {
        name: "example".into(),
        env: "example-env".into(),
        class: class.name.to_string(),
        params: sample,
        app: Some("example-app".into()),
    };
    let mut problem = |field: &str, e: TemplateError| {
        problems.push(ClassProblem {
            field: field.to_owned(),
            message: e.to_string(),
        })
    };
    match class.render_objects(renderer, &ctx) {
        Ok(objects) => {
            for (i, o) in objects.iter().enumerate() {
                let key = (
                    o["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    o["kind"].as_str().unwrap_or_default().to_owned(),
                );
                if !kinds.contains(&key) {
                    kinds.push(key.clone());
                }
                if !class.plurals.is_empty() && !class.plurals.contains_key(&key) {
                    problem(
                        "resources",
                        TemplateError::Shape(format!(
                            "object {} renders {} {}, which has no entry under resources",
                            i + 1,
                            key.0,
                            key.1
                        )),
                    );
                }
            }
        }
        Err(e) => problem("template", e),
    }
    if let Some((secret, _)) = &class.secret
        && let Err(e) = renderer.name(secret, &ctx)
    {
        problem("connection.secret", e);
    }
    for (var, t) in &class.binding.values {
        if let Err(e) = renderer.value(t, &ctx) {
            problem(&format!("bind.values.{var}"), e);
        }
    }
    for (key, t) in &class.identity {
        if let Err(e) = renderer.value(t, &ctx) {
            problem(&format!("identity.annotations.{key}"), e);
        }
    }
    if let Some(t) = &class.endpoint
        && let Err(e) = renderer.check_syntax(t)
    {
        problem("endpoint", e);
    }
    if problems.is_empty() { Ok(kinds) } else { Err(problems) }
}
