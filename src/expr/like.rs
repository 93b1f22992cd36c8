//! `LIKE` / `ILIKE` patterns (`%` any run, `_` one character, optional escape
//! character), compiled once: common shapes become plain `str` searches, the rest a regex.

use std::sync::Mutex;

use regex::Regex;

#[derive(Debug)]
pub(crate) enum LikeMatcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

#[derive(Debug, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Many,
}

fn tokenize(pattern: &str, escape: Option<char>) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => toks.push(Tok::Lit(n)),
                None => return Err("LIKE pattern ends with its escape character".into()),
            }
        } else if c == '%' {
            // Consecutive `%` mean the same as one; collapsing keeps the shapes simple.
            if toks.last() != Some(&Tok::Many) {
                toks.push(Tok::Many);
            }
        } else if c == '_' {
            toks.push(Tok::One);
        } else {
            toks.push(Tok::Lit(c));
        }
    }
    Ok(toks)
}

fn literal(toks: &[Tok]) -> Option<String> {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

impl LikeMatcher {
    /// Compiles a pattern; `Err` is a message for a malformed pattern.
    pub(crate) fn new(pattern: &str, escape: Option<char>, case_insensitive: bool) -> Result<LikeMatcher, String> {
        let toks = tokenize(pattern, escape)?;
        if !case_insensitive {
            let n = toks.len();
            let starts = toks.first() == Some(&Tok::Many);
            let ends = n > 1 && toks.last() == Some(&Tok::Many);
            let inner = &toks[usize::from(starts)..n - usize::from(ends)];
            if let Some(lit) = literal(inner) {
                return Ok(match (starts, ends) {
                    (false, false) => LikeMatcher::Exact(lit),
                    (false, true) => LikeMatcher::Prefix(lit),
                    (true, false) => LikeMatcher::Suffix(lit),
                    (true, true) => LikeMatcher::Contains(lit),
                });
            }
        }
        let mut re = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
        let mut buf = [0u8; 4];
        for t in &toks {
            match t {
                Tok::Lit(c) => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
                Tok::One => re.push('.'),
                Tok::Many => re.push_str(".*"),
            }
        }
        re.push('$');
        Regex::new(&re).map(LikeMatcher::Regex).map_err(|e| format!("invalid LIKE pattern: {e}"))
    }

    #[inline]
    pub(crate) fn is_match(&self, s: &str) -> bool {
        match self {
            LikeMatcher::Exact(p) => s == p,
            LikeMatcher::Prefix(p) => s.starts_with(p.as_str()),
            LikeMatcher::Suffix(p) => s.ends_with(p.as_str()),
            LikeMatcher::Contains(p) => s.contains(p.as_str()),
            LikeMatcher::Regex(r) => r.is_match(s),
        }
    }
}

/// Patterns that only arrive at run time are compiled on first use and kept in a
/// small per-expression cache (cleared when full, since data-driven patterns are
/// usually few).
#[derive(Default)]
pub(crate) struct LikeCache {
    map: Mutex<ahash::HashMap<CacheKey, std::sync::Arc<LikeMatcher>>>,
}

/// Pattern and escape character (case sensitivity is fixed per expression).
type CacheKey = (String, Option<char>);

const CACHE_LIMIT: usize = 256;

impl LikeCache {
    pub(crate) fn get(
        &self,
        pattern: &str,
        escape: Option<char>,
        case_insensitive: bool,
    ) -> Result<std::sync::Arc<LikeMatcher>, String> {
        let key = (pattern.to_string(), escape);
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(&key) {
            return Ok(m.clone());
        }
        let m = std::sync::Arc::new(LikeMatcher::new(pattern, escape, case_insensitive)?);
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(key, m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(p: &str, s: &str) -> bool {
        LikeMatcher::new(p, None, false).unwrap().is_match(s)
    }

    #[test]
    fn shapes() {
        assert!(matches!(LikeMatcher::new("abc", None, false).unwrap(), LikeMatcher::Exact(_)));
        assert!(matches!(LikeMatcher::new("abc%", None, false).unwrap(), LikeMatcher::Prefix(_)));
        assert!(matches!(LikeMatcher::new("%abc", None, false).unwrap(), LikeMatcher::Suffix(_)));
        assert!(matches!(LikeMatcher::new("%%abc%", None, false).unwrap(), LikeMatcher::Contains(_)));
        assert!(matches!(LikeMatcher::new("a_c", None, false).unwrap(), LikeMatcher::Regex(_)));
    }

    #[test]
    fn matching() {
        assert!(like("/api/%", "/api/x"));
        assert!(!like("/api/%", "/app/x"));
        assert!(like("%.png", "a.png"));
        assert!(like("%x%", "axb"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "abbc"));
        assert!(like("a%c%e", "abcde"));
        assert!(like("%", ""));
        assert!(like("a.c", "a.c"));
        assert!(!like("a.c", "abc"));
        assert!(like("h_llo\nw%", "hello\nworld"));
        assert!(like("é_", "éa"));
    }

    #[test]
    fn escape_and_case() {
        let m = LikeMatcher::new("100!%", Some('!'), false).unwrap();
        assert!(m.is_match("100%"));
        assert!(!m.is_match("1000"));
        assert!(LikeMatcher::new("abc!", Some('!'), false).is_err());
        let m = LikeMatcher::new("%HELLO_", None, true).unwrap();
        assert!(m.is_match("say hello!"));
    }

    #[test]
    fn cache_reuses_matchers() {
        let c = LikeCache::default();
        let a = c.get("a%", None, false).unwrap();
        let b = c.get("a%", None, false).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
