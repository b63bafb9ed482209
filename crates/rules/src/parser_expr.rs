//! The expression half of the parser, with Firebase's grammar (high → low): postfix (`a.b`,
//! `a.m()`, `a[i]`, `a[i:j]` with both bounds), unary `!` and `-` (the operand of `-` is a
//! postfix expression, so `- -x` and `-!x` do not parse), `* / %`, `+ -`, then one level for
//! `== != < <= > >= in is` (left to right: `a == b < c` is `(a == b) < c`), `&&`, `||`, and the
//! conditional `?:` (right-associative). Literals (with escape decoding) and path literals
//! (path segment tokens and `/$(expr)` parts) are read here too.
//!
//! Every constructed node passes through [`Parser::node`], which refuses expressions nested
//! [`MAX_LEVEL`] levels deep or taller than [`MAX_TREE_HEIGHT`], as Firebase does. Recursion is
//! counted by [`Parser::enter`] once per nested expression (each is at least one level deeper),
//! so the parser's own stack stays bounded too.

use crate::ast::{BinOp, Expr, ExprKind, PathPart, UnOp};
use crate::lexer::{Span, Tok, unquote};
use crate::parser::{MAX_LEVEL, MAX_TREE_HEIGHT, Parser, shorten, starts_expression};

fn invalid(span: Span) -> Expr {
    Expr::new(ExprKind::Invalid, span)
}

/// The namespaces of global functions (`math.abs(x)`). They are not variables.
pub(crate) fn is_namespace(name: &str) -> bool {
    matches!(
        name,
        "math" | "duration" | "timestamp" | "latlng" | "hashing"
    )
}

/// The type names `is` accepts (`constraint` and `vector` are Firebase's too).
pub(crate) const IS_TYPES: &[&str] = &[
    "bool",
    "bytes",
    "constraint",
    "duration",
    "float",
    "int",
    "latlng",
    "list",
    "vector",
    "set",
    "number",
    "map",
    "string",
    "timestamp",
    "path",
    "map_diff",
];

impl<'s> Parser<'s> {
    pub(crate) fn node(&mut self, kind: ExprKind, span: Span) -> Expr {
        let e = Expr::new(kind, span);
        self.checked(e)
    }

    /// Refuses an expression past Firebase's nesting limits.
    fn checked(&mut self, e: Expr) -> Expr {
        if e.level >= MAX_LEVEL {
            self.error(
                e.span,
                format!(
                    "expression is too complex: nested {MAX_LEVEL} or more levels deep; split it into functions"
                ),
            );
            self.abort = true;
            return invalid(e.span);
        }
        if e.height as usize > MAX_TREE_HEIGHT {
            self.error(
                e.span,
                format!(
                    "expression is too complex: more than {} accesses in a row",
                    MAX_TREE_HEIGHT - 1
                ),
            );
            self.abort = true;
            return invalid(e.span);
        }
        e
    }

    /// A full expression (conditional level).
    pub(crate) fn expr(&mut self) -> Expr {
        let here = self.peek().span;
        if !self.enter(here) {
            return invalid(here);
        }
        let cond = self.binary(1);
        let e = if !self.stopped() && self.at(Tok::Question) {
            self.bump();
            let a = self.operand();
            if !self.expect(Tok::Colon, "in the conditional expression (a ? b : c)") {
                self.leave();
                return invalid(cond.span);
            }
            let b = self.operand();
            let span = cond.span.to(b.span);
            self.node(
                ExprKind::Cond(Box::new(cond), Box::new(a), Box::new(b)),
                span,
            )
        } else {
            cond
        };
        self.leave();
        e
    }

    /// An expression where one is required: an error if none starts here.
    fn operand(&mut self) -> Expr {
        let t = self.peek();
        if starts_expression(self, t) {
            return self.expr();
        }
        self.missing_operand()
    }

    fn missing_operand(&mut self) -> Expr {
        let t = self.peek();
        let found = self.describe(t);
        let hint = self.hint(t);
        self.error(
            t.span,
            format!("expected an expression, found {found}{hint}"),
        );
        self.bail = true;
        invalid(t.span)
    }

    fn binary_op(&self) -> Option<(BinOp, u8)> {
        let t = self.peek();
        Some(match t.kind {
            Tok::OrOr => (BinOp::Or, 1),
            Tok::AndAnd => (BinOp::And, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::NotEq => (BinOp::Ne, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Le => (BinOp::Le, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Ge => (BinOp::Ge, 3),
            // `is` is handled by the caller; it is on the `in` level.
            Tok::Keyword if matches!(self.text(t.span), "in" | "is") => (BinOp::In, 3),
            Tok::Plus => (BinOp::Add, 4),
            Tok::Minus => (BinOp::Sub, 4),
            Tok::Star => (BinOp::Mul, 5),
            Tok::Slash => (BinOp::Div, 5),
            Tok::Percent => (BinOp::Rem, 5),
            _ => return None,
        })
    }

    /// Precedence climbing: operators of precedence `min` or higher, left to right.
    fn binary(&mut self, min: u8) -> Expr {
        let mut lhs = self.unary();
        while !self.stopped() {
            let Some((op, prec)) = self.binary_op() else {
                break;
            };
            if prec < min {
                break;
            }
            let t = self.bump();
            if t.kind == Tok::Keyword && self.text(t.span) == "is" {
                let ty = self.peek();
                if ty.kind != Tok::Ident {
                    let found = self.describe(ty);
                    self.error(
                        ty.span,
                        format!("expected a type name after 'is', found {found}"),
                    );
                    self.bail = true;
                    return invalid(lhs.span);
                }
                self.bump();
                let name = self.text(ty.span).to_string();
                if !IS_TYPES.contains(&name.as_str()) {
                    self.error(
                        ty.span,
                        format!(
                            "unknown type '{}' after 'is'; use one of {}",
                            shorten(&name),
                            IS_TYPES.join(", ")
                        ),
                    );
                }
                let span = lhs.span.to(ty.span);
                lhs = self.node(ExprKind::Is(Box::new(lhs), name), span);
                continue;
            }
            if !starts_expression(self, self.peek()) {
                return self.missing_operand();
            }
            let rhs = self.binary(prec + 1);
            let span = lhs.span.to(rhs.span);
            lhs = self.node(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span);
        }
        lhs
    }

    fn unary(&mut self) -> Expr {
        let t = self.peek();
        match t.kind {
            Tok::Bang => {
                if !self.enter(t.span) {
                    return invalid(t.span);
                }
                self.bump();
                let operand = if starts_expression(self, self.peek()) {
                    self.unary()
                } else {
                    self.missing_operand()
                };
                self.leave();
                let span = t.span.to(operand.span);
                self.node(ExprKind::Unary(UnOp::Not, Box::new(operand)), span)
            }
            Tok::Minus => {
                self.bump();
                let next = self.peek();
                // -9223372036854775808 is a literal, not the negation of one out of range.
                if next.kind == Tok::Int
                    && self.text(next.span) == "9223372036854775808"
                    && !matches!(self.nth(1).kind, Tok::Dot | Tok::LBracket)
                {
                    self.bump();
                    return self.node(ExprKind::Int(i64::MIN), t.span.to(next.span));
                }
                if !starts_primary(self, next) {
                    let found = self.describe(next);
                    self.error(
                        next.span,
                        format!("expected a value after '-', found {found}"),
                    );
                    self.bail = true;
                    return invalid(t.span);
                }
                let operand = self.postfix();
                let span = t.span.to(operand.span);
                self.node(ExprKind::Unary(UnOp::Neg, Box::new(operand)), span)
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Expr {
        let mut e = self.primary();
        while !self.stopped() {
            let t = self.peek();
            match t.kind {
                Tok::Dot => {
                    let name = self.nth(1);
                    let word = matches!(name.kind, Tok::Ident | Tok::Keyword)
                        && self.text(name.span) != "rules_version";
                    if !word {
                        let found = self.describe(name);
                        self.error(
                            name.span,
                            format!("expected a field or method name after '.', found {found}"),
                        );
                        self.bail = true;
                        return invalid(e.span);
                    }
                    self.bump();
                    self.bump();
                    let text = self.text(name.span).to_string();
                    if self.at(Tok::LParen) {
                        if name.kind == Tok::Keyword {
                            self.error(
                                name.span,
                                format!("'{text}' is a keyword and cannot name a method"),
                            );
                            self.bail = true;
                            return invalid(e.span);
                        }
                        self.bump();
                        let args = self.items(Tok::RParen, "to close the argument list");
                        let span = e.span.to(Span::new(self.prev_end(), self.prev_end()));
                        e = self.node(ExprKind::Method(Box::new(e), text, args), span);
                    } else {
                        let span = e.span.to(name.span);
                        e = self.node(ExprKind::Member(Box::new(e), text), span);
                    }
                }
                Tok::LBracket => {
                    self.bump();
                    let start = self.operand();
                    let end = if !self.stopped() && self.eat(Tok::Colon) {
                        Some(self.operand())
                    } else {
                        None
                    };
                    if self.stopped() {
                        return invalid(e.span);
                    }
                    if !self.expect(Tok::RBracket, "to close the index") {
                        self.bail = true;
                        return invalid(e.span);
                    }
                    let span = e.span.to(Span::new(self.prev_end(), self.prev_end()));
                    e = match end {
                        Some(end) => self.node(
                            ExprKind::Slice(Box::new(e), Box::new(start), Box::new(end)),
                            span,
                        ),
                        None => self.node(ExprKind::Index(Box::new(e), Box::new(start)), span),
                    };
                }
                _ => break,
            }
        }
        e
    }

    /// `a, b, c` up to `close` (consumed); a trailing comma is allowed.
    fn items(&mut self, close: Tok, context: &str) -> Vec<Expr> {
        let mut items = Vec::new();
        while !self.stopped() && !self.eat(close) {
            items.push(self.operand());
            if self.stopped() {
                break;
            }
            if !self.eat(Tok::Comma) {
                if !self.expect(close, context) {
                    self.bail = true;
                }
                break;
            }
        }
        items
    }

    fn primary(&mut self) -> Expr {
        let t = self.peek();
        if self.stopped() {
            return invalid(t.span);
        }
        match t.kind {
            Tok::Int => {
                self.bump();
                match self.text(t.span).parse::<i64>() {
                    Ok(i) => self.node(ExprKind::Int(i), t.span),
                    Err(_) => {
                        let text = shorten(self.text(t.span));
                        self.error(
                            t.span,
                            format!("the number {text} does not fit in a 64-bit integer"),
                        );
                        invalid(t.span)
                    }
                }
            }
            Tok::Float => {
                self.bump();
                let f = self.text(t.span).parse::<f64>().unwrap_or(f64::NAN);
                self.node(ExprKind::Float(f), t.span)
            }
            Tok::Str => {
                self.bump();
                let bytes = unquote(self.text(t.span));
                let s = String::from_utf8_lossy(&bytes).into_owned();
                self.node(ExprKind::Str(s), t.span)
            }
            Tok::Bytes => {
                self.bump();
                let bytes = unquote(self.text(t.span));
                self.node(ExprKind::Bytes(bytes), t.span)
            }
            Tok::Keyword if matches!(self.text(t.span), "true" | "false" | "null") => {
                self.bump();
                let kind = match self.text(t.span) {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    _ => ExprKind::Null,
                };
                self.node(kind, t.span)
            }
            Tok::Ident => self.identifier(),
            Tok::LParen => {
                self.bump();
                let mut e = self.operand();
                if self.stopped() {
                    return e;
                }
                if !self.expect(Tok::RParen, "to close the parenthesis") {
                    self.bail = true;
                    return invalid(t.span);
                }
                e.parenthesize();
                self.checked(e)
            }
            Tok::LBracket => {
                self.bump();
                let items = self.items(Tok::RBracket, "to close the list");
                let span = t.span.to(Span::new(self.prev_end(), self.prev_end()));
                self.node(ExprKind::List(items), span)
            }
            Tok::LBrace => {
                self.bump();
                let entries = self.map_entries();
                let span = t.span.to(Span::new(self.prev_end(), self.prev_end()));
                self.node(ExprKind::Map(entries), span)
            }
            Tok::PathSegment | Tok::Slash => self.path_literal(),
            _ => self.missing_operand(),
        }
    }

    /// A name: a variable, a call, or a call in a namespace (`math.abs(x)`).
    fn identifier(&mut self) -> Expr {
        let t = self.bump();
        let name = self.text(t.span).to_string();
        if self.at(Tok::LParen) {
            self.bump();
            let args = self.items(Tok::RParen, "to close the argument list");
            let span = t.span.to(Span::new(self.prev_end(), self.prev_end()));
            return self.node(ExprKind::Call(name, args), span);
        }
        if is_namespace(&name)
            && self.at(Tok::Dot)
            && self.nth(1).kind == Tok::Ident
            && self.nth(2).kind == Tok::LParen
        {
            self.bump();
            let f = self.bump();
            let function = self.text(f.span).to_string();
            self.bump();
            let args = self.items(Tok::RParen, "to close the argument list");
            let span = t.span.to(Span::new(self.prev_end(), self.prev_end()));
            return self.node(ExprKind::NsCall(name, function, args), span);
        }
        self.node(ExprKind::Ident(name), t.span)
    }

    fn map_entries(&mut self) -> Vec<(Expr, Expr)> {
        let mut entries = Vec::new();
        while !self.stopped() && !self.eat(Tok::RBrace) {
            let key = self.operand();
            if self.stopped() {
                break;
            }
            if !self.expect(Tok::Colon, "between a map key and its value") {
                self.bail = true;
                break;
            }
            let value = self.operand();
            entries.push((key, value));
            if self.stopped() {
                break;
            }
            if !self.eat(Tok::Comma) {
                if !self.expect(Tok::RBrace, "to close the map") {
                    self.bail = true;
                }
                break;
            }
        }
        entries
    }

    /// A path literal: `/segment` tokens and `/$(expr)` parts, as long as they follow each
    /// other.
    fn path_literal(&mut self) -> Expr {
        let start = self.peek().span;
        let mut parts = Vec::new();
        loop {
            let t = self.peek();
            match t.kind {
                Tok::PathSegment => {
                    self.bump();
                    parts.push(PathPart::Literal(self.text(t.span)[1..].to_string()));
                }
                Tok::Slash
                    if self.nth(1).kind == Tok::Dollar && self.nth(2).kind == Tok::LParen =>
                {
                    self.bump();
                    self.bump();
                    self.bump();
                    let e = self.operand();
                    if self.stopped() {
                        return invalid(start);
                    }
                    if !self.expect(Tok::RParen, "to close '$(' in the path") {
                        self.bail = true;
                        return invalid(start);
                    }
                    parts.push(PathPart::Interp(e));
                }
                Tok::Slash => {
                    self.bump();
                    self.error(
                        t.span,
                        "a '/' in a path must be followed by a segment or $(expression); write division with spaces on both sides",
                    );
                    self.bail = true;
                    return invalid(start);
                }
                _ => break,
            }
        }
        let span = start.to(Span::new(self.prev_end(), self.prev_end()));
        self.node(ExprKind::Path(parts), span)
    }
}

/// Whether a primary expression (no unary operator) can start with `t`.
fn starts_primary(p: &Parser<'_>, t: crate::lexer::Token) -> bool {
    !matches!(t.kind, Tok::Minus | Tok::Bang) && starts_expression(p, t)
}
