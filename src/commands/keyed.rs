//! `name=value` arguments. Any argument of any spec may be given by name, anywhere after the
//! command words and in any order, so nobody has to remember where `ttl` goes. Specs stay
//! plain regexes: the named tokens are taken out of the text, and the spec's pattern is
//! rewritten without their groups (and the keyword in front of each, such as ` to ` or
//! ` replicas=`) before the rest is matched.

use std::collections::BTreeMap;

use regex::Regex;

use super::spec::{ArgType, CommandSpec};

/// What was typed, split into `name=value` arguments and the positional rest.
#[derive(Debug, Default)]
pub struct Split {
    /// The command words and the positional tokens, in the order typed.
    pub rest: String,
    pub keyed: BTreeMap<String, String>,
}

/// Why a `name=value` token was refused: (the name typed, what is wrong).
pub type KeyError = (String, String);

/// Takes the `name=value` tokens that name one of `spec`'s arguments out of `text`. A key the
/// command does not take is an error, unless a free-text argument may hold it (`exec … --
/// FOO=1`, a service's parameters).
pub fn split(spec: &CommandSpec, text: &str) -> Result<Split, KeyError> {
    let tail = text.strip_prefix(spec.name.as_str()).unwrap_or(text);
    let free_text = spec.args.iter().any(|a| a.kind == ArgType::Text);
    let mut out = Split {
        rest: spec.name.clone(),
        keyed: BTreeMap::new(),
    };
    for token in tail.split(' ').filter(|t| !t.is_empty()) {
        let Some((key, value)) = key_value(token) else {
            push_word(&mut out.rest, token);
            continue;
        };
        if !spec.args.iter().any(|a| a.name == key) {
            if free_text {
                push_word(&mut out.rest, token);
                continue;
            }
            return Err((key.to_owned(), unknown_key(spec)));
        }
        if value.is_empty() {
            return Err((key.to_owned(), format!("needs a value after `{key}=`")));
        }
        if out.keyed.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err((key.to_owned(), twice(key)));
        }
    }
    Ok(out)
}

/// A `name=value` token as the router reads one: split at the first `=` (so the value may
/// hold more of them), the name a possible argument name (lowercase, digits, `_`, `-`;
/// spaces around it dropped). `None` when it is not one (`FOO=1` is a word).
pub fn key_value(token: &str) -> Option<(&str, &str)> {
    token
        .split_once('=')
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| is_key(k))
}

pub fn twice(key: &str) -> String {
    format!("is given twice; give it once, in its place or as {key}=VALUE")
}

fn unknown_key(spec: &CommandSpec) -> String {
    if spec.args.is_empty() {
        return "is not an argument of this command, which takes none".into();
    }
    let names: Vec<&str> = spec.args.iter().map(|a| a.name.as_str()).collect();
    format!("is not an argument of this command; it takes {}", names.join(", "))
}

fn push_word(rest: &mut String, word: &str) {
    rest.push(' ');
    rest.push_str(word);
}

fn is_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `spec`'s pattern without the groups in `dropped` and with the groups in `loosened`
/// accepting any word (so a value the pattern does not list reaches type validation, which
/// says what is allowed). `None` when the rewrite is not a valid regex.
pub fn rewritten(spec: &CommandSpec, dropped: &[&str], loosened: &[&str]) -> Option<Regex> {
    let mut p = spec.pattern.as_str().to_owned();
    let mut found = groups(&p);
    found.retain(|g| dropped.contains(&g.name.as_str()) || loosened.contains(&g.name.as_str()));
    // Outermost only, last first, so earlier offsets stay valid.
    let all = found.clone();
    found.retain(|g| !all.iter().any(|o| o.start < g.start && g.end <= o.end));
    for g in found.iter().rev() {
        if dropped.contains(&g.name.as_str()) {
            let from = keyword_start(&p, g.start, &spec.name);
            p.replace_range(from..g.end, "");
        } else {
            p.replace_range(g.body..g.end - 1, r"\S+");
        }
    }
    Regex::new(&p).ok()
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    /// Offset of its `(`.
    start: usize,
    /// Offset just after `(?P<name>`.
    body: usize,
    /// Offset just after its `)`.
    end: usize,
}

/// The named groups of a regex, found by tracking escapes, classes and parentheses.
fn groups(p: &str) -> Vec<Group> {
    let b = p.as_bytes();
    let mut open: Vec<Option<(String, usize, usize)>> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => i = class_end(b, i),
            b'(' => open.push(group_name(p, i)),
            b')' => {
                if let Some(Some((name, start, body))) = open.pop() {
                    out.push(Group {
                        name,
                        start,
                        body,
                        end: i + 1,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn group_name(p: &str, at: usize) -> Option<(String, usize, usize)> {
    let rest = &p[at..];
    let skip = ["(?P<", "(?<"].into_iter().find(|s| rest.starts_with(s))?.len();
    let len = rest[skip..].find('>')?;
    let name = rest[skip..skip + len].to_owned();
    Some((name, at, at + skip + len + 1))
}

/// The offset of the `]` closing the class that opens at `at`.
fn class_end(b: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    if b.get(i) == Some(&b']') {
        i += 1;
    }
    while i < b.len() && b[i] != b']' {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Where the keyword in front of the group at `group` starts: the last word of the literal
/// text before it (` to `, ` replicas=`), or, at the start of the pattern, what follows the
/// command name.
fn keyword_start(p: &str, group: usize, command: &str) -> usize {
    let b = p.as_bytes();
    let literal = |i: usize| {
        let c = b[i - 1];
        (c.is_ascii_alphanumeric() || matches!(c, b' ' | b'=' | b'_' | b'-')) && (i < 2 || b[i - 2] != b'\\')
    };
    let mut from = group;
    while from > 0 && literal(from) {
        from -= 1;
    }
    let text = &p[from..group];
    if p[..from].ends_with("^(?:") && text.starts_with(command) {
        return from + command.len();
    }
    let trimmed = text.trim_end();
    from + trimmed.rfind(' ').unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pattern: &str) -> CommandSpec {
        CommandSpec {
            name: pattern.split(' ').next().unwrap_or_default().to_owned(),
            help: String::new(),
            usage: String::new(),
            examples: Vec::new(),
            pattern: Regex::new(&format!("^(?:{pattern})$")).unwrap(),
            args: Vec::new(),
            action: String::new(),
            allow: Vec::new(),
            approval: None,
            answer: Default::default(),
            file: String::new(),
        }
    }

    #[test]
    fn dropping_a_group_drops_its_keyword() {
        let s = spec(r"deploy (?P<image>\S+) to (?P<env>\S+)(?: as (?P<app>\S+))?(?: replicas=(?P<replicas>\S+))?");
        let show = |d: &[&str]| rewritten(&s, d, &[]).unwrap().as_str().to_owned();
        assert_eq!(
            show(&["env"]),
            r"^(?:deploy (?P<image>\S+)(?: as (?P<app>\S+))?(?: replicas=(?P<replicas>\S+))?)$"
        );
        assert_eq!(
            show(&["image", "replicas"]),
            r"^(?:deploy to (?P<env>\S+)(?: as (?P<app>\S+))?(?:)?)$"
        );
        assert_eq!(
            show(&["app"]),
            r"^(?:deploy (?P<image>\S+) to (?P<env>\S+)(?:)?(?: replicas=(?P<replicas>\S+))?)$"
        );
        let classes = spec(r"env (?P<name>[^ \]()]+)(?: (?P<tier>[a-z][a-z0-9-]*))?");
        let r = rewritten(&classes, &["name"], &["tier"]).unwrap();
        assert_eq!(r.as_str(), r"^(?:env(?: (?P<tier>\S+))?)$");
    }
}
