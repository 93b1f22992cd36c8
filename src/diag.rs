//! Spec diagnostics: collected (never stop at the first), sorted by position, and
//! rendered like rustc (`file:line:col: error: message`, an excerpt with a caret, a
//! help line) or as JSON for tools.

use crate::spec::node::Span;
use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

/// What a component's own check (`SourceConfig::check`, `SinkConfig::check`) finds
/// wrong with its configuration; validation reports it at the setting it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// An error whose consequences later stages would report as errors of their own
    /// (an unset `${VAR}` leaves a value empty): checking stops after its stage.
    root_cause: bool,
}

impl Diagnostics {
    pub fn error(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        self.items.push(Diagnostic { span, message: message.into(), hint });
    }

    /// An error that makes later errors follow from it (see `root_cause`).
    pub fn root_cause(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        self.error(span, message, hint);
        self.root_cause = true;
    }

    /// Whether a root cause was reported: later stages are not run.
    pub fn has_root_cause(&self) -> bool {
        self.root_cause
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
        self.root_cause |= other.root_cause;
    }

    /// Sorted by position; exact duplicates (the same message at the same place,
    /// reached by two rules) are reported once.
    pub fn sorted(mut self) -> Diagnostics {
        self.items.sort_by(|a, b| (a.span, &a.message).cmp(&(b.span, &b.message)));
        self.items.dedup();
        self
    }

    /// Renders every diagnostic as text with source excerpts.
    pub fn render(&self, file: &str, source: &str) -> String {
        let lines: Vec<&str> = source.lines().collect();
        let mut out = String::new();
        for d in &self.items {
            let _ = writeln!(out, "{file}:{}:{}: error: {}", d.span.line, d.span.col, d.message);
            if let Some(line) = d.span.line.checked_sub(1).and_then(|i| lines.get(i)) {
                let number = d.span.line.to_string();
                let pad = " ".repeat(number.len());
                let indent: String = line
                    .chars()
                    .take(d.span.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{number} | {line}");
                let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(d.span.len.max(1)));
                if let Some(hint) = &d.hint {
                    let _ = writeln!(out, "{pad} = help: {hint}");
                }
            } else if let Some(hint) = &d.hint {
                let _ = writeln!(out, "  = help: {hint}");
            }
        }
        out
    }

    /// The diagnostics as JSON objects `{file, line, column, message, hint}`.
    pub fn to_json(&self, file: &str) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .map(|d| {
                serde_json::json!({
                    "file": file,
                    "line": d.span.line,
                    "column": d.span.col,
                    "message": d.message,
                    "hint": d.hint,
                })
            })
            .collect()
    }
}

/// ``did you mean `X`?`` for the closest candidate (case-insensitive edit distance,
/// transpositions counted once), when it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = word.to_lowercase();
    let (distance, best) = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .min_by_key(|(d, _)| *d)?;
    let limit = (word.chars().count() / 3).max(1);
    (distance <= limit).then(|| format!("did you mean `{best}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_excerpt_with_caret_and_help() {
        let mut d = Diagnostics::default();
        d.error(Span::new(2, 3, 3), "unknown field `pth`", did_you_mean("pth", ["path", "format"]));
        let text = d.render("p.yaml", "a:\n  pth: x\n");
        assert_eq!(
            text,
            "p.yaml:2:3: error: unknown field `pth`\n  |\n2 |   pth: x\n  |   ^^^\n  = help: did you mean `path`?\n"
        );
    }

    #[test]
    fn no_hint_for_distant_words() {
        assert_eq!(did_you_mean("zzz", ["path", "format"]), None);
    }
}
