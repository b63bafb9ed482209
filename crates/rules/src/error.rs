//! What can go wrong: compile-time diagnostics (with line, column, source line and caret) and
//! the evaluation errors that make one `allow` fail.
//!
//! Diagnostics are values, not panics or strings, so the CLI and the admin API can render them
//! however they like; `Display` gives the conventional compiler form.

use std::fmt;

use crate::lexer::Span;

/// One problem found while compiling a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// 1-based line and column (column in characters).
    pub line: usize,
    pub column: usize,
    /// The text of the offending line (without its newline).
    pub source_line: String,
    /// Width of the caret underline, at least 1.
    pub width: usize,
}

impl Diagnostic {
    pub fn new(src: &str, span: Span, message: impl Into<String>) -> Self {
        let start = (span.start as usize).min(src.len());
        let start = (0..=start)
            .rev()
            .find(|&i| src.is_char_boundary(i))
            .unwrap_or(0);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let mut source_line = src[line_start..line_end].trim_end_matches('\r').to_string();
        if source_line.len() > 200 {
            let mut cut = 200;
            while !source_line.is_char_boundary(cut) {
                cut -= 1;
            }
            source_line.truncate(cut);
        }
        let end = (span.end as usize).clamp(start, line_end);
        let width = src
            .get(start..end)
            .map_or(1, |s| s.chars().count())
            .clamp(1, 80);
        Diagnostic {
            message: message.into(),
            line,
            column,
            source_line,
            width,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, "error")
    }
}

impl Diagnostic {
    /// The conventional compiler form, as an `error` or a `warning`.
    fn write(&self, f: &mut fmt::Formatter<'_>, kind: &str) -> fmt::Result {
        let gutter = self.line.to_string().len();
        writeln!(f, "{kind}: {}", self.message)?;
        writeln!(f, "{:gutter$}--> line {}:{}", "", self.line, self.column)?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{:gutter$} | {}{}", "", pad, "^".repeat(self.width))
    }
}

/// A diagnostic shown as a warning.
struct Warning<'d>(&'d Diagnostic);

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, "warning")
    }
}

/// Renders warnings (see [`crate::Ruleset::warnings`]), separated by blank lines.
pub fn render_warnings(warnings: &[Diagnostic]) -> String {
    warnings
        .iter()
        .map(|d| Warning(d).to_string())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Renders several diagnostics, separated by blank lines.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Why an expression could not produce a value. Any of these makes its `allow` not grant; a
/// [`EvalError::is_fatal`] one (a limit) denies the whole request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("Null value error: {0}")]
    Null(String),
    #[error("Property {0} is undefined on object.")]
    MissingKey(String),
    #[error("type error: {0}")]
    Type(String),
    #[error("{0}")]
    Invalid(String),
    #[error("integer overflow in {0}")]
    Overflow(String),
    #[error("document read failed: {0}")]
    Read(String),
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A list request's rule depends on something its query does not pin down.
    #[error("cannot be proven for every document the query could return: {0}")]
    Unprovable(String),
}

impl EvalError {
    /// A limit error ends the evaluation of the whole request.
    pub fn is_fatal(&self) -> bool {
        matches!(self, EvalError::Limit(_))
    }

    pub(crate) fn ty(msg: impl Into<String>) -> Self {
        EvalError::Type(msg.into())
    }
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        EvalError::Invalid(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_points_at_the_column() {
        let src = "line one\n  bad thing\n";
        let d = Diagnostic::new(src, Span::new(11, 14), "no");
        assert_eq!((d.line, d.column, d.width), (2, 3, 3));
        assert_eq!(d.source_line, "  bad thing");
        let shown = d.to_string();
        assert!(shown.contains("line 2:3"), "{shown}");
        assert!(shown.ends_with("|   ^^^"), "{shown}");
    }

    #[test]
    fn diagnostic_at_end_of_input_is_safe() {
        let src = "abc";
        let d = Diagnostic::new(src, Span::new(99, 120), "eof");
        assert_eq!((d.line, d.column, d.width), (1, 4, 1));
    }
}
