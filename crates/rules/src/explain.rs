//! Denial explanations: for an `allow` that did not grant, find the smallest sub-expression that
//! made it fail and say, for a person, what value it saw and what the rule needed.
//!
//! The explainer re-evaluates parts of the condition with the same context (bindings, request,
//! document cache) on a separate budget, following the logic the evaluator used: for `a && b` it
//! blames the first side that was not true, for `a || b` both sides, `!x` flips what is needed,
//! `?:` follows the chosen branch, and user functions are entered with their arguments. At a leaf
//! it reports a comparison's operands, a missing key, a null, or a type error. It never changes a
//! decision; it only describes one.

use crate::ast::{BinOp, UnOp};
use crate::error::EvalError;
use crate::eval::{Ctx, Frame};
use crate::lexer::Span;
use crate::program::{Node, NodeKind, PathNode};
use crate::value::Val;

/// Budget for explaining one allow. The explainer re-evaluates sub-expressions as it descends
/// (quadratic in depth at worst); explanations are rare, and this still bounds them to a few ms.
const EXPLAIN_BUDGET: u32 = 200_000;

/// Why one allow did not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The line of the allow statement.
    pub allow_line: usize,
    /// 1-based line of the blamed sub-expression.
    pub line: usize,
    /// The blamed sub-expression, as written.
    pub expression: String,
    /// The explanation, phrased for a person.
    pub message: String,
}

pub(crate) struct Explainer<'c, 'a, 'p> {
    pub ctx: &'c mut Ctx<'a, 'p>,
    pub src: &'p str,
    pub allow_line: usize,
    pub out: Vec<Reason>,
    /// Active `why`/`culprit` frames (bounded like the evaluator's own nesting).
    pub depth: u32,
    /// What the condition being blamed needed, once known.
    pub needed: Option<String>,
}

/// Deepest the explainer descends before blaming the expression it has reached.
const MAX_EXPLAIN_DEPTH: u32 = 200;

fn shorten(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 100 {
        let mut t: String = one_line.chars().take(100).collect();
        t.push('…');
        t
    } else {
        one_line
    }
}

fn render(v: &Val<'_>) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let mut t: String = s.chars().take(80).collect();
        t.push('…');
        t
    } else {
        s
    }
}

impl<'c, 'a, 'p> Explainer<'c, 'a, 'p> {
    fn text(&self, span: Span) -> String {
        shorten(
            self.src
                .get(span.start as usize..span.end as usize)
                .unwrap_or("?"),
        )
    }

    fn line(&self, span: Span) -> usize {
        crate::check::line_of(self.src, span)
    }

    fn eval(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        self.ctx.eval(n, f)
    }

    fn push(&mut self, n: &'p Node, message: String) {
        let expression = self.text(n.span);
        let line = self.line(n.span);
        self.out.push(Reason {
            allow_line: self.allow_line,
            line,
            expression,
            message,
        });
    }

    /// Explains why the whole condition of an allow did not come out `true`.
    pub(crate) fn explain(&mut self, cond: &'p Node) {
        let saved = self.ctx.count();
        self.ctx.set_count(0);
        self.ctx.set_count_limit(EXPLAIN_BUDGET);
        self.why(cond, &mut Frame::top(), true);
        self.ctx.set_count_limit(crate::eval::MAX_EXPRESSIONS);
        self.ctx.set_count(saved);
    }

    /// `n` needed to be `want` but was not.
    fn why(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>, want: bool) {
        if self.depth >= MAX_EXPLAIN_DEPTH {
            return self.leaf(n, f, want);
        }
        self.depth += 1;
        self.needed = None;
        self.why_inner(n, f, want);
        self.depth -= 1;
    }

    fn why_inner(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>, want: bool) {
        match &n.kind {
            NodeKind::Binary(BinOp::And, a, b) if want => match self.eval(a, f) {
                Ok(Val::Bool(true)) => self.why(b, f, true),
                _ => self.why(a, f, true),
            },
            NodeKind::Binary(BinOp::Or, a, b) if !want => match self.eval(a, f) {
                Ok(Val::Bool(false)) => self.why(b, f, false),
                _ => self.why(a, f, false),
            },
            NodeKind::Binary(BinOp::Or, a, b) if want => {
                self.why(a, f, true);
                self.why(b, f, true);
            }
            NodeKind::Unary(UnOp::Not, x) => match self.eval(x, f) {
                Err(e) => self.culprit(x, f, e),
                Ok(_) => self.why(x, f, !want),
            },
            NodeKind::Cond(c, a, b) => match self.eval(c, f) {
                Ok(Val::Bool(true)) => self.why(a, f, want),
                Ok(Val::Bool(false)) => self.why(b, f, want),
                Ok(v) => self.push(
                    c,
                    format!("`{}` is {}, not a bool", self.text(c.span), render(&v)),
                ),
                Err(e) => self.culprit(c, f, e),
            },
            NodeKind::Call(id, args) => match self.ctx.call_frame(*id, args, f) {
                Ok(mut frame) => match frame.func {
                    Some(func) => self.why(&func.body, &mut frame, want),
                    None => self.leaf(n, f, want),
                },
                Err(_) => self.leaf(n, f, want),
            },
            _ => self.leaf(n, f, want),
        }
    }

    fn leaf(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>, want: bool) {
        let value = match self.eval(n, f) {
            Err(e) if e.is_fatal() => {
                self.push(n, e.to_string());
                return;
            }
            Err(e) => {
                // Say what the failing condition needed, not just that it failed.
                self.needed = Some(format!(
                    "the rule at line {} needs {}`{}`",
                    self.allow_line,
                    if want { "" } else { "!" },
                    self.text(n.span)
                ));
                return self.culprit(n, f, e);
            }
            Ok(v) => v,
        };
        let needs = if want { "" } else { "not " };
        let message = match &n.kind {
            NodeKind::Binary(op, a, b) if is_comparison(*op) => {
                let l = self.eval(a, f).map(|v| render(&v)).unwrap_or_default();
                let r = self.eval(b, f).map(|v| render(&v)).unwrap_or_default();
                let (ta, tb) = (self.text(a.span), self.text(b.span));
                let mut m = if is_literal(a) {
                    format!("`{tb}` is {r}")
                } else {
                    format!("`{ta}` is {l}")
                };
                if !is_literal(a) && !is_literal(b) {
                    m.push_str(&format!(" and `{tb}` is {r}"));
                }
                m.push_str(&format!(
                    "; the rule at line {} needs {needs}`{ta} {} {tb}`",
                    self.allow_line,
                    op.symbol()
                ));
                m
            }
            NodeKind::Is(x, t) => {
                let v = self.eval(x, f).map(|v| v.type_name()).unwrap_or("?");
                format!(
                    "`{}` is a {v}; the rule at line {} needs it {needs}to be a {}",
                    self.text(x.span),
                    self.allow_line,
                    format!("{t:?}").to_lowercase()
                )
            }
            _ => match value {
                Val::Bool(b) => format!(
                    "`{}` is {b}; the rule at line {} needs it to be {want}",
                    self.text(n.span),
                    self.allow_line
                ),
                other => format!(
                    "`{}` is {} ({}), but the rule at line {} needs a bool",
                    self.text(n.span),
                    render(&other),
                    other.type_name(),
                    self.allow_line
                ),
            },
        };
        self.push(n, message);
    }

    /// `n` failed with `err`: blame its smallest failing part.
    fn culprit(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>, err: EvalError) {
        if err.is_fatal() {
            return self.push(n, err.to_string());
        }
        if self.depth >= MAX_EXPLAIN_DEPTH {
            let message = self.describe_error(n, &err);
            return self.push(n, message);
        }
        self.depth += 1;
        self.culprit_inner(n, f, err);
        self.depth -= 1;
    }

    fn culprit_inner(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>, err: EvalError) {
        match &n.kind {
            NodeKind::Call(id, args) => {
                for a in args {
                    if let Err(e) = self.eval(a, f) {
                        return self.culprit(a, f, e);
                    }
                }
                if let Ok(mut frame) = self.ctx.call_frame(*id, args, f)
                    && let Some(func) = frame.func
                    && let Err(e) = self.eval(&func.body, &mut frame)
                {
                    return self.culprit(&func.body, &mut frame, e);
                }
            }
            NodeKind::Local(i) => {
                if let Some(func) = f.func
                    && let Some(let_node) = func.lets.get((*i as usize).saturating_sub(func.params))
                    && (*i as usize) >= func.params
                {
                    // The let's value is evaluated where it is declared: with the locals
                    // before it.
                    let mut before = f.prefix(*i as usize);
                    return self.culprit(let_node, &mut before, err);
                }
            }
            NodeKind::Binary(BinOp::And | BinOp::Or, a, b) => {
                for side in [a, b] {
                    if let Err(e) = self.eval(side, f) {
                        return self.culprit(side, f, e);
                    }
                }
            }
            NodeKind::Cond(c, a, b) => {
                let branch = match self.eval(c, f) {
                    Ok(Val::Bool(true)) => a,
                    Ok(Val::Bool(false)) => b,
                    _ => c,
                };
                if let Err(e) = self.eval(branch, f) {
                    return self.culprit(branch, f, e);
                }
            }
            _ => {
                for child in children(n) {
                    if let Err(e) = self.eval(child, f) {
                        return self.culprit(child, f, e);
                    }
                }
            }
        }
        let message = self.describe_error(n, &err);
        self.push(n, message);
    }

    fn describe_error(&self, n: &'p Node, err: &EvalError) -> String {
        let whole = self.text(n.span);
        let needed = self
            .needed
            .clone()
            .unwrap_or_else(|| format!("the rule at line {} cannot be evaluated", self.allow_line));
        let (obj, key) = match &n.kind {
            NodeKind::Member(o, k) => (Some(o), Some(k.to_string())),
            NodeKind::Index(o, _) => (Some(o), None),
            NodeKind::Method(o, _, _) | NodeKind::Matches(o, _) => (Some(o), None),
            _ => (None, None),
        };
        let obj_text = obj.map(|o| self.text(o.span)).unwrap_or_default();
        match err {
            EvalError::MissingKey(k) => {
                let k = key.unwrap_or_else(|| k.clone());
                if obj_text.ends_with("auth.token") {
                    format!("`{whole}` is not set in the token (no claim '{k}'); {needed}")
                } else if self.ctx.is_list() && obj_text.starts_with("resource.data") {
                    format!(
                        "the query does not constrain `{whole}`, so the rule at line {} cannot be proven for every document the query could return (rules are not filters)",
                        self.allow_line
                    )
                } else {
                    format!("`{obj_text}` has no field '{k}'; {needed}")
                }
            }
            EvalError::Null(_) => {
                let hint = match obj_text.as_str() {
                    "request.auth" => " (the request is not signed in)",
                    "resource" => " (the document does not exist)",
                    "request.resource" => " (this request writes no document)",
                    _ => "",
                };
                if obj.is_some() {
                    format!("`{obj_text}` is null{hint}, so `{whole}` cannot be read; {needed}")
                } else {
                    format!("`{whole}`: {err}; {needed}")
                }
            }
            EvalError::Unprovable(_) => format!(
                "`{whole}`: {err}, so the rule at line {} cannot allow this query (rules are not filters)",
                self.allow_line
            ),
            other => format!("`{whole}`: {other}; {needed}"),
        }
    }
}

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In
    )
}

fn is_literal(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Const(..))
}

/// Sub-expressions in evaluation order (user calls and `let`s are handled by the caller).
fn children(n: &Node) -> Vec<&Node> {
    match &n.kind {
        NodeKind::List(items) | NodeKind::Builtin(_, items) => items.iter().collect(),
        NodeKind::Slice(a, b, c) => vec![a, b, c],
        NodeKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        NodeKind::Path(parts) => parts
            .iter()
            .filter_map(|p| match p {
                PathNode::Interp(e) => Some(e),
                PathNode::Literal(_) => None,
            })
            .collect(),
        NodeKind::Member(o, _)
        | NodeKind::Unary(_, o)
        | NodeKind::Is(o, _)
        | NodeKind::Matches(o, _) => vec![o],
        NodeKind::Index(a, b) | NodeKind::Binary(_, a, b) => vec![a, b],
        NodeKind::Method(r, _, args) => std::iter::once(&**r).chain(args.iter()).collect(),
        NodeKind::Cond(c, a, b) => vec![c, a, b],
        _ => Vec::new(),
    }
}
