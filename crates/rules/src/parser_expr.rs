//! The expression half of the parser: precedence climbing over the reference's table
//! (high → low: postfix `a[i] a[i:j] a.b f()`, unary `! -`, `* / %`, `+ -`, `< <= > >=`,
//! `in is`, `== !=`, `&&`, `||`, `?:`), literals (with escape decoding) and path literals with
//! `$(expr)` interpolation.
//!
//! Every constructed node passes through [`Parser::node`], which refuses trees taller than the
//! nesting limit, so no later pass can overflow the stack on hostile input.

use crate::ast::{BinOp, Expr, ExprKind, PathPart, UnOp};
use crate::lexer::{Span, Tok};
use crate::parser::{MAX_TREE_HEIGHT, Parser, shorten};

fn invalid(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Invalid,
        span,
        depth: 1,
    }
}

impl<'s> Parser<'s> {
    pub(crate) fn node(&mut self, kind: ExprKind, span: Span) -> Expr {
        let e = Expr::new(kind, span);
        if e.depth as usize > MAX_TREE_HEIGHT {
            self.error(
                span,
                format!("this expression is more than {MAX_TREE_HEIGHT} operations deep; split it into functions"),
            );
            self.abort = true;
            return invalid(span);
        }
        e
    }

    /// A full expression (ternary level).
    pub(crate) fn expr(&mut self) -> Expr {
        let here = self.peek().span;
        if !self.enter(here) {
            return invalid(here);
        }
        let cond = self.binary(1);
        let e = if self.eat(Tok::Question) {
            let a = self.expr();
            self.expect(Tok::Colon, "in the conditional expression (a ? b : c)");
            let b = self.expr();
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

    fn binary_op(&mut self) -> Option<(BinOp, u8)> {
        let t = self.peek();
        Some(match t.kind {
            Tok::OrOr => (BinOp::Or, 1),
            Tok::AndAnd => (BinOp::And, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::NotEq => (BinOp::Ne, 3),
            Tok::Ident if self.cur.text(t.span) == "in" => (BinOp::In, 4),
            // `is` is handled by the caller; report it with the `in` level.
            Tok::Ident if self.cur.text(t.span) == "is" => (BinOp::In, 4),
            Tok::Lt => (BinOp::Lt, 5),
            Tok::Le => (BinOp::Le, 5),
            Tok::Gt => (BinOp::Gt, 5),
            Tok::Ge => (BinOp::Ge, 5),
            Tok::Plus => (BinOp::Add, 6),
            Tok::Minus => (BinOp::Sub, 6),
            Tok::Star => (BinOp::Mul, 7),
            Tok::Slash => (BinOp::Div, 7),
            Tok::Percent => (BinOp::Rem, 7),
            _ => return None,
        })
    }

    fn binary(&mut self, min: u8) -> Expr {
        let mut lhs = self.unary();
        while !self.abort {
            let Some((op, prec)) = self.binary_op() else {
                break;
            };
            if prec < min {
                break;
            }
            let t = self.bump();
            if t.kind == Tok::Ident && self.cur.text(t.span) == "is" {
                let Some((ty, ty_span)) = self.ident("naming a type after 'is'") else {
                    return invalid(lhs.span);
                };
                let span = lhs.span.to(ty_span);
                lhs = self.node(ExprKind::Is(Box::new(lhs), ty), span);
                continue;
            }
            let rhs = self.binary(prec + 1);
            let span = lhs.span.to(rhs.span);
            lhs = self.node(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span);
        }
        lhs
    }

    fn unary(&mut self) -> Expr {
        let t = self.peek();
        let op = match t.kind {
            Tok::Bang => UnOp::Not,
            Tok::Minus => UnOp::Neg,
            _ => return self.postfix(),
        };
        if !self.enter(t.span) {
            return invalid(t.span);
        }
        self.bump();
        let next = self.peek();
        let e = if op == UnOp::Neg && matches!(next.kind, Tok::Int | Tok::Float) {
            // Fold `-literal` here so that i64::MIN is expressible.
            self.bump();
            let text = format!("-{}", self.cur.text(next.span));
            let lit = self.number(next.kind, &text, t.span.to(next.span));
            self.postfix_from(lit)
        } else {
            let operand = self.unary();
            let span = t.span.to(operand.span);
            self.node(ExprKind::Unary(op, Box::new(operand)), span)
        };
        self.leave();
        e
    }

    fn postfix(&mut self) -> Expr {
        let base = self.primary();
        self.postfix_from(base)
    }

    fn postfix_from(&mut self, mut e: Expr) -> Expr {
        while !self.abort {
            let t = self.peek();
            match t.kind {
                Tok::Dot => {
                    self.bump();
                    let Some((name, span)) = self.ident("after '.'") else {
                        return invalid(e.span);
                    };
                    let span = e.span.to(span);
                    e = self.node(ExprKind::Member(Box::new(e), name), span);
                }
                Tok::LParen => {
                    if !matches!(e.kind, ExprKind::Ident(_) | ExprKind::Member(..)) {
                        self.error(t.span, "only a function name or a method can be called");
                    }
                    self.bump();
                    let args = self.list_of(Tok::RParen, "in the argument list");
                    let span = e.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
                    e = self.node(ExprKind::Call(Box::new(e), args), span);
                }
                Tok::LBracket => {
                    self.bump();
                    let start = if self.at(Tok::Colon) {
                        None
                    } else {
                        Some(self.expr())
                    };
                    if self.eat(Tok::Colon) {
                        let end = if self.at(Tok::RBracket) {
                            None
                        } else {
                            Some(Box::new(self.expr()))
                        };
                        self.expect(Tok::RBracket, "to close the range");
                        let span = e.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
                        e = self.node(ExprKind::Slice(Box::new(e), start.map(Box::new), end), span);
                    } else {
                        self.expect(Tok::RBracket, "to close the index");
                        let span = e.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
                        let index = start.unwrap_or_else(|| invalid(span));
                        e = self.node(ExprKind::Index(Box::new(e), Box::new(index)), span);
                    }
                }
                _ => break,
            }
        }
        e
    }

    /// `a, b, c` up to `close` (consumed); a trailing comma is allowed.
    fn list_of(&mut self, close: Tok, context: &str) -> Vec<Expr> {
        let mut items = Vec::new();
        while !self.abort && !self.eat(close) {
            items.push(self.expr());
            if !self.eat(Tok::Comma) {
                self.expect(close, context);
                break;
            }
        }
        items
    }

    fn primary(&mut self) -> Expr {
        let t = self.peek();
        if self.abort {
            return invalid(t.span);
        }
        match t.kind {
            Tok::Int | Tok::Float => {
                self.bump();
                let text = self.cur.text(t.span);
                self.number(t.kind, text, t.span)
            }
            Tok::Str | Tok::RawStr | Tok::Bytes => {
                self.bump();
                self.string_literal(t.kind, t.span)
            }
            Tok::Ident => {
                self.bump();
                let kind = match self.cur.text(t.span) {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "null" => ExprKind::Null,
                    name => ExprKind::Ident(name.to_string()),
                };
                self.node(kind, t.span)
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr();
                self.expect(Tok::RParen, "to close the parenthesis");
                e
            }
            Tok::LBracket => {
                if !self.enter(t.span) {
                    return invalid(t.span);
                }
                self.bump();
                let items = self.list_of(Tok::RBracket, "to close the list");
                self.leave();
                let span = t.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
                self.node(ExprKind::List(items), span)
            }
            Tok::LBrace => {
                if !self.enter(t.span) {
                    return invalid(t.span);
                }
                self.bump();
                let entries = self.map_entries();
                self.leave();
                let span = t.span.to(Span::new(self.cur.prev_end, self.cur.prev_end));
                self.node(ExprKind::Map(entries), span)
            }
            Tok::Slash => {
                if !self.enter(t.span) {
                    return invalid(t.span);
                }
                let e = self.path_literal(t.span.start as usize);
                self.leave();
                e
            }
            _ => {
                let found = self.describe(t);
                self.error(t.span, format!("expected an expression, found {found}"));
                if !matches!(t.kind, Tok::Semi | Tok::RBrace | Tok::RParen | Tok::Eof) {
                    self.bump();
                }
                invalid(t.span)
            }
        }
    }

    fn map_entries(&mut self) -> Vec<(Expr, Expr)> {
        let mut entries = Vec::new();
        while !self.abort && !self.eat(Tok::RBrace) {
            let key = self.expr();
            self.expect(Tok::Colon, "between a map key and its value");
            let value = self.expr();
            entries.push((key, value));
            if !self.eat(Tok::Comma) {
                self.expect(Tok::RBrace, "to close the map");
                break;
            }
        }
        entries
    }

    fn number(&mut self, kind: Tok, text: &str, span: Span) -> Expr {
        let parsed = if kind == Tok::Float {
            text.parse::<f64>().ok().map(ExprKind::Float)
        } else {
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, text),
            };
            let value = match digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                Some(hex) => i128::from_str_radix(hex, 16).ok(),
                None => digits.parse::<i128>().ok(),
            };
            value
                .map(|v| if neg { -v } else { v })
                .and_then(|v| i64::try_from(v).ok())
                .map(ExprKind::Int)
        };
        match parsed {
            Some(k) => self.node(k, span),
            None => {
                self.error(span, format!("number '{}' is out of range", shorten(text)));
                invalid(span)
            }
        }
    }

    fn string_literal(&mut self, kind: Tok, span: Span) -> Expr {
        let text = self.cur.text(span);
        let is_bytes = kind == Tok::Bytes;
        let body = match kind {
            Tok::Str => text.get(1..text.len().saturating_sub(1)),
            _ => text.get(2..text.len().saturating_sub(1)),
        }
        .unwrap_or("");
        if kind == Tok::RawStr {
            return self.node(ExprKind::Str(body.to_string()), span);
        }
        match unescape(body) {
            Ok(bytes) if is_bytes => self.node(ExprKind::Bytes(bytes), span),
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => self.node(ExprKind::Str(s), span),
                Err(_) => {
                    self.error(span, "this string's escapes do not form valid UTF-8");
                    invalid(span)
                }
            },
            Err(msg) => {
                self.error(span, msg);
                invalid(span)
            }
        }
    }

    /// `/seg/$(expr)/seg…` read from raw text starting at the `/` at `start`.
    fn path_literal(&mut self, start: usize) -> Expr {
        let src = self.cur.src();
        let bytes = src.as_bytes();
        let mut pos = start;
        let mut parts = Vec::new();
        while !self.abort && bytes.get(pos) == Some(&b'/') {
            pos += 1;
            if src[pos..].starts_with("$(") {
                self.cur.seek(pos + 2);
                let e = self.expr();
                self.expect(Tok::RParen, "to close '$(' in the path");
                parts.push(PathPart::Interp(e));
                pos = self.cur.prev_end;
                continue;
            }
            if src[pos..].starts_with("(default)") {
                parts.push(PathPart::Literal("(default)".to_string()));
                pos += "(default)".len();
                continue;
            }
            let len = src[pos..]
                .find(|c: char| !(c.is_alphanumeric() || "_-.~%@+".contains(c)))
                .unwrap_or(src.len() - pos);
            if len == 0 {
                self.error(
                    Span::new(pos.saturating_sub(1), pos + 1),
                    "empty or invalid path segment; write a name or $(expression) after '/'",
                );
                break;
            }
            parts.push(PathPart::Literal(src[pos..pos + len].to_string()));
            pos += len;
        }
        self.cur.seek(pos);
        self.node(ExprKind::Path(parts), Span::new(start, pos))
    }
}

/// Decodes backslash escapes into bytes (`\xHH` may produce non-UTF-8 bytes).
fn unescape(body: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("a string cannot end with a lone backslash".into());
        };
        let simple = match e {
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'a' => Some(7),
            'b' => Some(8),
            'f' => Some(12),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' => Some(b'\''),
            '"' => Some(b'"'),
            '`' => Some(b'`'),
            '?' => Some(b'?'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        if ('0'..='7').contains(&e) {
            // Three-place octal, as in b'\052'.
            let rest: String = chars.by_ref().take(2).collect();
            let value = (rest.len() == 2)
                .then(|| u32::from_str_radix(&format!("{e}{rest}"), 8).ok())
                .flatten()
                .filter(|v| *v <= 0o377)
                .ok_or_else(|| {
                    format!("'\\{e}{rest}' needs three octal digits (\\000 to \\377)")
                })?;
            out.push(value as u8);
            continue;
        }
        let digits = match e {
            'x' | 'X' => 2,
            'u' => 4,
            'U' => 8,
            other => return Err(format!("unknown escape '\\{other}' in a string")),
        };
        let hex: String = chars.by_ref().take(digits).collect();
        let value = (hex.len() == digits)
            .then(|| u32::from_str_radix(&hex, 16).ok())
            .flatten()
            .ok_or_else(|| format!("'\\{e}' needs {digits} hex digits"))?;
        if digits == 2 {
            out.push(value as u8);
        } else {
            let c = char::from_u32(value)
                .ok_or_else(|| format!("'\\{e}{hex}' is not a Unicode scalar value"))?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn unescapes_table() {
        let table: &[(&str, Result<&[u8], &str>)] = &[
            ("a\\nb", Ok(b"a\nb")),
            ("\\x41\\u00e9", Ok("Aé".as_bytes())),
            ("\\'\\\"", Ok(b"'\"")),
            ("\\q", Err("unknown escape")),
            ("\\052\\342\\202\\254", Ok("*€".as_bytes())),
            ("\\0", Err("three octal digits")),
            ("\\u12", Err("needs 4 hex digits")),
        ];
        for (input, want) in table {
            match (unescape(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got[..], *w, "{input}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{input}: {got}"),
                (got, _) => panic!("{input}: {got:?}"),
            }
        }
    }
}
