//! What the Discord command builder shows, and its signed custom_ids: a translation of
//! `crate::command_builder` into Discord's components, within Discord's limits (developer
//! docs, "Component reference"): a message holds at most 5 action rows, a row one string
//! select of at most 25 options (label, value and description at most 100 characters each);
//! a modal at most 5 rows of one text input each, a title and a label at most 45 characters,
//! a placeholder at most 100, a value at most 4000; every custom_id at most 100.
//!
//! Every custom_id is `dh:b:<what>:<signature>`, the signature covering the Discord user the
//! builder was opened for, so a forged id, or someone else's, verifies to nothing.

use serde_json::{Value, json};

use super::publish::truncate;
use crate::{
    command_builder::Field,
    commands::{CommandSpec, keyed::key_value},
    signing::Signer,
};

pub const PREFIX: &str = "dh:b:";
const SIG_LEN: usize = 22;
pub const CUSTOM_ID_MAX: usize = 100;
pub const ROWS_MAX: usize = 5;
pub const OPTIONS_MAX: usize = 25;
pub const OPTION_TEXT_MAX: usize = 100;
pub const INPUTS_MAX: usize = 5;
pub const TITLE_MAX: usize = 45;
pub const LABEL_MAX: usize = 45;
pub const PLACEHOLDER_MAX: usize = 100;
pub const VALUE_MAX: usize = 4000;
/// The custom_id of the text input holding the arguments that did not get one of their own.
/// Argument names cannot hold `+`, so it cannot clash with one.
pub const MORE_INPUT: &str = "+more";

/// What a builder custom_id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The `n`th command select of a page (custom_ids must differ within a message).
    Select(usize),
    /// The button that shows page `n` of the command list.
    Page(usize),
    /// The form (modal) of the named command.
    Form(String),
    /// The button that reopens the named command's form with what was entered.
    Fix(String),
    /// The button that runs the named command (one without arguments) after all.
    Run(String),
    /// The button that drops a confirmation.
    Cancel,
}

fn encode(t: &Token) -> String {
    match t {
        Token::Select(n) => format!("s{n}"),
        Token::Page(n) => format!("p{n}"),
        Token::Form(name) => format!("m{name}"),
        Token::Fix(name) => format!("f{name}"),
        Token::Run(name) => format!("r{name}"),
        Token::Cancel => "x".to_owned(),
    }
}

fn decode(s: &str) -> Option<Token> {
    let (kind, rest) = s.split_at_checked(1)?;
    match kind {
        "s" => rest.parse().ok().map(Token::Select),
        "p" => rest.parse().ok().map(Token::Page),
        "m" if !rest.is_empty() => Some(Token::Form(rest.to_owned())),
        "f" if !rest.is_empty() => Some(Token::Fix(rest.to_owned())),
        "r" if !rest.is_empty() => Some(Token::Run(rest.to_owned())),
        "x" if rest.is_empty() => Some(Token::Cancel),
        _ => None,
    }
}

fn message(user: &str, payload: &str) -> String {
    format!("discord-builder:{user}:{payload}")
}

/// The signed custom_id of `t` for the Discord user `user`; `None` when it would be longer
/// than Discord takes (a command with such a long name can still be typed).
pub fn custom_id(signer: &Signer, user: &str, t: &Token) -> Option<String> {
    let payload = encode(t);
    let sig = signer.sign(&message(user, &payload), SIG_LEN);
    let id = format!("{PREFIX}{payload}:{sig}");
    (id.chars().count() <= CUSTOM_ID_MAX).then_some(id)
}

/// What `custom_id` stands for when deckhand signed it for `user`; `None` for anything else.
pub fn parse(signer: &Signer, user: &str, custom_id: &str) -> Option<Token> {
    let (payload, sig) = custom_id.strip_prefix(PREFIX)?.rsplit_once(':')?;
    if sig.len() != SIG_LEN || !signer.verify(&message(user, payload), sig) {
        return None;
    }
    decode(payload)
}

/// The commands on each page: all on one page when they fit its 5 selects, else 4 selects
/// a page and a row of Previous / Next buttons.
fn per_page(total: usize) -> usize {
    if total <= ROWS_MAX * OPTIONS_MAX {
        ROWS_MAX * OPTIONS_MAX
    } else {
        (ROWS_MAX - 1) * OPTIONS_MAX
    }
}

pub fn page_count(total: usize) -> usize {
    total.div_ceil(per_page(total)).max(1)
}

fn select(custom_id: String, chunk: &[(String, String)]) -> Value {
    let options: Vec<Value> = chunk
        .iter()
        .map(|(name, help)| {
            let mut o = json!({ "label": name, "value": name });
            if !help.trim().is_empty() {
                o["description"] = json!(truncate(help.trim(), OPTION_TEXT_MAX));
            }
            o
        })
        .collect();
    json!({
        "type": 1,
        "components": [{
            "type": 3, "custom_id": custom_id, "placeholder": "Pick a command",
            "min_values": 1, "max_values": 1, "options": options,
        }],
    })
}

fn page_button(signer: &Signer, user: &str, label: &str, page: usize) -> Option<Value> {
    let id = custom_id(signer, user, &Token::Page(page))?;
    Some(json!({ "type": 2, "style": 2, "label": label, "custom_id": id }))
}

/// Page `page` of the command list for `user`: message content and components. Commands
/// whose name is too long for an option are left out (they can still be typed).
pub fn picker(signer: &Signer, user: &str, commands: &[(String, String)], page: usize) -> (String, Vec<Value>) {
    let usable: Vec<(String, String)> = commands
        .iter()
        .filter(|(name, _)| !name.is_empty() && name.chars().count() <= OPTION_TEXT_MAX)
        .cloned()
        .collect();
    let pages = page_count(usable.len());
    let page = page.min(pages - 1);
    let size = per_page(usable.len());
    let shown = &usable[(page * size).min(usable.len())..((page + 1) * size).min(usable.len())];
    let mut rows: Vec<Value> = shown
        .chunks(OPTIONS_MAX)
        .enumerate()
        .filter_map(|(i, chunk)| Some(select(custom_id(signer, user, &Token::Select(i))?, chunk)))
        .collect();
    let nav: Vec<Value> = [
        (page > 0).then(|| page_button(signer, user, "Previous", page - 1)),
        (page + 1 < pages).then(|| page_button(signer, user, "Next", page + 1)),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .collect();
    if !nav.is_empty() {
        rows.push(json!({ "type": 1, "components": nav }));
    }
    let mut content = "Pick a command; its arguments come next, in a form.".to_owned();
    if pages > 1 {
        content.push_str(&format!(" Page {} of {pages}.", page + 1));
    }
    (content, rows)
}

/// The label of a field: its name, with its values when they fit (`tier (dev/prod/stage)`).
fn label(field: &Field) -> String {
    let optional = if field.optional { " (optional)" } else { "" };
    if !field.choices.is_empty() {
        let with = format!("{} ({}){optional}", field.name, field.choices.join("/"));
        if with.chars().count() <= LABEL_MAX {
            return with;
        }
    }
    truncate(&format!("{}{optional}", field.name), LABEL_MAX)
}

fn input(custom_id: &str, label: String, placeholder: &str, required: bool, style: u8) -> Value {
    json!({
        "type": 1,
        "components": [{
            "type": 4, "custom_id": custom_id, "style": style, "label": label,
            "placeholder": truncate(placeholder, PLACEHOLDER_MAX),
            "required": required, "max_length": VALUE_MAX,
        }],
    })
}

fn field_input(field: &Field) -> Value {
    let mut row = input(&field.name, label(field), &field.hint, !field.optional, 1);
    if let Some(d) = field.default.as_deref().filter(|d| d.chars().count() <= VALUE_MAX) {
        row["components"][0]["value"] = json!(d);
    }
    row
}

/// Which fields get an input of their own and which share the `MORE_INPUT` one: a modal
/// holds 5 inputs, so with more fields the required ones come first, 4 of them get their
/// own input and the rest are typed as `name=value` in the fifth.
pub fn split(fields: &[Field]) -> (Vec<&Field>, Vec<&Field>) {
    if fields.len() <= INPUTS_MAX {
        return (fields.iter().collect(), Vec::new());
    }
    let mut ordered: Vec<&Field> = fields.iter().collect();
    ordered.sort_by_key(|f| f.optional);
    let rest = ordered.split_off(INPUTS_MAX - 1);
    (ordered, rest)
}

/// The modal for `spec` (its `fields`), with `custom_id` (a signed `Token::Form`).
pub fn form(spec: &CommandSpec, fields: &[Field], custom_id: &str) -> Value {
    let (own, rest) = split(fields);
    let mut rows: Vec<Value> = own.into_iter().map(field_input).collect();
    if !rest.is_empty() {
        let names: Vec<&str> = rest.iter().map(|f| f.name.as_str()).collect();
        let placeholder = format!("name=value, one a line: {}", names.join(", "));
        let required = rest.iter().any(|f| !f.optional);
        rows.push(input(MORE_INPUT, "Other arguments".into(), &placeholder, required, 2));
    }
    json!({
        "custom_id": custom_id,
        "title": truncate(&format!("deckhand {}", spec.name), TITLE_MAX),
        "components": rows,
    })
}

/// The `name=value` lines of the `MORE_INPUT` input, each read as the router reads a typed
/// `name=value` token (`commands::keyed::key_value`: split at the first `=`, so a value may
/// hold `=`). A value in double quotes is taken as it is, over several lines if need be,
/// `\"` and `\\` standing for `"` and `\`; without quotes a line that is not `name=value`
/// continues the value before it (a long text over several lines). `Err` names what cannot
/// be read.
pub fn more_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    // Whether the last value was quoted: a quoted value is complete.
    let mut closed = false;
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        let Some((key, value)) = key_value(line) else {
            match pairs.last_mut() {
                Some((_, v)) if !closed => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                _ => return Err(format!("`{}` is not name=value", truncate(line.trim(), 60))),
            }
            rest = after;
            continue;
        };
        let value = value.trim_start();
        match value.strip_prefix('"') {
            Some(_) => {
                // The quoted text may run past this line: read from the whole remainder.
                let from = line.len() - value.len() + 1;
                let (v, used) =
                    unquote(&rest[from..]).ok_or_else(|| format!("the value of `{key}` has no closing `\"`"))?;
                let tail = &rest[from + used..];
                let (line_end, after) = tail.split_once('\n').unwrap_or((tail, ""));
                if !line_end.trim().is_empty() {
                    return Err(format!(
                        "`{}` follows the closing quote of `{key}`",
                        truncate(line_end.trim(), 60)
                    ));
                }
                pairs.push((key.to_owned(), v));
                closed = true;
                rest = after;
            }
            None => {
                pairs.push((key.to_owned(), value.trim_end().to_owned()));
                closed = false;
                rest = after;
            }
        }
    }
    Ok(pairs)
}

/// The text of a quoted value up to its closing quote (`s` starts after the opening one),
/// and how many bytes of `s` that took, closing quote included.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => return None,
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, optional: bool) -> Field {
        Field {
            name: name.into(),
            hint: "h".into(),
            optional,
            choices: Vec::new(),
            default: None,
        }
    }

    #[test]
    fn ids_are_bound_to_the_user_and_refuse_changes() {
        let s = Signer::new(b"k");
        let id = custom_id(&s, "42", &Token::Form("env create".into())).expect("fits");
        assert_eq!(parse(&s, "42", &id), Some(Token::Form("env create".into())));
        assert_eq!(parse(&s, "43", &id), None, "another user's");
        assert_eq!(parse(&s, "42", &id.replace("create", "delete")), None, "changed");
        assert_eq!(parse(&Signer::new(b"other"), "42", &id), None, "another key");
        assert!(custom_id(&s, "42", &Token::Form("x".repeat(80))).is_none(), "too long");
    }

    #[test]
    fn many_fields_share_the_fifth_input_required_ones_first() {
        let fields: Vec<Field> = (0..7).map(|i| field(&format!("f{i}"), i % 2 == 0)).collect();
        let (own, rest) = split(&fields);
        let names = |v: &[&Field]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&own), ["f1", "f3", "f5", "f0"]);
        assert_eq!(names(&rest), ["f2", "f4", "f6"]);
        assert_eq!(
            more_values("a=1\nb = two words\nand more\n\n"),
            Ok(vec![
                ("a".into(), "1".into()),
                ("b".into(), "two words and more".into())
            ])
        );
        assert!(more_values("oops").is_err());
    }

    #[test]
    fn other_arguments_split_at_the_first_equals_and_take_quotes() {
        let pairs = |text: &str| more_values(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(pairs("env=FOO=1"), [kv("env", "FOO=1")]);
        assert_eq!(
            pairs("e=a=b\nFOO=2"),
            [kv("e", "a=b FOO=2")],
            "FOO=2 is no argument name"
        );
        assert_eq!(
            pairs("note=\"  two\nlines, e=x \\\"q\\\" \\\\ \"  \nf=six"),
            [kv("note", "  two\nlines, e=x \"q\" \\ "), kv("f", "six")]
        );
        assert_eq!(pairs("a=\"\""), [kv("a", "")]);
        assert!(more_values("a=\"open").unwrap_err().contains("closing"));
        assert!(more_values("a=\"x\" y").unwrap_err().contains("`y`"));
        assert!(more_values("a=\"x\"\nmore").is_err(), "a quoted value is complete");
    }

    #[test]
    fn labels_show_values_when_they_fit() {
        let mut f = field("tier", true);
        f.choices = vec!["dev".into(), "prod".into()];
        assert_eq!(label(&f), "tier (dev/prod) (optional)");
        f.choices = (0..20).map(|i| format!("value{i}")).collect();
        assert_eq!(label(&f), "tier (optional)");
    }
}
