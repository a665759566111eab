//! The `when` of an approval rule: a small boolean language over a command's arguments.
//!
//! ```text
//! tier == 'prod'
//! tier in ['stage', 'prod'] and requester != 'alice'
//! not (replicas == '1') or true
//! ```

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Const(bool),
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    EqEq,
    NotEq,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, ConditionError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    _ => Tok::Comma,
                });
            }
            '=' | '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err(ConditionError(format!("expected '{c}=', use == or !=")));
                }
                out.push(if c == '=' { Tok::EqEq } else { Tok::NotEq });
            }
            '\'' | '"' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(x) => lit.push(x),
                        None => return Err(ConditionError("unterminated string".into())),
                    }
                }
                out.push(Tok::Str(lit));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let mut word = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_alphanumeric() || x == '_' || x == '-' || x == '.' {
                        word.push(x);
                        chars.next();
                    } else {
                        break;
                    }
                }
                // Bare numbers are literals, so `replicas == 3` reads naturally.
                if word.chars().all(|c| c.is_ascii_digit()) {
                    out.push(Tok::Str(word));
                } else {
                    out.push(Tok::Ident(word));
                }
            }
            other => return Err(ConditionError(format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, ConditionError> {
        if self.keyword("not") {
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn literal(&mut self) -> Result<String, ConditionError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(ConditionError("expected a quoted value such as 'prod'".into())),
        }
    }

    fn atom(&mut self) -> Result<Condition, ConditionError> {
        match self.next() {
            Some(Tok::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(inner),
                    _ => Err(ConditionError("missing ')'".into())),
                }
            }
            Some(Tok::Ident(w)) if w == "true" => Ok(Condition::Const(true)),
            Some(Tok::Ident(w)) if w == "false" => Ok(Condition::Const(false)),
            Some(Tok::Ident(var)) => match self.next() {
                Some(Tok::EqEq) => Ok(Condition::Eq(var, self.literal()?)),
                Some(Tok::NotEq) => Ok(Condition::Ne(var, self.literal()?)),
                Some(Tok::Ident(w)) if w == "in" => {
                    if self.next() != Some(Tok::LBracket) {
                        return Err(ConditionError("expected '[' after 'in'".into()));
                    }
                    let mut values = vec![self.literal()?];
                    loop {
                        match self.next() {
                            Some(Tok::Comma) => values.push(self.literal()?),
                            Some(Tok::RBracket) => break,
                            _ => return Err(ConditionError("expected ',' or ']' in list".into())),
                        }
                    }
                    Ok(Condition::In(var, values))
                }
                _ => Err(ConditionError(format!("expected ==, != or in after '{var}'"))),
            },
            _ => Err(ConditionError("expected a comparison such as tier == 'prod'".into())),
        }
    }
}

impl Condition {
    pub fn parse(s: &str) -> Result<Self, ConditionError> {
        let mut p = Parser { toks: lex(s)?, pos: 0 };
        let c = p.or()?;
        if p.pos != p.toks.len() {
            return Err(ConditionError("unexpected text after the condition".into()));
        }
        Ok(c)
    }

    /// Names the condition reads, so spec validation can reject unknown ones.
    pub fn variables(&self) -> Vec<&str> {
        match self {
            Condition::Const(_) => vec![],
            Condition::Eq(v, _) | Condition::Ne(v, _) | Condition::In(v, _) => vec![v.as_str()],
            Condition::Not(c) => c.variables(),
            Condition::And(a, b) | Condition::Or(a, b) => {
                let mut v = a.variables();
                v.extend(b.variables());
                v
            }
        }
    }

    /// An unset variable equals nothing, so `!=` holds for it.
    pub fn eval(&self, vars: &BTreeMap<String, String>) -> bool {
        let get = |v: &String| vars.get(v).map(String::as_str);
        match self {
            Condition::Const(b) => *b,
            Condition::Eq(v, lit) => get(v) == Some(lit.as_str()),
            Condition::Ne(v, lit) => get(v) != Some(lit.as_str()),
            Condition::In(v, lits) => get(v).is_some_and(|x| lits.iter().any(|l| l == x)),
            Condition::Not(c) => !c.eval(vars),
            Condition::And(a, b) => a.eval(vars) && b.eval(vars),
            Condition::Or(a, b) => a.eval(vars) || b.eval(vars),
        }
    }
}

/// The condition in words, for people deciding on a request: `tier == 'prod'` reads
/// "tier is prod".
impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let grouped = |c: &Condition| match c {
            Condition::And(..) | Condition::Or(..) => format!("({c})"),
            _ => c.to_string(),
        };
        match self {
            Condition::Const(true) => f.write_str("always"),
            Condition::Const(false) => f.write_str("never"),
            Condition::Eq(v, lit) => write!(f, "{v} is {lit}"),
            Condition::Ne(v, lit) => write!(f, "{v} is not {lit}"),
            Condition::In(v, lits) => write!(f, "{v} is one of {}", lits.join(", ")),
            Condition::Not(c) => write!(f, "not {}", grouped(c)),
            Condition::And(a, b) => write!(f, "{} and {}", grouped(a), grouped(b)),
            Condition::Or(a, b) => write!(f, "{} or {}", grouped(a), grouped(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn evaluates() {
        let c = Condition::parse("tier == 'prod' or (tier in ['stage'] and not replicas == 1)").unwrap();
        assert!(c.eval(&vars(&[("tier", "prod")])));
        assert!(c.eval(&vars(&[("tier", "stage"), ("replicas", "3")])));
        assert!(!c.eval(&vars(&[("tier", "stage"), ("replicas", "1")])));
        assert!(!c.eval(&vars(&[])));
        assert!(Condition::parse("tier != 'prod'").unwrap().eval(&vars(&[])));
        assert_eq!(c.variables(), vec!["tier", "tier", "replicas"]);
    }

    #[test]
    fn reads_as_words() {
        for (cond, words) in [
            ("tier == 'prod'", "tier is prod"),
            ("tier != 'dev'", "tier is not dev"),
            (
                "tier in ['stage', 'prod'] and requester != 'alice'",
                "tier is one of stage, prod and requester is not alice",
            ),
            ("not (tier == 'a' or tier == 'b')", "not (tier is a or tier is b)"),
        ] {
            assert_eq!(Condition::parse(cond).unwrap().to_string(), words, "{cond}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "tier = 'prod'",
            "tier == prod",
            "tier ==",
            "(true",
            "tier in ['a'",
            "true true",
            "tier == 'x",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }
}
