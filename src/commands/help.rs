//! What a person reads when a command is not understood or when they ask: `help` (the
//! commands they may run), `help <command>` (usage, arguments, examples, who approves) and
//! the "did you mean" names for a typo, all limited to what the caller may run.

use super::router::{KEYED_NOTE, RouteError, Router, normalize};
use crate::identity::Principal;

impl Router {
    /// Up to three command names close to what was typed, among those `who` may run.
    pub(super) fn suggest(&self, who: &Principal, text: &str) -> Vec<String> {
        let words: Vec<&str> = text.split(' ').collect();
        let mut scored: Vec<(usize, &str)> = self
            .visible(who)
            .map(|s| {
                let n = s.name.split(' ').count().min(words.len());
                let typed = words[..n].join(" ");
                (edit_distance(&typed, &s.name), s.name.as_str())
            })
            .filter(|(d, name)| *d <= (name.len() / 4).max(1))
            .collect();
        if scored.is_empty() {
            // A known family (`env …`) with an unknown verb: offer the family.
            scored = self
                .visible(who)
                .filter(|s| s.name.split(' ').next() == words.first().copied())
                .map(|s| (0, s.name.as_str()))
                .collect();
        }
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(3).map(|(_, n)| n.to_owned()).collect()
    }

    /// `help`: the commands the caller may run, one line each.
    pub fn help_index(&self, who: &Principal) -> String {
        let mut out = String::from("Commands you can run:\n");
        for s in self.visible(who) {
            out.push_str(&format!("  {:<44} {}\n", s.usage, s.help));
        }
        out.push_str("Type `help <command>` for details and examples.");
        out
    }

    /// `help <command>`: usage, arguments, examples and who approves.
    pub fn help_for(&self, who: &Principal, name: &str) -> Result<String, RouteError> {
        let name = normalize(name);
        let Some(spec) = self.find(&name).filter(|s| who.is_any(&s.allow)) else {
            return Err(RouteError::Unknown {
                suggestions: self.suggest(who, &name),
                input: name,
            });
        };
        let mut out = format!("{}\n\nUsage: {}\n", spec.help, spec.usage);
        if !spec.args.is_empty() {
            out.push_str(&format!("\nArguments ({KEYED_NOTE}):\n"));
            for a in &spec.args {
                let default = a
                    .default
                    .as_ref()
                    .map(|d| format!(" (default {d})"))
                    .unwrap_or_default();
                let help = if a.help.is_empty() {
                    String::new()
                } else {
                    format!("{}; ", a.help)
                };
                out.push_str(&format!("  {:<10} {help}{}{default}\n", a.name, a.kind.allowed()));
            }
        }
        if !spec.examples.is_empty() {
            out.push_str("\nExamples:\n");
            for e in &spec.examples {
                out.push_str(&format!("  {e}\n"));
            }
        }
        if let Some(rule) = &spec.approval {
            let who = rule
                .policy
                .approvers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "\nNeeds approval by {} of {who} when it applies; requests wait {} for it.\n",
                rule.policy.count, rule.policy.expires
            ));
        }
        Ok(out.trim_end().to_owned())
    }
}

/// Edit distance over bytes, counting a swap of two neighbours as one edit ("hepl" is one
/// away from "help"); command names are ASCII.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}
