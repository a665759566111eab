//! The service classes this deckhand offers: the ones built into the binary (services/) or
//! a directory ops point `services.dir` at, every file checked before anything is served.

use std::{collections::BTreeMap, fmt, path::Path};

use super::{ServicesConfig, class::ServiceClass, class_file::RawClass, render::Renderer};

/// The classes shipped in services/, compiled in so the binary runs without the directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("services/postgres.yaml", include_str!("../../services/postgres.yaml")),
    ("services/s3-bucket.yaml", include_str!("../../services/s3-bucket.yaml")),
    (
        "services/dynamodb-table.yaml",
        include_str!("../../services/dynamodb-table.yaml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassError {
    pub file: String,
    pub class: Option<String>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ClassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(c) = &self.class {
            write!(f, "class `{c}`: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a set of class files, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ClassErrors(pub Vec<ClassError>);

impl fmt::Display for ClassErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in service classes:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

pub struct Catalog {
    classes: BTreeMap<String, ServiceClass>,
    pub renderer: Renderer,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("classes", &self.classes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Catalog {
    /// The configured classes: `services.dir`, or the built-in ones when it is empty.
    pub fn load(cfg: &ServicesConfig) -> Result<Catalog, ClassErrors> {
        if cfg.dir.as_os_str().is_empty() {
            Self::compile(BUILTIN.iter().map(|(f, t)| (f.to_string(), t.to_string())))
        } else {
            Self::load_dir(&cfg.dir)
        }
    }

    /// Every `*.yaml`/`*.yml` file of `dir`, one class each, in name order.
    pub fn load_dir(dir: &Path) -> Result<Catalog, ClassErrors> {
        let dir_error = |message: String| {
            ClassErrors(vec![ClassError {
                file: dir.display().to_string(),
                class: None,
                field: "directory".into(),
                message,
            }])
        };
        let entries = std::fs::read_dir(dir).map_err(|e| dir_error(format!("cannot read: {e}")))?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        paths.sort();
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match std::fs::read_to_string(&p) {
                Ok(t) => sources.push((p.display().to_string(), t)),
                Err(e) => errors.push(ClassError {
                    file: p.display().to_string(),
                    class: None,
                    field: "file".into(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match Self::compile(sources) {
            Ok(c) if errors.is_empty() => Ok(c),
            Ok(_) => Err(ClassErrors(errors)),
            Err(ClassErrors(more)) => {
                errors.extend(more);
                Err(ClassErrors(errors))
            }
        }
    }

    pub fn compile(sources: impl IntoIterator<Item = (String, String)>) -> Result<Catalog, ClassErrors> {
        let renderer = Renderer::new();
        let mut classes: BTreeMap<String, ServiceClass> = BTreeMap::new();
        let mut errors = Vec::new();
        for (file, text) in sources {
            let raw: RawClass = match yaml_serde::from_str(&text) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(ClassError {
                        file,
                        class: None,
                        field: "yaml".into(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let class_name = raw.name().to_owned();
            match raw.compile(&file, &renderer) {
                Ok(class) => {
                    if let Some(first) = classes.get(class.name.as_str()) {
                        errors.push(ClassError {
                            file: file.clone(),
                            class: Some(class.name.to_string()),
                            field: "name".into(),
                            message: format!("is also defined in {}", first.file),
                        });
                        continue;
                    }
                    classes.insert(class.name.to_string(), class);
                }
                Err(problems) => errors.extend(problems.into_iter().map(|p| ClassError {
                    file: file.clone(),
                    class: Some(class_name.clone()),
                    field: p.field,
                    message: p.message,
                })),
            }
        }
        if errors.is_empty() {
            Ok(Catalog { classes, renderer })
        } else {
            Err(ClassErrors(errors))
        }
    }

    pub fn get(&self, name: &str) -> Option<&ServiceClass> {
        self.classes.get(name)
    }

    pub fn classes(&self) -> impl Iterator<Item = &ServiceClass> {
        self.classes.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.classes.keys().map(String::as_str).collect()
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_classes_are_valid() {
        let c = Catalog::compile(BUILTIN.iter().map(|(f, t)| (f.to_string(), t.to_string()))).unwrap();
        assert_eq!(c.names(), ["dynamodb-table", "postgres", "s3-bucket"]);
        assert!(c.get("postgres").is_some_and(|p| p.cost));
    }

    #[test]
    fn problems_name_file_field_and_what_is_wrong() {
        let bad = r#"
name: broken
description: a class with mistakes
parameters:
  size: { type: enum, values: [small], default: huge }
  storage: { type: int, min: 10 }
template: |
  apiVersion: example.org/v1
  kind: Thing
  metadata:
    name: {{ name }}
  spec:
    size: {{ params.sise }}
ready: { condition: Ready }
connection: { secret: "{{ name }}-conn", keys: [password] }
bind:
  env: { DB_PASS: pass }
"#;
        let errs = Catalog::compile([("services/broken.yaml".to_string(), bad.to_string())])
            .unwrap_err()
            .to_string();
        for want in [
            "services/broken.yaml: class `broken`: parameters.size.default: 'huge' is not allowed; use one of small",
            "services/broken.yaml: class `broken`: parameters.storage: type int needs both min and max",
            "services/broken.yaml: class `broken`: bind.env.DB_PASS: 'pass' is not one of connection.keys (password)",
        ] {
            assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
        }
        let typo = bad
            .replace("default: huge", "default: small")
            .replace("{ type: int, min: 10 }", "{ type: int, min: 10, max: 20 }")
            .replace("DB_PASS: pass", "DB_PASS: password");
        let errs = Catalog::compile([("services/broken.yaml".to_string(), typo)])
            .unwrap_err()
            .to_string();
        assert!(
            errs.contains("services/broken.yaml: class `broken`: template: does not render")
                && errs.contains("undefined"),
            "{errs}"
        );
    }
}
