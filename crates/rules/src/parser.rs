//! The declaration half of the parser: `rules_version`, `service`, `match` (with its raw path
//! pattern), `allow` and `function`, plus error recovery and the size/depth guards.
//!
//! Expressions live in `parser_expr.rs` (same `Parser` type). The parser never panics and never
//! recurses without counting: every nested construct goes through [`Parser::enter`], and source
//! larger than [`MAX_SOURCE_BYTES`] is refused before any work. It does not resolve names or
//! enforce language limits other than nesting — that is `check`'s job.

use crate::ast::{Allow, AllowMethod, Block, File, Function, Match, Segment, Service};
use crate::error::Diagnostic;
use crate::lexer::{Cursor, Span, Tok, Token};

/// The largest rules source accepted (Firestore's 256 KB ruleset limit).
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The deepest nesting of brackets, blocks and unary operators the parser will recurse into.
pub const MAX_NESTING: usize = 100;
/// The tallest expression tree accepted (long `a && b && …` chains grow trees without nesting);
/// it bounds the recursion of every later pass.
pub const MAX_TREE_HEIGHT: usize = 250;
/// Parsing stops after this many errors.
const MAX_DIAGNOSTICS: usize = 50;

pub(crate) struct Parser<'s> {
    pub(crate) cur: Cursor<'s>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) depth: usize,
    /// Set when a guard tripped: unwind quickly without more messages.
    pub(crate) abort: bool,
}

/// Parses a rules file. Returns the tree (possibly partial) and every error found.
pub fn parse(src: &str) -> (File, Vec<Diagnostic>) {
    if src.len() > MAX_SOURCE_BYTES {
        let msg = format!(
            "the rules source is {} bytes; the limit is {MAX_SOURCE_BYTES} bytes (256 KB)",
            src.len()
        );
        return (
            File::default(),
            vec![Diagnostic::new(src, Span::new(0, 0), msg)],
        );
    }
    let mut p = Parser {
        cur: Cursor::new(src),
        diags: Vec::new(),
        depth: 0,
        abort: false,
    };
    let file = p.file();
    (file, p.diags)
}

impl<'s> Parser<'s> {
    pub(crate) fn error(&mut self, span: Span, msg: impl Into<String>) {
        if self.abort {
            return;
        }
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.abort = true;
            return;
        }
        let d = Diagnostic::new(self.cur.src(), span, msg);
        self.diags.push(d);
    }

    /// Counts one level of nesting; `false` (with an error, once) when too deep.
    pub(crate) fn enter(&mut self, span: Span) -> bool {
        if self.abort {
            return false;
        }
        if self.depth >= MAX_NESTING {
            self.error(
                span,
                format!("nesting is deeper than {MAX_NESTING} levels; simplify this rule"),
            );
            self.abort = true;
            return false;
        }
        self.depth += 1;
        true
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub(crate) fn peek(&mut self) -> Token {
        self.cur.peek()
    }

    pub(crate) fn bump(&mut self) -> Token {
        self.cur.next_token()
    }

    pub(crate) fn at(&mut self, kind: Tok) -> bool {
        self.peek().kind == kind
    }

    pub(crate) fn at_word(&mut self, word: &str) -> bool {
        let t = self.peek();
        t.kind == Tok::Ident && self.cur.text(t.span) == word
    }

    pub(crate) fn eat(&mut self, kind: Tok) -> bool {
        if self.at(kind) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Consumes `kind` or reports what was found instead.
    pub(crate) fn expect(&mut self, kind: Tok, context: &str) -> bool {
        if self.eat(kind) {
            return true;
        }
        let t = self.peek();
        let found = self.describe(t);
        self.error(
            t.span,
            format!("expected {} {context}, found {found}", kind.describe()),
        );
        false
    }

    pub(crate) fn describe(&self, t: Token) -> String {
        match t.kind {
            Tok::Ident | Tok::Int | Tok::Float => format!("'{}'", self.cur.text(t.span)),
            Tok::Error => format!("unexpected text '{}'", shorten(self.cur.text(t.span))),
            k => k.describe().to_string(),
        }
    }

    /// A suggestion for tokens people write by habit from other languages.
    pub(crate) fn hint(&self, t: Token) -> &'static str {
        match (t.kind, self.cur.text(t.span)) {
            (Tok::Assign, _) => " (use '==' to compare)",
            (Tok::Ident, "and") => " (use '&&')",
            (Tok::Ident, "or") => " (use '||')",
            (Tok::Ident, "not") => " (use '!')",
            (Tok::Error, "&" | "|") => " (use '&&' or '||')",
            _ => "",
        }
    }

    pub(crate) fn ident(&mut self, context: &str) -> Option<(String, Span)> {
        let t = self.peek();
        if t.kind == Tok::Ident {
            self.bump();
            Some((self.cur.text(t.span).to_string(), t.span))
        } else {
            let found = self.describe(t);
            self.error(t.span, format!("expected a name {context}, found {found}"));
            None
        }
    }

    /// Skips to the end of the current statement: past a `;`, or up to a `}` or the next
    /// declaration keyword at the same brace depth.
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            match t.kind {
                Tok::Eof => return,
                Tok::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                Tok::RBrace if depth == 0 => return,
                Tok::RBrace => depth -= 1,
                Tok::LBrace => depth += 1,
                Tok::Ident if depth == 0 => {
                    let w = self.cur.text(t.span);
                    if matches!(w, "allow" | "match" | "function") {
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn file(&mut self) -> File {
        let mut file = File::default();
        if self.at_word("rules_version") {
            self.bump();
            self.expect(Tok::Assign, "after rules_version");
            let t = self.peek();
            if t.kind == Tok::Str {
                self.bump();
                let text = self.cur.text(t.span);
                let v = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
                if v != "1" && v != "2" {
                    self.error(
                        t.span,
                        format!("unknown rules_version '{v}'; use '1' or '2'"),
                    );
                }
                file.version = Some(v.to_string());
            } else {
                self.error(t.span, "expected '1' or '2' after rules_version =");
            }
            self.eat(Tok::Semi);
        }
        while !self.abort && !self.at(Tok::Eof) {
            if self.at_word("service") {
                if let Some(s) = self.service() {
                    file.services.push(s);
                }
            } else {
                let t = self.bump();
                let found = self.describe(t);
                self.error(t.span, format!("expected 'service', found {found}"));
                self.recover();
                self.eat(Tok::RBrace);
            }
        }
        file
    }

    fn service(&mut self) -> Option<Service> {
        let kw = self.bump();
        let (mut name, _) = self.ident("after 'service'")?;
        while self.eat(Tok::Dot) {
            let (part, _) = self.ident("in the service name")?;
            name.push('.');
            name.push_str(&part);
        }
        let span = kw.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
        let body = self.braced_block("to open the service body")?;
        Some(Service { name, span, body })
    }

    fn braced_block(&mut self, context: &str) -> Option<Block> {
        if !self.expect(Tok::LBrace, context) {
            self.recover();
            return None;
        }
        let open = Span::new(self.cur.prev_end.saturating_sub(1), self.cur.prev_end);
        if !self.enter(open) {
            return None;
        }
        let block = self.block();
        self.leave();
        if !self.eat(Tok::RBrace) && !self.abort {
            let t = self.peek();
            self.error(t.span, "expected '}' to close this block");
        }
        Some(block)
    }

    fn block(&mut self) -> Block {
        let mut block = Block::default();
        loop {
            if self.abort {
                return block;
            }
            let t = self.peek();
            match t.kind {
                Tok::RBrace | Tok::Eof => return block,
                Tok::Ident => match self.cur.text(t.span) {
                    "match" => {
                        if let Some(m) = self.match_block() {
                            block.matches.push(m);
                        }
                    }
                    "allow" => {
                        if let Some(a) = self.allow() {
                            block.allows.push(a);
                        }
                    }
                    "function" => {
                        if let Some(f) = self.function() {
                            block.functions.push(f);
                        }
                    }
                    other => {
                        let msg = format!(
                            "expected 'match', 'allow' or 'function', found '{}'",
                            shorten(other)
                        );
                        self.bump();
                        self.error(t.span, msg);
                        self.recover();
                    }
                },
                _ => {
                    self.bump();
                    let found = self.describe(t);
                    self.error(
                        t.span,
                        format!("expected 'match', 'allow' or 'function', found {found}"),
                    );
                    self.recover();
                }
            }
        }
    }

    fn match_block(&mut self) -> Option<Match> {
        let kw = self.bump();
        let start = self.peek();
        if start.kind != Tok::Slash {
            let found = self.describe(start);
            self.error(
                start.span,
                format!("expected a path starting with '/' after 'match', found {found}"),
            );
            self.recover();
            return None;
        }
        let segments = self.match_path(start.span.start as usize)?;
        let span = kw.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
        let body = self.braced_block("to open the match body")?;
        Some(Match {
            segments,
            span,
            body,
        })
    }

    /// Reads `/seg/{x}/{y=**}` as raw text from `start`, then resumes tokenising after it.
    fn match_path(&mut self, start: usize) -> Option<Vec<Segment>> {
        let src = self.cur.src();
        let bytes = src.as_bytes();
        let mut pos = start;
        let mut segments = Vec::new();
        let mut ok = true;
        while bytes.get(pos) == Some(&b'/') {
            pos += 1;
            if bytes.get(pos) == Some(&b'{') {
                let close = src[pos + 1..]
                    .find(['}', '{', '/', '\n'])
                    .map(|i| pos + 1 + i)
                    .filter(|&i| bytes.get(i) == Some(&b'}'));
                let Some(close) = close else {
                    self.error(
                        Span::new(pos, pos + 1),
                        "this '{' in the path is never closed",
                    );
                    ok = false;
                    pos = src.len();
                    break;
                };
                let inner = &src[pos + 1..close];
                let span = Span::new(pos, close + 1);
                let (name, rest) = match inner.split_once('=') {
                    Some((n, r)) => (n.trim(), Some(r.trim())),
                    None => (inner.trim(), None),
                };
                if !is_ident(name) {
                    self.error(
                        span,
                        format!("'{}' is not a valid wildcard name", shorten(name)),
                    );
                    ok = false;
                }
                match rest {
                    None | Some("*") => segments.push(Segment::Single(name.to_string())),
                    Some("**") => segments.push(Segment::Rest(name.to_string())),
                    Some(other) => {
                        self.error(
                            span,
                            format!(
                                "'{}' is not a wildcard form; use {{{name}}} or {{{name}=**}}",
                                shorten(other)
                            ),
                        );
                        ok = false;
                    }
                }
                pos = close + 1;
            } else {
                let len = src[pos..]
                    .find(|c: char| c == '/' || c == '{' || c == '}' || c.is_whitespace())
                    .unwrap_or(src.len() - pos);
                if len == 0 {
                    self.error(Span::new(pos.saturating_sub(1), pos), "empty path segment");
                    ok = false;
                    break;
                }
                segments.push(Segment::Literal(src[pos..pos + len].to_string()));
                pos += len;
            }
        }
        self.cur.seek(pos);
        ok.then_some(segments)
    }

    fn allow(&mut self) -> Option<Allow> {
        let kw = self.bump();
        let mut methods = Vec::new();
        loop {
            let (name, span) = match self.ident("naming a method after 'allow'") {
                Some(x) => x,
                None => {
                    self.recover();
                    return None;
                }
            };
            match AllowMethod::parse(&name) {
                Some(m) => methods.push(m),
                None => self.error(
                    span,
                    format!(
                        "unknown method '{}'; use read, write, get, list, create, update or delete",
                        shorten(&name)
                    ),
                ),
            }
            if !self.eat(Tok::Comma) {
                break;
            }
        }
        let condition = if self.eat(Tok::Colon) {
            if !self.at_word("if") {
                let t = self.peek();
                let found = self.describe(t);
                self.error(t.span, format!("expected 'if' after ':', found {found}"));
                self.recover();
                return None;
            }
            self.bump();
            Some(self.expr())
        } else {
            None
        };
        let span = kw.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
        if !self.eat(Tok::Semi) && !self.at(Tok::RBrace) {
            let t = self.peek();
            let found = self.describe(t);
            let hint = self.hint(t);
            self.error(
                t.span,
                format!("expected ';' after the allow statement, found {found}{hint}"),
            );
            self.recover();
        }
        Some(Allow {
            methods,
            condition,
            span,
        })
    }

    fn function(&mut self) -> Option<Function> {
        let kw = self.bump();
        let parsed = self.function_inner(kw.span);
        if parsed.is_none() {
            self.recover();
            self.eat(Tok::RBrace);
        }
        parsed
    }

    fn function_inner(&mut self, kw: Span) -> Option<Function> {
        let (name, _) = self.ident("after 'function'")?;
        if !self.expect(Tok::LParen, "after the function name") {
            return None;
        }
        let mut params = Vec::new();
        if !self.eat(Tok::RParen) {
            loop {
                params.push(self.ident("as a parameter")?);
                if self.eat(Tok::RParen) {
                    break;
                }
                if !self.expect(Tok::Comma, "between parameters") {
                    return None;
                }
            }
        }
        let span = kw.to(Span::new(self.cur.prev_end, self.cur.prev_end));
        if !self.expect(Tok::LBrace, "to open the function body") {
            return None;
        }
        let mut lets = Vec::new();
        while self.at_word("let") {
            let kw = self.bump();
            let (var, _) = self.ident("after 'let'")?;
            if !self.expect(Tok::Assign, "after the let name") {
                return None;
            }
            let value = self.expr();
            let span = kw.span.to(value.span);
            self.expect(Tok::Semi, "after the let binding");
            lets.push((var, value, span));
        }
        if !self.at_word("return") {
            let t = self.peek();
            let found = self.describe(t);
            self.error(
                t.span,
                format!("expected 'let' or 'return' in the function body, found {found}"),
            );
            return None;
        }
        self.bump();
        let body = self.expr();
        self.eat(Tok::Semi);
        if !self.expect(
            Tok::RBrace,
            "to close the function body (a function holds only lets and one return)",
        ) {
            return None;
        }
        Some(Function {
            name,
            params,
            lets,
            body,
            span,
        })
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut out: String = s.chars().take(40).collect();
        out.push('…');
        out
    } else {
        s.to_string()
    }
}
