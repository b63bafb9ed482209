//! Name resolution and static checks: turns the syntax tree into the resolved program.
//!
//! Variables become slots (function parameters and `let`s → frame slots; match wildcards →
//! capture slots; `request`/`resource` → dedicated nodes) and calls become user-function
//! indexes or built-ins. What Firebase only warns about compiles here too and fails when
//! evaluated, as it does there: an unknown name (a null value error), an unknown function or a
//! call with the wrong number of arguments, an unknown method. What Firebase refuses is an
//! error here: a namespace (`math`) used as a value, an invalid regular expression literal
//! given to `matches()`/`split()`, more than 7 parameters, a repeated parameter or `let` name,
//! more than 11 `let`s, `let` in rules version 1, two functions of one name in one scope,
//! recursion, and call chains deeper than Firebase's check allows. Constant folding is delegated
//! to `compile::fold` as nodes are built.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{self, Expr, ExprKind, PathPart};
use crate::compile::fold;
use crate::error::Diagnostic;
use crate::lexer::Span;
use crate::methods::{compile_regex, repeated_repetition};
use crate::parser_expr::is_namespace;
use crate::program::{AllowDef, Builtin, FuncDef, Node, NodeKind, PathNode, TypeName, mask_of};
use crate::value::Val;

pub(crate) const MAX_PARAMS: usize = 7;
/// Firebase refuses a function with more than this many `let`s (its message says 10).
pub(crate) const MAX_LETS: usize = 11;
/// Firebase's compile-time bound on a chain of calls between the file's functions.
pub(crate) const MAX_CALL_CHAIN: usize = 21;

pub(crate) struct Checker<'s> {
    pub src: &'s str,
    /// Byte offsets where lines start, for line numbers in O(log n).
    line_starts: Vec<usize>,
    pub diags: Vec<Diagnostic>,
    /// What Firebase warns about: the file compiles, but the rules fail where they use it.
    pub warnings: Vec<Diagnostic>,
    pub functions: Vec<Option<FuncDef>>,
    /// Function names, name spans and parameter counts, by index.
    func_info: Vec<(String, Span, usize)>,
    /// Visible function names, innermost block last.
    func_scopes: Vec<HashMap<String, u32>>,
    /// Wildcards in scope, outermost first; a wildcard's slot is its index.
    pub wildcards: Vec<String>,
    /// Calls of the file's functions found in each function's body, in Firebase's order.
    edges: Vec<Vec<u32>>,
    /// Rules version 1: `let` is not allowed.
    pub v1: bool,
}

/// Names visible inside one expression: the frame of the enclosing function, if any.
struct Frame<'f> {
    locals: &'f [String],
    /// Calls found while checking (for the call graph), when inside a function.
    calls: Option<&'f mut Vec<u32>>,
}

pub(crate) fn line_of(src: &str, span: Span) -> usize {
    let end = (span.start as usize).min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl<'s> Checker<'s> {
    pub(crate) fn new(src: &'s str, v1: bool) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Checker {
            src,
            line_starts,
            diags: Vec::new(),
            warnings: Vec::new(),
            functions: Vec::new(),
            func_info: Vec::new(),
            func_scopes: Vec::new(),
            wildcards: Vec::new(),
            edges: Vec::new(),
            v1,
        }
    }

    /// The 1-based line of a span's start.
    pub(crate) fn line(&self, span: Span) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start as usize)
            .max(1)
    }

    pub(crate) fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.src, span, msg));
    }

    pub(crate) fn warn(&mut self, span: Span, msg: impl Into<String>) {
        if self.warnings.len() < 100 {
            self.warnings.push(Diagnostic::new(self.src, span, msg));
        }
    }

    /// Declares a block's functions (so they may call each other in any order) and checks their
    /// bodies. Call before checking the block's allows and children; pair with `pop_functions`.
    pub(crate) fn push_functions(&mut self, funcs: &[ast::Function]) {
        let mut scope = HashMap::new();
        let mut ids = Vec::new();
        for f in funcs {
            if scope.contains_key(&f.name) {
                self.error(
                    f.name_span,
                    format!("function '{}' is declared twice in this block", f.name),
                );
                continue;
            }
            let id = self.functions.len() as u32;
            self.functions.push(None);
            self.func_info
                .push((f.name.clone(), f.name_span, f.params.len()));
            self.edges.push(Vec::new());
            scope.insert(f.name.clone(), id);
            ids.push((id, f));
        }
        self.func_scopes.push(scope);
        for (id, f) in ids {
            let def = self.function(id, f);
            if let Some(slot) = self.functions.get_mut(id as usize) {
                *slot = def;
            }
        }
    }

    pub(crate) fn pop_functions(&mut self) {
        self.func_scopes.pop();
    }

    fn function(&mut self, id: u32, f: &ast::Function) -> Option<FuncDef> {
        if f.params.len() > MAX_PARAMS {
            self.error(
                f.name_span,
                format!(
                    "function '{}' has {} parameters; the limit is {MAX_PARAMS}",
                    f.name,
                    f.params.len()
                ),
            );
        }
        if f.lets.len() > MAX_LETS {
            self.error(
                f.body.span,
                format!(
                    "function '{}' has {} let bindings; the limit is {MAX_LETS}",
                    f.name,
                    f.lets.len()
                ),
            );
        }
        let mut locals: Vec<String> = Vec::new();
        for (p, span) in &f.params {
            if locals.contains(p) {
                self.error(*span, format!("parameter '{p}' is declared twice"));
            }
            locals.push(p.clone());
        }
        let mut lets = Vec::new();
        let mut let_calls: Vec<Vec<u32>> = Vec::new();
        for (name, value, span) in &f.lets {
            if self.v1 {
                self.error(
                    *span,
                    "let bindings need rules_version = '2' (they are not allowed in version 1)",
                );
            }
            let mut calls = Vec::new();
            let node = self.expr(
                value,
                &mut Frame {
                    locals: &locals,
                    calls: Some(&mut calls),
                },
            );
            lets.push(node);
            let_calls.push(calls);
            if locals.contains(name) {
                self.error(
                    *span,
                    format!("'{name}' is already defined in this function"),
                );
            }
            locals.push(name.clone());
        }
        let mut calls = Vec::new();
        let body = self.expr(
            &f.body,
            &mut Frame {
                locals: &locals,
                calls: Some(&mut calls),
            },
        );
        // Firebase checks the result first, then the lets from the last.
        for c in let_calls.into_iter().rev() {
            calls.extend(c);
        }
        if let Some(edges) = self.edges.get_mut(id as usize) {
            *edges = calls;
        }
        Some(FuncDef {
            name: f.name.clone(),
            params: f.params.len(),
            lets,
            body,
            line: self.line(f.span),
        })
    }

    pub(crate) fn allow(&mut self, a: &ast::Allow) -> AllowDef {
        for (name, span) in &a.unknown_methods {
            self.warn(
                *span,
                format!(
                    "unknown method '{name}' allows nothing; use read, write, get, list, create, update or delete"
                ),
            );
        }
        let condition = a.condition.as_ref().map(|e| {
            self.expr(
                e,
                &mut Frame {
                    locals: &[],
                    calls: None,
                },
            )
        });
        AllowDef {
            mask: a.methods.iter().fold(0, |m, &x| m | mask_of(x)),
            methods_text: Arc::from(
                a.methods
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            condition,
            line: self.line(a.span),
            id: a.span.start,
        }
    }

    fn lookup_function(&self, name: &str) -> Option<u32> {
        self.func_scopes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).copied())
    }

    fn expr(&mut self, e: &Expr, frame: &mut Frame<'_>) -> Node {
        let kind = self.expr_kind(e, frame);
        fold(Node { kind, span: e.span })
    }

    fn boxed(&mut self, e: &Expr, frame: &mut Frame<'_>) -> Box<Node> {
        Box::new(self.expr(e, frame))
    }

    fn all(&mut self, items: &[Expr], frame: &mut Frame<'_>) -> Vec<Node> {
        items.iter().map(|i| self.expr(i, frame)).collect()
    }

    fn expr_kind(&mut self, e: &Expr, frame: &mut Frame<'_>) -> NodeKind {
        match &e.kind {
            ExprKind::Invalid | ExprKind::Null => NodeKind::Const(Val::Null, 1),
            ExprKind::Bool(b) => NodeKind::Const(Val::Bool(*b), 1),
            ExprKind::Int(i) => NodeKind::Const(Val::Int(*i), 1),
            ExprKind::Float(f) => NodeKind::Const(Val::Float(*f), 1),
            ExprKind::Str(s) => NodeKind::Const(Val::str(s), 1),
            ExprKind::Bytes(b) => NodeKind::Const(
                Val::Bytes(crate::value::BytesV::O(Arc::from(b.as_slice()))),
                1,
            ),
            ExprKind::List(items) => NodeKind::List(self.all(items, frame)),
            ExprKind::Map(entries) => NodeKind::Map(
                entries
                    .iter()
                    .map(|(k, v)| (self.expr(k, frame), self.expr(v, frame)))
                    .collect(),
            ),
            ExprKind::Path(parts) => NodeKind::Path(
                parts
                    .iter()
                    .map(|p| match p {
                        PathPart::Literal(s) => PathNode::Literal(s.clone()),
                        PathPart::Interp(e) => PathNode::Interp(self.expr(e, frame)),
                    })
                    .collect(),
            ),
            ExprKind::Ident(name) => self.variable(name, e.span, frame),
            ExprKind::Member(obj, name) => {
                NodeKind::Member(self.boxed(obj, frame), Arc::from(name.as_str()))
            }
            ExprKind::Index(obj, idx) => {
                NodeKind::Index(self.boxed(obj, frame), self.boxed(idx, frame))
            }
            ExprKind::Slice(obj, a, b) => NodeKind::Slice(
                self.boxed(obj, frame),
                self.boxed(a, frame),
                self.boxed(b, frame),
            ),
            ExprKind::Call(name, args) => self.call(name, args, e.span, frame),
            ExprKind::NsCall(ns, name, args) => {
                let nodes = self.all(args, frame);
                match Builtin::lookup(Some(ns), name) {
                    Some((b, want)) => {
                        if want != args.len() {
                            self.warn(e.span, arity(&format!("{ns}.{name}()"), want, args.len()));
                        }
                        NodeKind::Builtin(b, nodes)
                    }
                    None => {
                        self.warn(
                            e.span,
                            format!("there is no function {ns}.{name}(); the rule fails where it is called"),
                        );
                        NodeKind::BadCall(Arc::from(
                            format!("there is no function {ns}.{name}()").as_str(),
                        ))
                    }
                }
            }
            ExprKind::Method(recv, name, args) => {
                if matches!(name.as_str(), "matches" | "split")
                    && let Some(Expr {
                        kind: ExprKind::Str(pattern),
                        span,
                        ..
                    }) = args.first()
                    && (repeated_repetition(pattern) || regex::Regex::new(pattern).is_err())
                {
                    self.error(
                        *span,
                        format!(
                            "invalid regular expression: {}",
                            crate::parser::shorten(pattern)
                        ),
                    );
                }
                if !crate::methods::is_method(name) {
                    self.warn(
                        e.span,
                        format!(
                            "no value has a method {name}(); the rule fails where it is called"
                        ),
                    );
                }
                let recv_node = self.boxed(recv, frame);
                let nodes = self.all(args, frame);
                if name == "matches"
                    && let [
                        Node {
                            kind: NodeKind::Const(Val::Str(pattern), 1),
                            ..
                        },
                    ] = nodes.as_slice()
                    && let Ok(re) = compile_regex(pattern.as_str())
                {
                    return NodeKind::Matches(recv_node, Arc::new(re));
                }
                NodeKind::Method(recv_node, Arc::from(name.as_str()), nodes)
            }
            ExprKind::Unary(op, x) => NodeKind::Unary(*op, self.boxed(x, frame)),
            ExprKind::Binary(op, a, b) => {
                NodeKind::Binary(*op, self.boxed(a, frame), self.boxed(b, frame))
            }
            ExprKind::Is(x, ty) => match TypeName::parse(ty) {
                Some(t) => NodeKind::Is(self.boxed(x, frame), t),
                // The parser reported the unknown type.
                None => NodeKind::Const(Val::Null, 1),
            },
            ExprKind::Cond(c, a, b) => NodeKind::Cond(
                self.boxed(c, frame),
                self.boxed(a, frame),
                self.boxed(b, frame),
            ),
        }
    }

    fn variable(&mut self, name: &str, span: Span, frame: &Frame<'_>) -> NodeKind {
        if is_namespace(name) {
            self.error(
                span,
                format!("'{name}' is a namespace of functions and cannot be used as a value"),
            );
            return NodeKind::Const(Val::Null, 1);
        }
        if let Some(i) = frame.locals.iter().rposition(|l| l == name) {
            return NodeKind::Local(i as u16);
        }
        let slots: Vec<u16> = self
            .wildcards
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, w)| *w == name)
            .map(|(i, _)| i as u16)
            .collect();
        if !slots.is_empty() {
            return NodeKind::Wildcard(slots.into_boxed_slice());
        }
        match name {
            "request" => NodeKind::Request,
            "resource" => NodeKind::Resource,
            _ => {
                self.warn(
                    span,
                    format!(
                        "unknown name '{name}' (not a parameter, let, wildcard in scope, request or resource); it is null where it is used, which fails the rule"
                    ),
                );
                NodeKind::Unknown(Arc::from(name))
            }
        }
    }

    fn call(&mut self, name: &str, args: &[Expr], span: Span, frame: &mut Frame<'_>) -> NodeKind {
        if let Some(id) = self.lookup_function(name) {
            if let Some(calls) = frame.calls.as_deref_mut() {
                calls.push(id);
            }
            let want = self.func_info.get(id as usize).map_or(0, |f| f.2);
            let nodes = self.all(args, frame);
            if want != args.len() {
                self.warn(span, arity(&format!("function {name}()"), want, args.len()));
                return NodeKind::BadCall(Arc::from(
                    format!(
                        "function {name}() takes {want} argument{}, given {}",
                        if want == 1 { "" } else { "s" },
                        args.len()
                    )
                    .as_str(),
                ));
            }
            return NodeKind::Call(id, nodes);
        }
        let nodes = self.all(args, frame);
        match Builtin::lookup(None, name) {
            Some((b, want)) => {
                if want != args.len() {
                    self.warn(span, arity(&format!("{name}()"), want, args.len()));
                }
                NodeKind::Builtin(b, nodes)
            }
            None => {
                self.warn(
                    span,
                    format!(
                        "unknown function {name}() (not a function in scope or a built-in); the rule fails where it is called"
                    ),
                );
                NodeKind::BadCall(Arc::from(format!("there is no function {name}()").as_str()))
            }
        }
    }

    /// Rejects recursion and call chains longer than Firebase's check allows. Firebase walks
    /// the call graph depth first from each function in source order, skipping functions it
    /// has finished, so a chain is measured from where that walk first reaches it.
    pub(crate) fn check_calls(&mut self) {
        let n = self.edges.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.func_info[i].1.start);
        // 0 = new, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; n];
        let mut found: Vec<(Vec<usize>, usize, bool)> = Vec::new();
        for &start in &order {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (function, its deduplicated callees, next callee index).
            let mut stack: Vec<(usize, Vec<usize>, usize)> = Vec::new();
            let callees = |edges: &Vec<Vec<u32>>, f: usize| {
                let mut c: Vec<usize> = edges[f].iter().map(|&g| g as usize).collect();
                c.dedup();
                c
            };
            state[start] = 1;
            stack.push((start, callees(&self.edges, start), 0));
            while let Some(top) = stack.last_mut() {
                let Some(&g) = top.1.get(top.2) else {
                    let (f, _, _) = stack.pop().unwrap_or((0, Vec::new(), 0));
                    state[f] = 2;
                    continue;
                };
                top.2 += 1;
                if g >= n {
                    continue;
                }
                match state[g] {
                    0 if stack.len() >= MAX_CALL_CHAIN => {
                        let chain: Vec<usize> = stack.iter().map(|(f, _, _)| *f).collect();
                        found.push((chain, g, false));
                        if let Some(top) = stack.last_mut() {
                            top.2 = top.1.len();
                        }
                    }
                    0 => {
                        state[g] = 1;
                        let c = callees(&self.edges, g);
                        stack.push((g, c, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(f, _, _)| *f == g).unwrap_or(0);
                        let chain: Vec<usize> = stack[from..].iter().map(|(f, _, _)| *f).collect();
                        found.push((chain, g, true));
                    }
                    _ => {}
                }
            }
        }
        for (chain, at, cycle) in found {
            let names: Vec<&str> = chain
                .iter()
                .map(|&i| self.func_info[i].0.as_str())
                .collect();
            let msg = if !cycle {
                format!(
                    "calls nest too deep: {} → {} is more than {MAX_CALL_CHAIN} functions",
                    names.join(" → "),
                    self.func_info[at].0
                )
            } else if chain.len() == 1 {
                format!("recursion is not allowed: {} calls itself", names.join(""))
            } else {
                format!(
                    "recursion is not allowed: {} → {}",
                    names.join(" → "),
                    self.func_info[at].0
                )
            };
            let span = self.func_info[at].1;
            self.error(span, msg);
        }
    }
}

fn arity(what: &str, want: usize, given: usize) -> String {
    format!(
        "{what} takes {want} argument{}, given {given}; the call fails",
        if want == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use crate::Ruleset;

    fn compiles(functions: &str) -> bool {
        let src = format!(
            "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{d}}/documents {{\n{functions}\nmatch /a/{{b}} {{ allow read: if f0(); }} }} }}"
        );
        Ruleset::compile(&src).is_ok()
    }

    /// A chain of `n` functions `f0 → f1 → … → f(n-1)`, declared in that order.
    fn chain(n: usize) -> String {
        (0..n)
            .map(|i| {
                if i + 1 < n {
                    format!("function f{i}() {{ return f{}(); }}\n", i + 1)
                } else {
                    format!("function f{i}() {{ return true; }}\n")
                }
            })
            .collect()
    }

    #[test]
    fn call_chains_as_firebase_measures_them() {
        assert!(compiles(&chain(21)));
        assert!(!compiles(&chain(22)));
        assert!(!compiles("function f0() { return f0(); }"));
        assert!(!compiles(
            "function f0() { return g(); } function g() { return f0(); }"
        ));
    }
}
