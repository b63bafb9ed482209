//! Tokens of the rules language, with Firestore's lexical rules (as the emulator applies them).
//!
//! - Whitespace is space, tab, CR, LF and form feed; `//` and `/* */` are comments. Any other
//!   character that starts no token (a non-breaking space, a byte-order mark, `#`, a non-ASCII
//!   letter outside a string) is an error.
//! - A path segment is one token: `/` followed by `A-Z a-z 0-9 - . _ ~ & ' * + : @` or `%HH`,
//!   or by such characters in parentheses (`/(default)`). So `4/2` is `4` and the path segment
//!   `/2` — a compile error, as in Firebase — and division needs a space after the `/`. A
//!   comment starting at the same `/` wins when it is at least as long.
//! - Numbers are decimal: `1`, `1.5`, `1.` and `.5`; there are no exponents and no hex.
//! - Identifiers may contain `$` (`$b`); a lone `$` is a token (`/$(…)`).
//! - Keywords (`allow`, `if`, `in`, `is`, `let`, …, and the reserved `break continue else for
//!   package var while`) are not identifiers; after a `.` any word but `rules_version` names a
//!   field.
//! - Strings are quoted with `'` or `"`; the escapes are `\n \r \t \b \f \\ \' \"`, `\xHH`,
//!   `\uHHHH` and three octal digits (`\000` to `\377`). A raw line break, backspace or form
//!   feed, or any other escape, leaves the string unclosed: an error. `b'…'` is bytes. There
//!   are no raw strings.
//!
//! The whole source is tokenised up front ([`lex`]); the parser walks the token list.

use crate::error::Diagnostic;

/// A byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Token kinds. Keywords are [`Tok::Keyword`]; the parser tells them apart by text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Ident,
    Keyword,
    Int,
    Float,
    Str,
    Bytes,
    /// `/segment` or `/(segment)`: one segment of a path.
    PathSegment,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Colon,
    Dot,
    Question,
    Bang,
    Assign,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    AndAnd,
    OrOr,
    Dollar,
    /// `@`, `++` and `--`: tokens no expression accepts.
    Unusable,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token is named in "expected …" messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Ident => "a name",
            Tok::Keyword => "a keyword",
            Tok::Int => "an integer",
            Tok::Float => "a float",
            Tok::Str => "a string",
            Tok::Bytes => "a bytes literal",
            Tok::PathSegment => "a path segment",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::Comma => "','",
            Tok::Semi => "';'",
            Tok::Colon => "':'",
            Tok::Dot => "'.'",
            Tok::Question => "'?'",
            Tok::Bang => "'!'",
            Tok::Assign => "'='",
            Tok::EqEq => "'=='",
            Tok::NotEq => "'!='",
            Tok::Lt => "'<'",
            Tok::Le => "'<='",
            Tok::Gt => "'>'",
            Tok::Ge => "'>='",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Star => "'*'",
            Tok::Slash => "'/'",
            Tok::Percent => "'%'",
            Tok::AndAnd => "'&&'",
            Tok::OrOr => "'||'",
            Tok::Dollar => "'$'",
            Tok::Unusable => "an operator the language does not have",
            Tok::Eof => "end of file",
        }
    }
}

/// The keywords: reserved words that cannot name a variable, a function or a method.
pub const KEYWORDS: &[&str] = &[
    "allow",
    "false",
    "function",
    "if",
    "import",
    "in",
    "is",
    "let",
    "match",
    "null",
    "return",
    "rules_version",
    "service",
    "true",
    "break",
    "continue",
    "else",
    "for",
    "package",
    "var",
    "while",
];

/// One token with its place in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
}

/// Tokenises a whole source. Characters that start no token, and strings left unclosed, are
/// reported; the tokens around them are still produced so that parsing can go on.
pub fn lex(src: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        diags: Vec::new(),
    };
    lx.run();
    let end = src.len();
    lx.tokens.push(Token {
        kind: Tok::Eof,
        span: Span::new(end, end),
    });
    (lx.tokens, lx.diags)
}

/// Parsing stops reporting lexical errors after this many.
const MAX_LEX_ERRORS: usize = 20;

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    tokens: Vec<Token>,
    diags: Vec<Diagnostic>,
}

impl Lexer<'_> {
    fn push(&mut self, kind: Tok, len: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(self.pos, self.pos + len),
        });
        self.pos += len;
    }

    fn error(&mut self, start: usize, end: usize, msg: String) {
        if self.diags.len() < MAX_LEX_ERRORS {
            self.diags
                .push(Diagnostic::new(self.src, Span::new(start, end), msg));
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0c) {
                self.pos += 1;
                continue;
            }
            if c == b'/' {
                let comment = self.comment_len();
                let segment = self.path_segment_len();
                if comment > 0 && comment >= segment {
                    self.pos += comment;
                } else if segment > 0 {
                    self.push(Tok::PathSegment, segment);
                } else {
                    if self.bytes[self.pos..].starts_with(b"/*") {
                        self.error(
                            self.pos,
                            self.pos + 2,
                            "this comment is never closed (no '*/')".into(),
                        );
                    }
                    self.push(Tok::Slash, 1);
                }
                continue;
            }
            if c.is_ascii_digit() || (c == b'.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
            {
                let len = self.number_len();
                let kind = if self.bytes[self.pos..self.pos + len].contains(&b'.') {
                    Tok::Float
                } else {
                    Tok::Int
                };
                self.push(kind, len);
                continue;
            }
            if matches!(c, b'b' | b'B')
                && matches!(self.peek(1), Some(b'\'' | b'"'))
                && let (len, Ok(())) = string_len(&self.bytes[self.pos + 1..])
            {
                self.push(Tok::Bytes, len + 1);
                continue;
            }
            if c == b'\'' || c == b'"' {
                self.string();
                continue;
            }
            let word = self.bytes[self.pos..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$')
                .count();
            if (c.is_ascii_alphabetic() || c == b'_' || c == b'$') && word > usize::from(c == b'$')
            {
                let text = &self.src[self.pos..self.pos + word];
                let kind = if KEYWORDS.contains(&text) {
                    Tok::Keyword
                } else {
                    Tok::Ident
                };
                self.push(kind, word);
                continue;
            }
            if let Some((kind, len)) = self.punctuation() {
                self.push(kind, len);
                continue;
            }
            self.unknown_character();
        }
    }

    /// A string starting at a quote: a token, or an error for one left unclosed.
    fn string(&mut self) {
        let start = self.pos;
        match string_len(&self.bytes[start..]) {
            (len, Ok(())) => self.push(Tok::Str, len),
            (len, Err(why)) => {
                let msg = match why {
                    Unclosed::End => "this string is never closed".to_string(),
                    Unclosed::Escape => {
                        let esc: String = self.src[start + len..].chars().take(2).collect();
                        format!(
                            "unknown escape '{esc}' in a string (use \\n \\r \\t \\b \\f \\\\ \\' \\\" \\xHH \\uHHHH or three octal digits)"
                        )
                    }
                    Unclosed::Control => {
                        "a string cannot hold a raw line break, backspace or form feed; close it on the same line".to_string()
                    }
                };
                self.error(start, start + len.max(1), msg);
                // Recover: the rest of the line (or up to the closing quote) is the string.
                let quote = self.bytes[start];
                let rest = &self.bytes[start + 1..];
                let close = rest
                    .iter()
                    .position(|&b| b == quote || b == b'\n')
                    .map_or(rest.len(), |i| i + usize::from(rest[i] == quote));
                self.push(Tok::Str, close + 1);
            }
        }
    }

    fn unknown_character(&mut self) {
        let start = self.pos;
        let ch = self.src[start..].chars().next().unwrap_or('\u{fffd}');
        let len = ch.len_utf8().max(1);
        let msg = match ch {
            '&' | '|' => format!("unexpected character '{ch}' (use '&&' or '||')"),
            '\u{feff}' => "unexpected byte-order mark; save the file as UTF-8 without a BOM".into(),
            '\u{a0}' => "unexpected non-breaking space".into(),
            _ => format!("unexpected character '{}'", ch.escape_debug()),
        };
        self.error(start, start + len, msg);
        self.pos += len;
    }

    /// The length of a comment starting here, or 0 (an unclosed `/*` is no comment).
    fn comment_len(&self) -> usize {
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(b"//") {
            return rest.iter().take_while(|b| **b != b'\n').count();
        }
        if rest.starts_with(b"/*") {
            return rest[2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(0, |end| end + 4);
        }
        0
    }

    /// The length of a path segment token starting here (at its `/`), or 0.
    fn path_segment_len(&self) -> usize {
        let rest = &self.bytes[self.pos + 1..];
        if rest.first() == Some(&b'(') {
            let inner = segment_chars(&rest[1..]);
            if inner > 0 && rest.get(1 + inner) == Some(&b')') {
                return inner + 3;
            }
            return 0;
        }
        match segment_chars(rest) {
            0 => 0,
            n => n + 1,
        }
    }

    /// `1`, `1.5`, `1.` (a float) or `.5`.
    fn number_len(&self) -> usize {
        let rest = &self.bytes[self.pos..];
        let int = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if rest.get(int) == Some(&b'.') {
            let frac = rest[int + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            return int + 1 + frac;
        }
        int
    }

    fn punctuation(&self) -> Option<(Tok, usize)> {
        let two = match (self.bytes[self.pos], self.peek(1)) {
            (b'&', Some(b'&')) => Some(Tok::AndAnd),
            (b'|', Some(b'|')) => Some(Tok::OrOr),
            (b'=', Some(b'=')) => Some(Tok::EqEq),
            (b'!', Some(b'=')) => Some(Tok::NotEq),
            (b'<', Some(b'=')) => Some(Tok::Le),
            (b'>', Some(b'=')) => Some(Tok::Ge),
            (b'-', Some(b'-')) | (b'+', Some(b'+')) => Some(Tok::Unusable),
            _ => None,
        };
        if let Some(kind) = two {
            return Some((kind, 2));
        }
        let one = match self.bytes[self.pos] {
            b'@' => Tok::Unusable,
            b':' => Tok::Colon,
            b',' => Tok::Comma,
            b'$' => Tok::Dollar,
            b'.' => Tok::Dot,
            b'=' => Tok::Assign,
            b'>' => Tok::Gt,
            b'{' => Tok::LBrace,
            b'[' => Tok::LBracket,
            b'(' => Tok::LParen,
            b'<' => Tok::Lt,
            b'-' => Tok::Minus,
            b'%' => Tok::Percent,
            b'!' => Tok::Bang,
            b'+' => Tok::Plus,
            b'?' => Tok::Question,
            b'}' => Tok::RBrace,
            b']' => Tok::RBracket,
            b')' => Tok::RParen,
            b';' => Tok::Semi,
            b'*' => Tok::Star,
            _ => return None,
        };
        Some((one, 1))
    }
}

/// The run of path segment characters at the start of `bytes`.
fn segment_chars(bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphanumeric() || b"-._~&'*+:@".contains(&c) {
            i += 1;
        } else if c == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// Why a string is unclosed.
enum Unclosed {
    End,
    Escape,
    Control,
}

/// The length of the string starting with the quote at `bytes[0]` (closed), or how far it got
/// and why it stopped.
fn string_len(bytes: &[u8]) -> (usize, Result<(), Unclosed>) {
    let quote = bytes[0];
    let mut i = 1;
    loop {
        match bytes.get(i) {
            None => return (i, Err(Unclosed::End)),
            Some(b'\n' | b'\r' | 0x08 | 0x0c) => return (i, Err(Unclosed::Control)),
            Some(&c) if c == quote => return (i + 1, Ok(())),
            Some(b'\\') => match escape_len(&bytes[i + 1..]) {
                Some(n) => i += 1 + n,
                None => return (i, Err(Unclosed::Escape)),
            },
            Some(_) => i += 1,
        }
    }
}

/// The length of the escape after a backslash, if it is one.
fn escape_len(bytes: &[u8]) -> Option<usize> {
    let hex = |n: usize| bytes.len() > n && bytes[1..=n].iter().all(u8::is_ascii_hexdigit);
    match bytes.first()? {
        b'n' | b'r' | b't' | b'b' | b'f' | b'\\' | b'\'' | b'"' => Some(1),
        b'x' if hex(2) => Some(3),
        b'u' if hex(4) => Some(5),
        b'0'..=b'3' if bytes.len() > 2 && bytes[1..3].iter().all(|b| (b'0'..=b'7').contains(b)) => {
            Some(3)
        }
        _ => None,
    }
}

/// The value of a closed string or bytes literal (`text` with its quotes and any `b` prefix).
/// In a string, `\xHH`, `\uHHHH` and octal escapes name a code point (a lone surrogate becomes
/// U+FFFD); in bytes they name a byte (the low byte of a `\u`).
pub fn unquote(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let is_bytes = matches!(bytes.first(), Some(b'b' | b'B'));
    let body = bytes
        .get(usize::from(is_bytes) + 1..bytes.len().saturating_sub(1))
        .unwrap_or(&[]);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let e = body.get(i + 1).copied().unwrap_or(b'\\');
        let simple = match e {
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'\\' | b'\'' | b'"' => Some(e),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
            continue;
        }
        let (code, len) = match e {
            b'x' => (radix(body.get(i + 2..i + 4), 16), 4),
            b'u' => (radix(body.get(i + 2..i + 6), 16), 6),
            _ => (radix(body.get(i + 1..i + 4), 8), 4),
        };
        if is_bytes || code < 0x80 {
            out.push((code & 0xff) as u8);
        } else {
            let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
        i += len;
    }
    out
}

fn radix(digits: Option<&[u8]>, radix: u32) -> u32 {
    digits
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|s| u32::from_str_radix(s, radix).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, &str)> {
        let (tokens, _) = lex(src);
        tokens
            .iter()
            .filter(|t| t.kind != Tok::Eof)
            .map(|t| (t.kind, &src[t.span.start as usize..t.span.end as usize]))
            .collect()
    }

    #[test]
    fn path_segments_and_division() {
        assert_eq!(
            kinds("/databases/$(db)/(default)"),
            vec![
                (Tok::PathSegment, "/databases"),
                (Tok::Slash, "/"),
                (Tok::Dollar, "$"),
                (Tok::LParen, "("),
                (Tok::Ident, "db"),
                (Tok::RParen, ")"),
                (Tok::PathSegment, "/(default)"),
            ]
        );
        // `4/2` is a number and a path segment; division needs a space.
        assert_eq!(kinds("4/2")[1], (Tok::PathSegment, "/2"));
        assert_eq!(kinds("4 / 2")[1], (Tok::Slash, "/"));
        assert_eq!(kinds("/a%20b:c@d")[0], (Tok::PathSegment, "/a%20b:c@d"));
        assert_eq!(kinds("/a%b")[0], (Tok::PathSegment, "/a"));
        assert_eq!(kinds("/*a")[0], (Tok::PathSegment, "/*a"));
        assert_eq!(kinds("/a//b {"), vec![(Tok::PathSegment, "/a")]);
    }

    #[test]
    fn numbers_and_words() {
        assert_eq!(
            kinds("1 1.5 .5 1. 1..2 1e3"),
            vec![
                (Tok::Int, "1"),
                (Tok::Float, "1.5"),
                (Tok::Float, ".5"),
                (Tok::Float, "1."),
                (Tok::Float, "1."),
                (Tok::Float, ".2"),
                (Tok::Int, "1"),
                (Tok::Ident, "e3"),
            ]
        );
        assert_eq!(kinds("0x10")[1], (Tok::Ident, "x10"));
        assert_eq!(
            kinds("$b a$ $ ( in"),
            vec![
                (Tok::Ident, "$b"),
                (Tok::Ident, "a$"),
                (Tok::Dollar, "$"),
                (Tok::LParen, "("),
                (Tok::Keyword, "in"),
            ]
        );
    }

    #[test]
    fn strings_and_errors() {
        assert_eq!(kinds(r#"'a\'b' "c""#)[0], (Tok::Str, r"'a\'b'"));
        assert_eq!(kinds("b'ab'")[0], (Tok::Bytes, "b'ab'"));
        assert_eq!(unquote(r"'a\n\x41é\101'"), "a\nAéA".as_bytes());
        assert_eq!(unquote(r"b'\xff'"), vec![0xff]);
        assert_eq!(unquote(r"'\xe9'"), "é".as_bytes());
        assert_eq!(unquote(r"'\ud83d'"), "\u{fffd}".as_bytes());
        for bad in [
            "'ab",
            "'a\nb'",
            r"'\a'",
            r"'\v'",
            "r'x' #",
            "a \u{a0} b",
            "\u{feff}a",
            "&",
        ] {
            assert!(!lex(bad).1.is_empty(), "{bad:?}");
        }
        assert!(lex("a /* x */ b // c").1.is_empty());
    }
}
