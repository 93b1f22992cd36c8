//! `${VAR}` and `${VAR:-default}` substitution from the environment.
//!
//! Substitution happens per scalar as the YAML is read, not on the raw text, so that
//! every position in a diagnostic still matches the file the user wrote. `$${` writes a
//! literal `${`. An unset variable without a default is an error at its position,
//! and the only kind reported with it (see `Diagnostics::root_cause`).
//!
//! One exception: in the replacement (third) argument of a `regexp_replace(...)` call,
//! `${name}` is the regex's reference to a named capture group and stays as written;
//! substituting it from the environment would silently change what the expression
//! does (and let the environment inject group references).

use super::node::Span;
use crate::diag::Diagnostics;

pub fn interpolate(text: &str, span: Span, env: &dyn Fn(&str) -> Option<String>, diags: &mut Diagnostics) -> String {
    if !text.contains('$') {
        return text.to_string();
    }
    let protected = regexp_replacements(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed_chars = 0;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        consumed_chars += rest[..pos].chars().count();
        let after = &rest[pos..];
        let at = text.len() - after.len();
        if after.starts_with("${") && protected.iter().any(|r| r.contains(&at)) {
            out.push_str("${");
            rest = &after[2..];
            consumed_chars += 2;
        } else if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            consumed_chars += 3;
        } else if let Some(body) = after.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                diags.error(
                    span.shifted(consumed_chars, 2),
                    "unterminated `${` in variable reference",
                    Some("write `${NAME}` or `${NAME:-default}`; `$${` is a literal `${`".into()),
                );
                out.push_str(after);
                return out;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let len = end + 3;
            if !valid {
                diags.error(
                    span.shifted(consumed_chars, len),
                    format!("invalid variable name `{name}`"),
                    Some("variable names use letters, digits and `_`".into()),
                );
            } else {
                match env(name).or_else(|| default.map(str::to_string)) {
                    Some(v) => out.push_str(&v),
                    // What the value would have been is unknown: errors about the
                    // empty value it leaves would only repeat this one.
                    None => diags.root_cause(
                        span.shifted(consumed_chars, len),
                        format!("environment variable `{name}` is not set"),
                        Some(format!("set it, or give a default: `${{{name}:-value}}`")),
                    ),
                }
            }
            consumed_chars += after[..len].chars().count();
            rest = &after[len..];
        } else {
            out.push('$');
            rest = &after[1..];
            consumed_chars += 1;
        }
    }
    out.push_str(rest);
    out
}

/// Byte ranges of `text` that are the replacement argument of a `regexp_replace`
/// call, the argument list split on SQL tokens as the expression parser splits it.
fn regexp_replacements(text: &str) -> Vec<std::ops::Range<usize>> {
    const NAME: &str = "regexp_replace";
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(i) =
        text.as_bytes()[from..].windows(NAME.len()).position(|w| w.eq_ignore_ascii_case(NAME.as_bytes()))
    {
        let at = from + i;
        let is_call = text[at + NAME.len()..].trim_start().starts_with('(');
        if is_call {
            if let Some(args) = crate::expr::split_call_args(&text[at..]) {
                if let Some(&(start, end)) = args.get(2) {
                    ranges.push(at + start..at + end);
                }
            }
        }
        from = at + NAME.len();
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (String, Diagnostics) {
        let mut d = Diagnostics::default();
        let env = |k: &str| (k == "HOME_DIR").then(|| "/home/u".to_string());
        let out = interpolate(text, Span::new(1, 1, 1), &env, &mut d);
        (out, d)
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        assert_eq!(run("${HOME_DIR}/x").0, "/home/u/x");
        assert_eq!(run("${NOPE:-fallback}").0, "fallback");
        assert_eq!(run("$${HOME_DIR} costs $5").0, "${HOME_DIR} costs $5");
    }

    #[test]
    fn a_regexp_replace_replacement_keeps_its_group_references() {
        let text = r"regexp_replace(s, '(?P<w>\w+)-${HOME_DIR}', '${w}:${HOME_DIR}') || '${HOME_DIR}'";
        let (out, d) = run(text);
        assert!(d.is_empty());
        assert_eq!(out, r"regexp_replace(s, '(?P<w>\w+)-/home/u', '${w}:${HOME_DIR}') || '/home/u'");
        let (out, d) = run("REGEXP_REPLACE(a, 'x', '${first}') = ${HOME_DIR}");
        assert!(d.is_empty(), "an unset name in the replacement is a group, not a variable");
        assert_eq!(out, "REGEXP_REPLACE(a, 'x', '${first}') = /home/u");
    }

    #[test]
    fn unset_variable_is_an_error_at_its_column() {
        let (_, d) = run("ab${NOPE}");
        assert_eq!(d.len(), 1);
        assert_eq!(d.items()[0].span, Span::new(1, 3, 7));
    }
}
