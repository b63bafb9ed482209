//! The declaration half of the parser: `rules_version`, top-level `function`s, `service`,
//! `match` (with its path pattern), `allow` and `function`, plus error recovery and the size
//! and depth guards. The grammar is Firebase's, so that a file compiles here exactly when it
//! compiles there:
//!
//! - Semicolons after `allow` statements (and after `rules_version` and a function's `return`)
//!   are optional; after a `let` one is required.
//! - `function`s may be declared at the top of the file, in a service or in a match.
//! - A `service` or `match` body must contain at least one declaration; a service holds only
//!   functions and matches.
//! - `allow` names any identifiers as methods; unknown ones are ignored (Firebase warns).
//!
//! Expressions live in `parser_expr.rs` (same `Parser` type). The parser never panics and never
//! recurses without counting: nested expressions go through [`Parser::enter`], and source
//! larger than [`MAX_SOURCE_BYTES`] is refused before any work. It does not resolve names —
//! that is `check`'s job.

use crate::ast::{Allow, AllowMethod, Block, File, Function, Match, Segment, Service};
use crate::error::Diagnostic;
use crate::lexer::{Span, Tok, Token, lex, unquote};

/// The largest rules source accepted (Firestore's 256 KB ruleset limit).
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The deepest nesting of expressions the parser recurses into. Firebase refuses an expression
/// nested 99 levels deep ([`MAX_LEVEL`]); every recursion of the parser is at least one level.
pub const MAX_NESTING: usize = 100;
/// Firebase's "Expression is too complex to evaluate safely": an expression whose operands,
/// arguments, items and parentheses nest this many levels deep.
pub const MAX_LEVEL: u32 = 99;
/// The tallest expression tree accepted, counting member accesses and method receivers (which
/// do not count as levels): Firebase's parser gives up on 2,000 accesses in a row.
pub const MAX_TREE_HEIGHT: usize = 2_001;
/// How deep `match` blocks may nest before the parser stops reading (the checker refuses far
/// less deep; this only bounds recursion).
const MAX_BLOCK_DEPTH: usize = 64;
/// Parsing stops after this many errors.
const MAX_DIAGNOSTICS: usize = 50;

pub(crate) struct Parser<'s> {
    pub(crate) src: &'s str,
    toks: Vec<Token>,
    i: usize,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) depth: usize,
    /// Set when a guard tripped: unwind quickly without more messages.
    pub(crate) abort: bool,
    /// Set when the statement being read has an error: unwind to the end of the statement
    /// without more messages, then go on.
    pub(crate) bail: bool,
    blocks: usize,
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
    let (toks, lex_diags) = lex(src);
    let mut p = Parser {
        src,
        toks,
        i: 0,
        diags: lex_diags,
        depth: 0,
        abort: false,
        bail: false,
        blocks: 0,
    };
    let file = p.file();
    (file, p.diags)
}

impl<'s> Parser<'s> {
    pub(crate) fn error(&mut self, span: Span, msg: impl Into<String>) {
        if self.abort || self.bail {
            return;
        }
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.abort = true;
            return;
        }
        let d = Diagnostic::new(self.src, span, msg);
        self.diags.push(d);
    }

    /// Whether expression parsing is unwinding (a guard tripped, or the statement failed).
    pub(crate) fn stopped(&self) -> bool {
        self.abort || self.bail
    }

    /// After a statement's expression: if it failed, skips to the next declaration and says
    /// so (`true`).
    fn statement_failed(&mut self) -> bool {
        if !self.bail {
            return false;
        }
        self.bail = false;
        self.recover();
        true
    }

    /// Counts one level of nesting; `false` (with an error, once) when too deep.
    pub(crate) fn enter(&mut self, span: Span) -> bool {
        if self.abort {
            return false;
        }
        if self.depth >= MAX_NESTING {
            self.error(
                span,
                format!(
                    "expression is too complex: nested more than {MAX_LEVEL} levels deep; split it into functions"
                ),
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

    /// The token `k` places ahead (0 is the current one).
    pub(crate) fn nth(&self, k: usize) -> Token {
        let last = self.toks.len().saturating_sub(1);
        self.toks
            .get((self.i + k).min(last))
            .copied()
            .unwrap_or(Token {
                kind: Tok::Eof,
                span: Span::new(self.src.len(), self.src.len()),
            })
    }

    pub(crate) fn peek(&self) -> Token {
        self.nth(0)
    }

    pub(crate) fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.kind != Tok::Eof {
            self.i += 1;
        }
        t
    }

    /// The kind of the last consumed token.
    pub(crate) fn nth_back(&self) -> Option<Tok> {
        self.i
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map(|t| t.kind)
    }

    /// Where the last consumed token ended.
    pub(crate) fn prev_end(&self) -> usize {
        match self.i.checked_sub(1).and_then(|i| self.toks.get(i)) {
            Some(t) => t.span.end as usize,
            None => 0,
        }
    }

    pub(crate) fn at(&self, kind: Tok) -> bool {
        self.peek().kind == kind
    }

    pub(crate) fn text(&self, span: Span) -> &'s str {
        self.src
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// Whether the current token is the keyword `word`.
    pub(crate) fn at_keyword(&self, word: &str) -> bool {
        let t = self.peek();
        t.kind == Tok::Keyword && self.text(t.span) == word
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
        let hint = self.hint(t);
        self.error(
            t.span,
            format!(
                "expected {} {context}, found {found}{hint}",
                kind.describe()
            ),
        );
        false
    }

    pub(crate) fn describe(&self, t: Token) -> String {
        match t.kind {
            Tok::Ident | Tok::Keyword | Tok::Int | Tok::Float | Tok::PathSegment => {
                format!("'{}'", shorten(self.text(t.span)))
            }
            Tok::Unusable => format!("'{}'", self.text(t.span)),
            k => k.describe().to_string(),
        }
    }

    /// A suggestion for tokens people write by habit from other languages.
    pub(crate) fn hint(&self, t: Token) -> &'static str {
        match (t.kind, self.text(t.span)) {
            (Tok::Assign, _) => " (use '==' to compare)",
            (Tok::Ident, "and") => " (use '&&')",
            (Tok::Ident, "or") => " (use '||')",
            (Tok::Ident, "not") => " (use '!')",
            (Tok::Unusable, "++" | "--") => " (there are no increment or decrement operators)",
            (Tok::PathSegment, _) => {
                " (a '/' directly followed by a name is a path segment; write division with spaces: 'a / b')"
            }
            _ => "",
        }
    }

    /// A name (not a keyword) for `context`.
    pub(crate) fn ident(&mut self, context: &str) -> Option<(String, Span)> {
        let t = self.peek();
        if t.kind == Tok::Ident {
            self.bump();
            Some((self.text(t.span).to_string(), t.span))
        } else {
            let found = self.describe(t);
            let hint = if t.kind == Tok::Keyword {
                " (a keyword cannot be used as a name)"
            } else {
                ""
            };
            self.error(
                t.span,
                format!("expected a name {context}, found {found}{hint}"),
            );
            None
        }
    }

    /// Skips to the next declaration at this brace depth: a `match`, `allow` or `function`
    /// keyword, or the `}` that closes the block (not consumed).
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            match t.kind {
                Tok::Eof => return,
                Tok::RBrace if depth == 0 => return,
                Tok::RBrace => depth -= 1,
                Tok::LBrace => depth += 1,
                Tok::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                Tok::Keyword if depth == 0 => {
                    if matches!(
                        self.text(t.span),
                        "allow" | "match" | "function" | "service"
                    ) {
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
        if self.at(Tok::Eof) {
            self.error(
                Span::new(0, 0),
                "the rules file is empty; it needs a 'service cloud.firestore { … }' block",
            );
            return file;
        }
        if self.at_keyword("rules_version") {
            let kw = self.bump();
            if self.expect(Tok::Assign, "after rules_version") {
                let t = self.peek();
                if t.kind == Tok::Str {
                    self.bump();
                    let v = String::from_utf8_lossy(&unquote(self.text(t.span))).into_owned();
                    file.version = Some((v, kw.span.to(t.span)));
                } else {
                    let found = self.describe(t);
                    self.error(
                        t.span,
                        format!(
                            "expected '1' or '2' (a string) after rules_version =, found {found}"
                        ),
                    );
                }
            }
            self.eat(Tok::Semi);
        }
        while !self.abort && !self.at(Tok::Eof) {
            let t = self.peek();
            match (t.kind, self.text(t.span)) {
                (Tok::Keyword, "service") => {
                    if let Some(s) = self.service() {
                        file.services.push(s);
                    }
                }
                (Tok::Keyword, "function") => {
                    if let Some(f) = self.function() {
                        file.functions.push(f);
                    }
                }
                (Tok::Keyword, "import") => {
                    self.bump();
                    self.error(t.span, "import statements are not allowed in rules");
                    self.recover();
                }
                _ => {
                    self.bump();
                    let found = self.describe(t);
                    self.error(
                        t.span,
                        format!("expected 'service' or 'function', found {found}"),
                    );
                    self.recover();
                    self.eat(Tok::RBrace);
                }
            }
        }
        file
    }

    fn service(&mut self) -> Option<Service> {
        let kw = self.bump();
        let (mut name, _) = self.ident("after 'service'")?;
        while self.at(Tok::Dot) && self.nth(1).kind == Tok::Ident {
            self.bump();
            let part = self.bump();
            name.push('.');
            name.push_str(self.text(part.span));
        }
        let span = kw.span.to(Span::new(self.prev_end(), self.prev_end()));
        let body = self.braced_block("to open the service body", true, span)?;
        Some(Service { name, span, body })
    }

    fn braced_block(&mut self, context: &str, service: bool, owner: Span) -> Option<Block> {
        if !self.expect(Tok::LBrace, context) {
            self.recover();
            return None;
        }
        if self.at(Tok::RBrace) {
            let close = self.bump();
            let what = if service { "service" } else { "match" };
            self.error(
                owner.to(close.span),
                format!("the '{what}' body must contain at least one declaration"),
            );
            return Some(Block::default());
        }
        if self.blocks >= MAX_BLOCK_DEPTH {
            self.error(
                owner,
                "match blocks nest too deep; the limit is 10 nested matches",
            );
            self.abort = true;
            return None;
        }
        self.blocks += 1;
        let block = self.block(service);
        self.blocks -= 1;
        if !self.eat(Tok::RBrace) && !self.abort {
            let t = self.peek();
            self.error(t.span, "expected '}' to close this block");
        }
        Some(block)
    }

    fn block(&mut self, service: bool) -> Block {
        let mut block = Block::default();
        loop {
            if self.abort {
                return block;
            }
            let t = self.peek();
            match (t.kind, self.text(t.span)) {
                (Tok::RBrace | Tok::Eof, _) => return block,
                (Tok::Keyword, "match") => {
                    if let Some(m) = self.match_block() {
                        block.matches.push(m);
                    }
                }
                (Tok::Keyword, "allow") if !service => {
                    if let Some(a) = self.allow() {
                        block.allows.push(a);
                    }
                }
                (Tok::Keyword, "function") => {
                    if let Some(f) = self.function() {
                        block.functions.push(f);
                    }
                }
                (Tok::Keyword, "allow") => {
                    self.bump();
                    self.error(t.span, "an allow statement must be inside a match block");
                    self.recover();
                }
                (Tok::PathSegment | Tok::Slash, text) => {
                    let adjacent = self.prev_end() == t.span.start as usize
                        && !matches!(self.nth_back(), Some(Tok::RBrace | Tok::Semi | Tok::LBrace));
                    self.bump();
                    let msg = if text.starts_with("/*") {
                        "this comment is never closed ('/*' without '*/')"
                    } else if adjacent {
                        "a '/' directly followed by a name is a path segment; write division with spaces: 'a / b'"
                    } else {
                        "missing 'match' keyword before this path"
                    };
                    self.error(t.span, msg);
                    self.recover();
                }
                _ => {
                    self.bump();
                    let found = self.describe(t);
                    let hint = self.hint(t);
                    let expected = if service {
                        "'match' or 'function'"
                    } else {
                        "'match', 'allow' or 'function'"
                    };
                    self.error(t.span, format!("expected {expected}, found {found}{hint}"));
                    self.recover();
                }
            }
        }
    }

    fn match_block(&mut self) -> Option<Match> {
        let kw = self.bump();
        let start = self.peek();
        if !matches!(start.kind, Tok::PathSegment | Tok::Slash) {
            let found = self.describe(start);
            self.error(
                start.span,
                format!("expected a path starting with '/' after 'match', found {found}"),
            );
            self.recover();
            return None;
        }
        let segments = self.match_path()?;
        let span = kw.span.to(Span::new(self.prev_end(), self.prev_end()));
        let body = self.braced_block("to open the match body", false, span)?;
        Some(Match {
            segments,
            span,
            body,
        })
    }

    /// `/literal`, `/{name}`, `/{name=*}` and `/{name=**}` segments.
    fn match_path(&mut self) -> Option<Vec<(Segment, Span)>> {
        let mut segments = Vec::new();
        loop {
            let t = self.peek();
            match t.kind {
                Tok::PathSegment => {
                    self.bump();
                    let text = self.text(t.span);
                    segments.push((Segment::Literal(text[1..].to_string()), t.span));
                }
                Tok::Slash => {
                    self.bump();
                    let binding = self.binding();
                    match binding {
                        Some(b) => segments.push(b),
                        None => {
                            self.error(
                                t.span,
                                "a '/' in a match path must be followed by a name or a {wildcard}",
                            );
                            self.recover();
                            return None;
                        }
                    }
                }
                _ => return Some(segments),
            }
        }
    }

    /// `{name}`, `{name=*}` or `{name=**}` after a slash.
    fn binding(&mut self) -> Option<(Segment, Span)> {
        if self.peek().kind != Tok::LBrace || self.nth(1).kind != Tok::Ident {
            return None;
        }
        let length = match (
            self.nth(2).kind,
            self.nth(3).kind,
            self.nth(4).kind,
            self.nth(5).kind,
        ) {
            (Tok::RBrace, ..) => 3,
            (Tok::Assign, Tok::Star, Tok::RBrace, _) => 5,
            (Tok::Assign, Tok::Star, Tok::Star, Tok::RBrace) => 6,
            _ => return None,
        };
        let name_token = self.nth(1);
        let name = self.text(name_token.span).to_string();
        for _ in 0..length {
            self.bump();
        }
        let seg = if length == 6 {
            Segment::Rest(name)
        } else {
            Segment::Single(name)
        };
        Some((seg, name_token.span))
    }

    fn allow(&mut self) -> Option<Allow> {
        let kw = self.bump();
        let mut methods = Vec::new();
        let mut unknown_methods = Vec::new();
        loop {
            let (name, span) = match self.ident("naming a method after 'allow'") {
                Some(x) => x,
                None => {
                    self.recover();
                    return None;
                }
            };
            // An unknown method is a warning in Firebase; it allows nothing.
            match AllowMethod::parse(&name) {
                Some(m) => methods.push(m),
                None => unknown_methods.push((name, span)),
            }
            if !self.eat(Tok::Comma) {
                break;
            }
        }
        let t = self.peek();
        let condition = match (t.kind, self.text(t.span)) {
            (Tok::Colon, _) => {
                self.bump();
                if !self.at_keyword("if") {
                    let t = self.peek();
                    let found = self.describe(t);
                    self.error(t.span, format!("expected 'if' after ':', found {found}"));
                    self.recover();
                    return None;
                }
                self.bump();
                if !starts_expression(self, self.peek()) {
                    let t = self.peek();
                    let found = self.describe(t);
                    let hint = self.hint(t);
                    self.error(
                        t.span,
                        format!("expected a condition after 'if', found {found}{hint}"),
                    );
                    self.recover();
                    return None;
                }
                let e = self.expr();
                if self.statement_failed() {
                    return None;
                }
                Some(e)
            }
            (Tok::Keyword, "if") => {
                self.error(t.span, "expected ':' before 'if'");
                self.recover();
                return None;
            }
            (Tok::Semi | Tok::RBrace | Tok::Eof | Tok::PathSegment | Tok::Slash, _) => None,
            (Tok::Keyword, "allow" | "match" | "function" | "service" | "import") => None,
            _ => {
                let found = self.describe(t);
                self.error(
                    t.span,
                    format!(
                        "expected ':', ';' or another declaration after the methods, found {found}"
                    ),
                );
                self.recover();
                return None;
            }
        };
        let span = kw.span.to(Span::new(self.prev_end(), self.prev_end()));
        self.eat(Tok::Semi);
        Some(Allow {
            methods,
            unknown_methods,
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
        let (name, name_span) = self.ident("after 'function'")?;
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
        let span = kw.to(Span::new(self.prev_end(), self.prev_end()));
        if !self.expect(Tok::LBrace, "to open the function body") {
            return None;
        }
        let mut lets = Vec::new();
        while self.at_keyword("let") {
            let kw = self.bump();
            let (var, _) = self.ident("after 'let'")?;
            if !self.expect(Tok::Assign, "after the let name") {
                return None;
            }
            if !starts_expression(self, self.peek()) {
                let t = self.peek();
                let found = self.describe(t);
                self.error(t.span, format!("expected an expression, found {found}"));
                return None;
            }
            let value = self.expr();
            if self.bail {
                self.bail = false;
                return None;
            }
            let span = kw.span.to(value.span);
            if !self.expect(Tok::Semi, "after the let binding") {
                return None;
            }
            lets.push((var, value, span));
        }
        if !self.at_keyword("return") {
            let t = self.peek();
            let found = self.describe(t);
            self.error(
                t.span,
                format!("expected 'let' or 'return' in the function body, found {found}"),
            );
            return None;
        }
        self.bump();
        if !starts_expression(self, self.peek()) {
            let t = self.peek();
            let found = self.describe(t);
            self.error(
                t.span,
                format!("expected an expression after 'return', found {found}"),
            );
            return None;
        }
        let body = self.expr();
        if self.bail {
            self.bail = false;
            return None;
        }
        self.eat(Tok::Semi);
        if !self.expect(
            Tok::RBrace,
            "to close the function body (a function holds only lets and one return)",
        ) {
            return None;
        }
        Some(Function {
            name,
            name_span,
            params,
            lets,
            body,
            span,
        })
    }
}

/// Whether an expression can start with `t`.
pub(crate) fn starts_expression(p: &Parser<'_>, t: Token) -> bool {
    match t.kind {
        Tok::Minus
        | Tok::Bang
        | Tok::LBrace
        | Tok::LBracket
        | Tok::LParen
        | Tok::Slash
        | Tok::PathSegment
        | Tok::Ident
        | Tok::Int
        | Tok::Float
        | Tok::Str
        | Tok::Bytes => true,
        Tok::Keyword => matches!(p.text(t.span), "true" | "false" | "null"),
        _ => false,
    }
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
