//! Tokens of the rules language and a cursor over them (logos underneath).
//!
//! The cursor can be re-seated at any byte offset, which is how the parser reads the two
//! context-sensitive pieces of syntax — `match` path patterns and `/a/$(x)/b` path literals — by
//! scanning raw text and then resuming tokenisation after it. Literal *values* (escapes, numbers)
//! are decoded by the parser, which owns error reporting; this file only classifies bytes.

use logos::Logos;

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

fn block_comment(lex: &mut logos::Lexer<Tok>) -> bool {
    match lex.remainder().find("*/") {
        Some(i) => {
            lex.bump(i + 2);
            true
        }
        None => {
            lex.bump(lex.remainder().len());
            false
        }
    }
}

/// Token kinds. Keywords are identifiers; the parser tells them apart by text.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n\f\u{feff}]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Tok {
    #[token("/*", block_comment)]
    BlockComment,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[regex(r"[0-9]+")]
    #[regex(r"0[xX][0-9a-fA-F]+")]
    Int,
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?")]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+")]
    Float,
    #[regex(r#"'([^'\\\n]|\\.)*'"#)]
    #[regex(r#""([^"\\\n]|\\.)*""#)]
    Str,
    #[regex(r#"[rR]'[^'\n]*'"#)]
    #[regex(r#"[rR]"[^"\n]*""#)]
    RawStr,
    #[regex(r#"[bB]'([^'\\\n]|\\.)*'"#)]
    #[regex(r#"[bB]"([^"\\\n]|\\.)*""#)]
    Bytes,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("?")]
    Question,
    #[token("!")]
    Bang,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("$(")]
    DollarParen,
    /// Not produced by logos: end of input.
    Eof,
    /// Not produced by logos: bytes that form no token.
    Error,
}

impl Tok {
    /// How the token is named in "expected …" messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tok::BlockComment => "comment",
            Tok::Ident => "a name",
            Tok::Int => "an integer",
            Tok::Float => "a float",
            Tok::Str | Tok::RawStr => "a string",
            Tok::Bytes => "a bytes literal",
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
            Tok::DollarParen => "'$('",
            Tok::Eof => "end of file",
            Tok::Error => "an unexpected character",
        }
    }
}

/// One token with its place in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
}

/// A one-token-lookahead cursor that can be moved to any offset.
pub struct Cursor<'s> {
    src: &'s str,
    base: usize,
    lex: logos::Lexer<'s, Tok>,
    peeked: Option<Token>,
    /// Where the last consumed token ended.
    pub prev_end: usize,
}

impl<'s> Cursor<'s> {
    pub fn new(src: &'s str) -> Self {
        Cursor {
            src,
            base: 0,
            lex: Tok::lexer(src),
            peeked: None,
            prev_end: 0,
        }
    }

    pub fn src(&self) -> &'s str {
        self.src
    }

    /// Continue tokenising from byte `offset` (dropping any peeked token).
    pub fn seek(&mut self, offset: usize) {
        let offset = offset.min(self.src.len());
        let offset = (0..=offset)
            .rev()
            .find(|&o| self.src.is_char_boundary(o))
            .unwrap_or(0);
        self.base = offset;
        self.lex = Tok::lexer(&self.src[offset..]);
        self.peeked = None;
        self.prev_end = offset;
    }

    fn lex_one(&mut self) -> Token {
        loop {
            match self.lex.next() {
                None => {
                    return Token {
                        kind: Tok::Eof,
                        span: Span::new(self.src.len(), self.src.len()),
                    };
                }
                Some(result) => {
                    let r = self.lex.span();
                    let span = Span::new(self.base + r.start, self.base + r.end);
                    match result {
                        Ok(Tok::BlockComment) => continue,
                        Ok(kind) => return Token { kind, span },
                        Err(()) => {
                            return Token {
                                kind: Tok::Error,
                                span,
                            };
                        }
                    }
                }
            }
        }
    }

    pub fn peek(&mut self) -> Token {
        match self.peeked {
            Some(t) => t,
            None => {
                let t = self.lex_one();
                self.peeked = Some(t);
                t
            }
        }
    }

    pub fn next_token(&mut self) -> Token {
        let t = self.peek();
        self.peeked = None;
        self.prev_end = t.span.end as usize;
        t
    }

    pub fn text(&self, span: Span) -> &'s str {
        self.src
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        let mut c = Cursor::new(src);
        let mut out = Vec::new();
        loop {
            let t = c.next_token();
            if t.kind == Tok::Eof {
                break;
            }
            out.push(t.kind);
        }
        out
    }

    #[test]
    fn classifies_tokens_and_skips_comments() {
        use Tok::*;
        let table: &[(&str, &[Tok])] = &[
            (
                "a.b(1, 2.5)",
                &[Ident, Dot, Ident, LParen, Int, Comma, Float, RParen],
            ),
            ("'x\\'y' \"z\" b'\\x00'", &[Str, Str, Bytes]),
            ("a // c\n b /* x \n y */ c", &[Ident, Ident, Ident]),
            (
                "a<=b&&c||!d",
                &[Ident, Le, Ident, AndAnd, Ident, OrOr, Bang, Ident],
            ),
            ("$(x)", &[DollarParen, Ident, RParen]),
            ("1e3 0x1F", &[Float, Int]),
            ("a /* open", &[Ident, Error]),
            ("#", &[Error]),
        ];
        for (src, want) in table {
            assert_eq!(&kinds(src), want, "{src}");
        }
    }

    #[test]
    fn seek_resumes_at_an_offset() {
        let mut c = Cursor::new("abc def");
        c.seek(4);
        let t = c.next_token();
        assert_eq!(c.text(t.span), "def");
    }
}
