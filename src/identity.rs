//! Who is asking: chat identities and API tokens resolved to deckhand users and groups.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    str::FromStr,
};

use crate::configuration::Config;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    pub user: String,
    pub groups: BTreeSet<String>,
}

/// An entry in an `allow` or `approvers` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Everyone,
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a subject: write group:NAME, user:NAME or everyone")]
pub struct SubjectError(String);

impl FromStr for Subject {
    type Err = SubjectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            _ if s == "everyone" || s == "*" => Ok(Subject::Everyone),
            Some(("group", g)) if !g.is_empty() => Ok(Subject::Group(g.to_owned())),
            Some(("user", u)) if !u.is_empty() => Ok(Subject::User(u.to_owned())),
            _ => Err(SubjectError(s.to_owned())),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Everyone => f.write_str("everyone"),
            Subject::User(u) => write!(f, "user:{u}"),
            Subject::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl serde::Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Principal {
    pub fn is(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Everyone => true,
            Subject::User(u) => &self.user == u,
            Subject::Group(g) => self.groups.contains(g),
        }
    }

    pub fn is_any(&self, subjects: &[Subject]) -> bool {
        subjects.iter().any(|s| self.is(s))
    }
}

/// Lookup tables built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: HashMap<String, BTreeSet<String>>,
    by_identity: HashMap<String, String>,
    group_by_identity: HashMap<String, String>,
    tokens: Vec<(Vec<u8>, String)>,
}

impl Directory {
    pub fn from_config(config: &Config) -> Self {
        let mut d = Directory::default();
        for (name, user) in &config.users {
            let name = name.to_string();
            d.users
                .insert(name.clone(), user.groups.iter().map(ToString::to_string).collect());
            for id in &user.identities {
                d.by_identity.insert(id.clone(), name.clone());
            }
            for t in &user.tokens {
                d.tokens.push((t.as_bytes().to_vec(), name.clone()));
            }
        }
        for (name, group) in &config.groups {
            for id in &group.identities {
                d.group_by_identity.insert(id.clone(), name.to_string());
            }
        }
        d
    }

    pub fn user(&self, name: &str) -> Option<Principal> {
        let groups = self.users.get(name)?.clone();
        Some(Principal {
            user: name.to_owned(),
            groups,
        })
    }

    /// `identity` is `platform:id`; `chat_groups` are the platform groups the person is in
    /// (e.g. `slack-group:S0123`), which add deckhand groups mapped to them.
    pub fn by_identity(&self, identity: &str, chat_groups: &[String]) -> Option<Principal> {
        let mut p = self.user(self.by_identity.get(identity)?)?;
        for g in chat_groups {
            if let Some(group) = self.group_by_identity.get(g) {
                p.groups.insert(group.clone());
            }
        }
        Some(p)
    }

    /// Compares against every token in constant time per token, so timing does not reveal
    /// how much of a guess was right.
    pub fn by_token(&self, token: &str) -> Option<Principal> {
        let mut found = None;
        for (t, user) in &self.tokens {
            if constant_time_eq(t, token.as_bytes()) {
                found = Some(user);
            }
        }
        self.user(found?)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
