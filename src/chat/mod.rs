//! What Slack and Discord both need, written once: the approval buttons' signatures, the
//! words deckhand says about approvals (decision summaries, the prompt's text), the help
//! for people deckhand does not know, submitting a command and explaining a refusal, and
//! keeping a conversation's state with compare-and-set. `crate::slack` and
//! `crate::discord` only translate between these and their platform's payloads.
//!
//! The text here is built through [`Markup`], which each platform implements: it escapes
//! what users wrote and turns deckhand users and groups into the platform's mentions.

pub mod buttons;
pub mod conversation;
pub mod links;
pub mod shown;
pub mod submit;
pub mod text;

use std::collections::HashMap;

use crate::configuration::Config;

/// How a platform writes text deckhand did not write, and names people and groups.
pub trait Markup {
    /// Text from users or the cluster, made inert.
    fn escape(&self, text: &str) -> String;
    /// A deckhand user, as a mention when the platform knows them.
    fn user(&self, name: &str) -> String;
    /// A deckhand group as a mention, when it maps to a platform group.
    fn group(&self, name: &str) -> Option<String>;

    /// An approver as the spec names it (`group:ops`, `user:olga`, `everyone`): mentioned
    /// when the platform knows it, else as written.
    fn approver(&self, subject: &str) -> String {
        match subject.split_once(':') {
            Some(("group", g)) => self.group(g).unwrap_or_else(|| self.escape(subject)),
            Some(("user", u)) => self.user(u),
            _ => self.escape(subject),
        }
    }
}

/// deckhand users and groups and their ids on one platform, from the configuration's
/// `identities` (`slack:U…` and `slack-group:S…`, `discord:…` and `discord-role:…`).
#[derive(Debug, Clone, Default)]
pub struct Mentions {
    users: HashMap<String, String>,
    groups: HashMap<String, String>,
}

impl Mentions {
    /// From (deckhand name, platform id) pairs: users, then groups.
    pub fn new(
        users: impl IntoIterator<Item = (String, String)>,
        groups: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            users: users.into_iter().collect(),
            groups: groups.into_iter().collect(),
        }
    }

    /// `user_prefix` and `group_prefix` without the colon: `"slack"`, `"slack-group"`.
    pub fn from_config(config: &Config, user_prefix: &str, group_prefix: &str) -> Self {
        let find = |ids: &[String], prefix: &str| {
            ids.iter()
                .find_map(|i| i.strip_prefix(prefix)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        Self {
            users: config
                .users
                .iter()
                .filter_map(|(name, u)| Some((name.to_string(), find(&u.identities, user_prefix)?)))
                .collect(),
            groups: config
                .groups
                .iter()
                .filter_map(|(name, g)| Some((name.to_string(), find(&g.identities, group_prefix)?)))
                .collect(),
        }
    }

    pub fn user_id(&self, name: &str) -> Option<&str> {
        self.users.get(name).map(String::as_str)
    }

    pub fn group_id(&self, name: &str) -> Option<&str> {
        self.groups.get(name).map(String::as_str)
    }

    /// The platform ids of `approvers` (spec subjects): (users, groups).
    pub fn approver_ids(&self, approvers: &[String]) -> (Vec<String>, Vec<String>) {
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for a in approvers {
            match a.split_once(':') {
                Some(("group", g)) => groups.extend(self.group_id(g).map(str::to_owned)),
                Some(("user", u)) => users.extend(self.user_id(u).map(str::to_owned)),
                _ => {}
            }
        }
        (users, groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{discord::markup::DiscordMarkup, slack::messages::SlackMarkup};

    fn mentions() -> Mentions {
        Mentions {
            users: HashMap::from([("olga".into(), "UOLGA".into())]),
            groups: HashMap::from([
                ("ops".into(), "S0OPS".into()),
                ("sre".into(), "1000000000000000777".into()),
            ]),
        }
    }

    #[test]
    fn approvers_are_mentioned_where_the_platform_knows_them() {
        let m = mentions();
        let slack = SlackMarkup(&m);
        assert_eq!(slack.approver("group:ops"), "<!subteam^S0OPS>");
        assert_eq!(slack.approver("group:dev"), "group:dev");
        assert_eq!(slack.approver("user:olga"), "<@UOLGA>");
        assert_eq!(slack.approver("group:<!here>"), "group:&lt;!here&gt;");
        let discord = DiscordMarkup(&m);
        assert_eq!(discord.approver("group:sre"), "<@&1000000000000000777>");
        // Not a Discord id: named, never put into a mention.
        assert_eq!(discord.approver("group:ops"), "group:ops");
        let (users, groups) = m.approver_ids(&["group:sre".into(), "user:olga".into(), "everyone".into()]);
        assert_eq!(
            (users, groups),
            (vec!["UOLGA".to_owned()], vec!["1000000000000000777".to_owned()])
        );
    }
}
