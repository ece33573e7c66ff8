//! `ls --filter`: expressions `KEY OP VALUE` that keep the rows matching all of them.
//!
//! Keys: `size` (bytes on disk: `size>1GB`), `age` (time since last use, `accessed` as in
//! `hf cache ls`: `age>30d`; a row never used by modelcache has no age and never
//! matches), `type` (`model`, `dataset`, `space`, `url`), `pinned` (`yes`/`no`), `name`
//! (a glob with `*` and `?` on the id, as `ls` shows it or as `hf cache ls` does:
//! `name=org/*`, `name=dataset/*`). Operators: `=`, `!=` for every key, and `>`, `>=`,
//! `<`, `<=` for `size` and `age`.

use std::time::Duration;

use anyhow::Result;
use modelcache::{ByteSize, RepoInfo, Timestamp, parse_duration};

use crate::app::shorten;
use crate::report::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds<T: PartialOrd>(self, left: &T, right: &T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
        }
    }
}

/// One parsed `--filter`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    Size(Op, u64),
    Age(Op, Duration),
    Type(bool, String),
    Pinned(bool, bool),
    Name(bool, String),
}

fn usage(expr: &str, why: &str) -> anyhow::Error {
    Failure::usage(
        format!("invalid `--filter` `{}`: {why}", shorten(expr)),
        "write `KEY OP VALUE` with KEY one of `size`, `age`, `type`, `pinned`, `name`, e.g. `size>1GB`, `age>30d`, `type=dataset`, `pinned=no`, `name=org/*`",
    )
    .into()
}

impl Filter {
    /// Parses `KEY OP VALUE` (spaces around `OP` allowed).
    pub(crate) fn parse(expr: &str) -> Result<Filter> {
        let at = expr.find(['=', '!', '<', '>']).ok_or_else(|| usage(expr, "it has no operator"))?;
        let key = expr[..at].trim().to_ascii_lowercase();
        let rest = &expr[at..];
        let (op, len) =
            [("==", Op::Eq), ("!=", Op::Ne), (">=", Op::Ge), ("<=", Op::Le), ("=", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
                .into_iter()
                .find_map(|(s, op)| rest.starts_with(s).then_some((op, s.len())))
                .ok_or_else(|| usage(expr, "unknown operator"))?;
        let value = rest[len..].trim();
        if value.is_empty() {
            return Err(usage(expr, "it has no value"));
        }
        let equality = |what: &str| {
            if matches!(op, Op::Eq | Op::Ne) {
                Ok(op == Op::Eq)
            } else {
                Err(usage(expr, &format!("`{what}` takes `=` or `!=`")))
            }
        };
        match key.as_str() {
            "size" => Ok(Filter::Size(op, ByteSize::parse(value).map_err(|e| usage(expr, &e.to_string()))?.bytes())),
            "age" | "accessed" => Ok(Filter::Age(op, parse_duration(value).map_err(|e| usage(expr, &e.to_string()))?)),
            "type" => {
                let t = value.to_ascii_lowercase();
                let t = t.strip_suffix('s').unwrap_or(&t).to_owned();
                if !matches!(t.as_str(), "model" | "dataset" | "space" | "url") {
                    return Err(usage(expr, "the type is `model`, `dataset`, `space` or `url`"));
                }
                Ok(Filter::Type(equality("type")?, t))
            }
            "pinned" => {
                let v = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" | "1" => true,
                    "no" | "false" | "0" => false,
                    _ => return Err(usage(expr, "`pinned` is `yes` or `no`")),
                };
                Ok(Filter::Pinned(equality("pinned")?, v))
            }
            "name" | "id" => Ok(Filter::Name(equality("name")?, value.to_owned())),
            _ => Err(usage(expr, &format!("unknown key `{}`", shorten(&key)))),
        }
    }

    /// Whether `r` passes this filter at `now`.
    pub(crate) fn keeps(&self, r: &RepoInfo, now: Timestamp) -> bool {
        match self {
            Filter::Size(op, n) => op.holds(&r.size_bytes, n),
            Filter::Age(op, d) => r.last_used.is_some_and(|t| op.holds(&t.elapsed_until(now), d)),
            Filter::Type(eq, t) => (r.repo_type.as_str() == t) == *eq,
            Filter::Pinned(eq, v) => (r.pinned == *v) == *eq,
            Filter::Name(eq, glob) => {
                let hf_id = format!("{}/{}", r.repo_type, r.repo_id);
                (matches(glob, &r.repo_id) || matches(glob, &r.model_id) || matches(glob, &hf_id)) == *eq
            }
        }
    }
}

/// `*` (any run of characters, `/` included) and `?` (one character) glob matching.
fn matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // ok[j]: whether the glob so far matches the first j characters.
    let mut ok = vec![false; t.len() + 1];
    ok[0] = true;
    for c in g {
        let mut next = vec![false; t.len() + 1];
        match c {
            '*' => {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= ok[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=t.len() {
                    next[j] = ok[j - 1] && (c == '?' || c == t[j - 1]);
                }
            }
        }
        ok = next;
    }
    ok[t.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_or_say_what_is_wrong() {
        assert_eq!(Filter::parse("size>1GB").unwrap(), Filter::Size(Op::Gt, 1_000_000_000));
        assert_eq!(Filter::parse("age >= 30d").unwrap(), Filter::Age(Op::Ge, Duration::from_secs(30 * 86_400)));
        assert_eq!(Filter::parse("type=datasets").unwrap(), Filter::Type(true, "dataset".into()));
        assert_eq!(Filter::parse("pinned!=yes").unwrap(), Filter::Pinned(false, true));
        assert_eq!(Filter::parse("name=org/*").unwrap(), Filter::Name(true, "org/*".into()));
        for bad in ["size", "size>", "size>lots", "colour=red", "type>model", "type=bucket", "pinned=maybe", "age<soon"] {
            let e = Filter::parse(bad).unwrap_err();
            assert_eq!(crate::report::kind(&e).exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn globs_match_whole_ids() {
        assert!(matches("org/*", "org/model") && matches("*model", "org/model") && matches("org/m?del", "org/model"));
        assert!(!matches("org/*", "other/model") && !matches("model", "org/model") && matches("*", ""));
    }
}
