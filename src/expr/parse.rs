//! Text to sqlparser AST: the parser call, turning sqlparser's errors and line/column
//! spans into byte offsets and short messages, did-you-mean hints, and splitting a
//! call's argument text for `compile_call`.

use sqlparser::ast;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Span, Token, Tokenizer};

use super::CompileError;

/// Maps sqlparser's 1-based line/column (columns count characters) to byte offsets.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    pub(crate) fn offset(&self, loc: Location) -> usize {
        if loc.line == 0 {
            return 0;
        }
        let Some(&start) = usize::try_from(loc.line - 1).ok().and_then(|l| self.starts.get(l)) else {
            return self.text.len();
        };
        let col = usize::try_from(loc.column.saturating_sub(1)).unwrap_or(usize::MAX);
        self.text[start..].char_indices().nth(col).map_or(self.text.len(), |(i, _)| start + i)
    }

    pub(crate) fn span_start(&self, span: Span) -> usize {
        self.offset(span.start)
    }
}

/// The most operators (`AND`, `+`, `||`, `IS`, `::`, `.`, `[`...) one expression may
/// have. A chain of N operators is a tree N deep, and parsing, compiling, evaluating
/// and dropping it recurse that deep: 20,000 `+` terms overflowed the stack. Nesting of
/// parentheses is bounded separately by the parser. Documented in docs/limits.md.
pub const MAX_OPERATORS: usize = 500;

/// Refuses an expression with more than [`MAX_OPERATORS`] operators, at the first
/// operator past the limit; counted on tokens, before any tree is built.
fn check_operator_count(text: &str) -> Result<(), CompileError> {
    let dialect = GenericDialect {};
    // A tokenizer error is reported by the parser, with its position.
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize_with_location() else { return Ok(()) };
    let mut operators = tokens.iter().filter(|t| match &t.token {
        Token::Word(w) => {
            use sqlparser::keywords::Keyword as K;
            matches!(
                w.keyword,
                K::AND
                    | K::OR
                    | K::NOT
                    | K::IS
                    | K::IN
                    | K::LIKE
                    | K::ILIKE
                    | K::BETWEEN
                    | K::SIMILAR
                    | K::REGEXP
                    | K::RLIKE
                    | K::COLLATE
                    | K::AT
                    | K::DIV
            )
        }
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace
        | Token::Colon
        | Token::SemiColon => false,
        _ => true,
    });
    match operators.nth(MAX_OPERATORS) {
        None => Ok(()),
        Some(t) => Err(CompileError {
            message: format!("the expression has more than {MAX_OPERATORS} operators"),
            offset: LineIndex::new(text).offset(t.span.start),
            hint: Some(
                "split it, e.g. across several `filter` steps or `map` fields; `x IN (a, b, ...)` replaces a chain of `OR`s"
                    .into(),
            ),
        }),
    }
}

/// Parses one whole expression; trailing tokens are an error.
pub(crate) fn parse_expr(text: &str) -> Result<ast::Expr, CompileError> {
    check_operator_count(text)?;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(|e| parser_error(text, e))?;
    let expr = parser.parse_expr().map_err(|e| parser_error(text, e))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(CompileError {
            message: format!("expected end of expression, found `{}`", next.token),
            offset: LineIndex::new(text).offset(next.span.start),
            hint: None,
        });
    }
    Ok(expr)
}

/// Rewrites "Expected: an expression, found: ) at Line: 1, Column: 5" as
/// "expected an expression, found `)`" at the byte offset of line 1 column 5.
fn parser_error(text: &str, e: ParserError) -> CompileError {
    let raw = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => {
            return CompileError { message: "expression is nested too deeply".into(), offset: 0, hint: None }
        }
    };
    let (msg, offset) = match raw.rfind(" at Line: ") {
        Some(i) => (&raw[..i], parse_location(&raw[i + 10..]).map(|l| LineIndex::new(text).offset(l))),
        None => (raw.as_str(), None),
    };
    let mut message = match msg.strip_prefix("Expected: ") {
        Some(rest) => format!("expected {rest}"),
        None => lower_first(msg),
    };
    if let Some(i) = message.find(", found: ") {
        let found = &message[i + 9..];
        let found = if found == "EOF" { "end of input".to_string() } else { format!("`{found}`") };
        message = format!("{}, found {found}", &message[..i]);
    }
    // Without a location the parser ran out of input.
    CompileError { message, offset: offset.unwrap_or(text.len()), hint: None }
}

fn parse_location(s: &str) -> Option<Location> {
    let (line, col) = s.split_once(", Column: ")?;
    Some(Location::new(line.trim().parse().ok()?, col.trim().parse().ok()?))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub(crate) use crate::diag::did_you_mean;

/// Byte ranges of the top-level arguments of the first call in `text`
/// (`f(a, g(b, c))` gives `a` and `g(b, c)`), trimmed; `None` if it cannot tell.
pub(crate) fn split_call_args(text: &str) -> Option<Vec<(usize, usize)>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, text).tokenize_with_location().ok()?;
    let lines = LineIndex::new(text);
    let mut depth = 0usize;
    let mut start = None;
    let mut ranges = Vec::new();
    for t in &tokens {
        let at = lines.offset(t.span.start);
        match &t.token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                if depth == 1 {
                    start = Some(at + 1);
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if depth == 1 {
                    let s = start?;
                    if !text[s..at].trim().is_empty() || !ranges.is_empty() {
                        ranges.push(trimmed(text, s, at));
                    }
                    return Some(ranges);
                }
                depth = depth.checked_sub(1)?;
            }
            Token::Comma if depth == 1 => {
                ranges.push(trimmed(text, start?, at));
                start = Some(at + 1);
            }
            _ => {}
        }
    }
    None
}

fn trimmed(text: &str, s: usize, e: usize) -> (usize, usize) {
    let slice = &text[s..e];
    let lead = slice.len() - slice.trim_start().len();
    (s + lead, s + lead + slice.trim().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_operators_are_refused_before_parsing() {
        let ok = vec!["a"; MAX_OPERATORS + 1].join(" + ");
        assert!(parse_expr(&ok).is_ok());
        let long = vec!["a"; 20_000].join(" + ");
        let e = parse_expr(&long).unwrap_err();
        assert!(e.message.contains("more than 500 operators"), "{}", e.message);
        assert_eq!(e.offset, (MAX_OPERATORS + 1) * 4 - 2);
        let list = format!("x IN ({})", vec!["'v'"; 5_000].join(", "));
        assert!(parse_expr(&list).is_ok(), "literals and commas are not operators");
    }

    #[test]
    fn syntax_errors_have_offsets_and_short_messages() {
        let e = parse_expr("a = )").unwrap_err();
        assert_eq!(e.message, "expected an expression, found `)`");
        assert_eq!(e.offset, 4);
        let e = parse_expr("status = 200 AND").unwrap_err();
        assert_eq!(e.message, "expected an expression, found end of input");
        assert_eq!(e.offset, 16);
        let e = parse_expr("a b").unwrap_err();
        assert_eq!(e.message, "expected end of expression, found `b`");
        assert_eq!(e.offset, 2);
        let e = parse_expr("x = 'abc").unwrap_err();
        assert!(e.message.starts_with("unterminated string"), "{}", e.message);
        assert_eq!(e.offset, 4);
    }

    #[test]
    fn offsets_count_characters_and_lines() {
        let text = "é = 1\n AND )";
        let e = parse_expr(text).unwrap_err();
        assert_eq!(&text[e.offset..], ")");
    }

    #[test]
    fn hints() {
        assert_eq!(did_you_mean("urll", ["url", "status"]), Some("did you mean `url`?".into()));
        assert_eq!(did_you_mean("URL", ["url"]), Some("did you mean `url`?".into()));
        assert_eq!(did_you_mean("zzzzz", ["url"]), None);
    }

    #[test]
    fn call_args_split_at_top_level_commas() {
        let t = "sum( a + f(b, c) , 'x,y' )";
        let r: Vec<&str> = split_call_args(t).unwrap().iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(r, ["a + f(b, c)", "'x,y'"]);
        assert_eq!(split_call_args("count()").unwrap(), vec![]);
        let t = "max(tags[1])";
        let r: Vec<&str> = split_call_args(t).unwrap().iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(r, ["tags[1]"]);
    }
}
