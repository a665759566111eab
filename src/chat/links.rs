//! Links an output hands out (a proxy or shell link), shown the same way on every
//! platform: as link buttons under the output, never inside its code block, where chat
//! shows a URL as text nobody can click. The line of the text that is just the URL goes,
//! since the button carries it; a link the platform cannot take as a button (too long, not
//! a URL) keeps its line, so nothing is lost.

use crate::command_buttons::LinkButton;

/// `text` without the lines that are exactly the URL of one of `shown`.
pub fn without(text: &str, shown: &[&LinkButton]) -> String {
    if shown.is_empty() {
        return text.to_owned();
    }
    text.lines()
        .filter(|line| !shown.iter().any(|l| line.trim() == l.url))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `label` cut to `max` characters (a platform's limit for button text).
pub fn label(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let mut out: String = label.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_line_goes_when_a_button_carries_it() {
        let link = LinkButton::new("Open link", "https://x/p/t/");
        let text = "https://x/p/t/\nforwards to shop:8080";
        assert_eq!(without(text, &[&link]), "forwards to shop:8080");
        assert_eq!(without(text, &[]), text);
        assert_eq!(label(&"x".repeat(80), 75).chars().count(), 75);
    }
}
