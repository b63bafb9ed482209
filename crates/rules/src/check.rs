//! Name resolution and static checks: turns the syntax tree into the resolved program.
//!
//! Variables become slots (function parameters and `let`s → frame slots; match wildcards →
//! capture slots; `request`/`resource` → dedicated nodes), calls become user-function indexes or
//! built-ins with checked arity, methods are checked against the known method names, and the
//! language's static limits are enforced: 7 parameters, 10 `let`s, no recursion or cycles, call
//! chains of at most 20, match nesting of 10 and 20 captures. Every problem becomes a
//! [`Diagnostic`]; constant folding is delegated to `compile::fold` as nodes are built.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{self, Expr, ExprKind, PathPart};
use crate::compile::fold;
use crate::error::Diagnostic;
use crate::lexer::Span;
use crate::methods::compile_regex;
use crate::program::{
    AllowDef, Builtin, FuncDef, Node, NodeKind, PathNode, TypeName, mask_of, method_arity,
};

pub const MAX_PARAMS: usize = 7;
pub const MAX_LETS: usize = 10;
pub const MAX_CALL_DEPTH: usize = 20;
pub const MAX_MATCH_NESTING: usize = 10;
pub const MAX_CAPTURES: usize = 20;

pub(crate) struct Checker<'s> {
    pub src: &'s str,
    /// Byte offsets where lines start, for line numbers in O(log n).
    line_starts: Vec<usize>,
    pub diags: Vec<Diagnostic>,
    pub functions: Vec<Option<FuncDef>>,
    /// Function names, spans and parameter counts, by index.
    func_info: Vec<(String, Span, usize)>,
    /// Visible function names, innermost block last.
    func_scopes: Vec<HashMap<String, u32>>,
    /// Wildcards in scope, outermost first; a wildcard's slot is its index.
    pub wildcards: Vec<String>,
    /// Call edges found in each function's body.
    edges: Vec<Vec<(u32, Span)>>,
    /// Set while checking the receiver of `path.bind(map)`: an unknown `$(name)` there is a
    /// placeholder for `bind`, not an error.
    bind_placeholders: bool,
}

/// Names visible inside one expression: the frame of the enclosing function, if any.
struct Frame<'f> {
    locals: &'f [String],
    /// Function currently being checked (for call edges).
    func: Option<u32>,
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
    pub fn new(src: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Checker {
            src,
            line_starts,
            diags: Vec::new(),
            functions: Vec::new(),
            func_info: Vec::new(),
            func_scopes: Vec::new(),
            wildcards: Vec::new(),
            edges: Vec::new(),
            bind_placeholders: false,
        }
    }

    /// The 1-based line of a span's start.
    pub fn line(&self, span: Span) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start as usize)
            .max(1)
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.src, span, msg));
    }

    /// Declares a block's functions (so they may call each other in any order) and checks their
    /// bodies. Call before checking the block's allows and children; pair with `pop_functions`.
    pub fn push_functions(&mut self, funcs: &[ast::Function]) {
        let mut scope = HashMap::new();
        let mut ids = Vec::new();
        for f in funcs {
            if scope.contains_key(&f.name) {
                self.error(
                    f.span,
                    format!("function '{}' is declared twice in this block", f.name),
                );
                continue;
            }
            let id = self.functions.len() as u32;
            self.functions.push(None);
            self.func_info
                .push((f.name.clone(), f.span, f.params.len()));
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

    pub fn pop_functions(&mut self) {
        self.func_scopes.pop();
    }

    fn function(&mut self, id: u32, f: &ast::Function) -> Option<FuncDef> {
        if f.params.len() > MAX_PARAMS {
            self.error(
                f.span,
                format!(
                    "function '{}' has {} parameters; the limit is {MAX_PARAMS}",
                    f.name,
                    f.params.len()
                ),
            );
        }
        if f.lets.len() > MAX_LETS {
            self.error(
                f.span,
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
        for (name, value, span) in &f.lets {
            let frame = Frame {
                locals: &locals,
                func: Some(id),
            };
            lets.push(self.expr(value, &frame));
            if locals.contains(name) {
                self.error(
                    *span,
                    format!("'{name}' is already defined in this function"),
                );
            }
            locals.push(name.clone());
        }
        let frame = Frame {
            locals: &locals,
            func: Some(id),
        };
        let body = self.expr(&f.body, &frame);
        Some(FuncDef {
            name: f.name.clone(),
            params: f.params.len(),
            lets,
            body,
            line: self.line(f.span),
        })
    }

    pub fn allow(&mut self, a: &ast::Allow) -> AllowDef {
        let condition = a.condition.as_ref().map(|e| {
            self.expr(
                e,
                &Frame {
                    locals: &[],
                    func: None,
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

    fn is_variable(&self, name: &str, frame: &Frame<'_>) -> bool {
        frame.locals.iter().any(|l| l == name)
            || self.wildcards.iter().any(|w| w == name)
            || matches!(name, "request" | "resource")
    }

    fn expr(&mut self, e: &Expr, frame: &Frame<'_>) -> Node {
        let kind = self.expr_kind(e, frame);
        fold(Node { kind, span: e.span })
    }

    fn boxed(&mut self, e: &Expr, frame: &Frame<'_>) -> Box<Node> {
        Box::new(self.expr(e, frame))
    }

    fn expr_kind(&mut self, e: &Expr, frame: &Frame<'_>) -> NodeKind {
        use crate::value::Val;
        match &e.kind {
            ExprKind::Invalid | ExprKind::Null => NodeKind::Const(Val::Null),
            ExprKind::Bool(b) => NodeKind::Const(Val::Bool(*b)),
            ExprKind::Int(i) => NodeKind::Const(Val::Int(*i)),
            ExprKind::Float(f) => NodeKind::Const(Val::Float(*f)),
            ExprKind::Str(s) => NodeKind::Const(Val::str(s)),
            ExprKind::Bytes(b) => {
                NodeKind::Const(Val::Bytes(crate::value::BytesV::O(Arc::from(b.as_slice()))))
            }
            ExprKind::List(items) => {
                NodeKind::List(items.iter().map(|i| self.expr(i, frame)).collect())
            }
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
                        PathPart::Interp(Expr {
                            kind: ExprKind::Ident(name),
                            ..
                        }) if self.bind_placeholders && !self.is_variable(name, frame) => {
                            PathNode::Literal(format!("$({name})"))
                        }
                        PathPart::Interp(e) => PathNode::Interp(self.expr(e, frame)),
                    })
                    .collect(),
            ),
            ExprKind::Ident(name) => self.variable(name, e.span, frame),
            ExprKind::Member(obj, name) => {
                if let ExprKind::Ident(ns) = &obj.kind
                    && Builtin::is_namespace(ns)
                    && !self.is_variable(ns, frame)
                {
                    self.error(
                        e.span,
                        format!("'{ns}.{name}' is a function; call it with (…)"),
                    );
                    return NodeKind::Const(Val::Null);
                }
                NodeKind::Member(self.boxed(obj, frame), Arc::from(name.as_str()))
            }
            ExprKind::Index(obj, idx) => {
                NodeKind::Index(self.boxed(obj, frame), self.boxed(idx, frame))
            }
            ExprKind::Slice(obj, a, b) => NodeKind::Slice(
                self.boxed(obj, frame),
                a.as_ref().map(|a| self.boxed(a, frame)),
                b.as_ref().map(|b| self.boxed(b, frame)),
            ),
            ExprKind::Call(callee, args) => self.call(callee, args, e.span, frame),
            ExprKind::Unary(op, x) => NodeKind::Unary(*op, self.boxed(x, frame)),
            ExprKind::Binary(op, a, b) => {
                NodeKind::Binary(*op, self.boxed(a, frame), self.boxed(b, frame))
            }
            ExprKind::Is(x, ty) => match TypeName::parse(ty) {
                Some(t) => NodeKind::Is(self.boxed(x, frame), t),
                None => {
                    self.error(
                        e.span,
                        format!("unknown type '{ty}'; use bool, int, float, number, string, list, map, set, timestamp, duration, path, latlng or bytes"),
                    );
                    NodeKind::Const(Val::Null)
                }
            },
            ExprKind::Cond(c, a, b) => NodeKind::Cond(
                self.boxed(c, frame),
                self.boxed(a, frame),
                self.boxed(b, frame),
            ),
        }
    }

    fn variable(&mut self, name: &str, span: Span, frame: &Frame<'_>) -> NodeKind {
        if let Some(i) = frame.locals.iter().rposition(|l| l == name) {
            return NodeKind::Local(i as u16);
        }
        if let Some(i) = self.wildcards.iter().rposition(|w| w == name) {
            return NodeKind::Wildcard(i as u16);
        }
        match name {
            "request" => NodeKind::Request,
            "resource" => NodeKind::Resource,
            _ => {
                let hint = if Builtin::is_namespace(name) {
                    format!("'{name}' is a namespace of functions, not a value")
                } else if self.lookup_function(name).is_some() {
                    format!("'{name}' is a function; call it with (…)")
                } else {
                    format!(
                        "unknown name '{name}' (not a parameter, let, wildcard, request or resource)"
                    )
                };
                self.error(span, hint);
                NodeKind::Const(crate::value::Val::Null)
            }
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Expr], span: Span, frame: &Frame<'_>) -> NodeKind {
        let nodes: Vec<Node> = args.iter().map(|a| self.expr(a, frame)).collect();
        let arity_error = |what: &str, want: usize| {
            format!(
                "{what} takes {want} argument{}, given {}",
                if want == 1 { "" } else { "s" },
                args.len()
            )
        };
        match &callee.kind {
            ExprKind::Ident(name) => {
                if let Some(id) = self.lookup_function(name) {
                    let want = self.func_info.get(id as usize).map(|f| f.2);
                    if let Some(want) = want
                        && want != args.len()
                    {
                        self.error(span, arity_error(&format!("function '{name}'"), want));
                    }
                    if let Some(f) = frame.func
                        && let Some(edges) = self.edges.get_mut(f as usize)
                    {
                        edges.push((id, span));
                    }
                    return NodeKind::Call(id, nodes);
                }
                match Builtin::lookup(None, name) {
                    Some((b, want)) => {
                        if want != args.len() {
                            self.error(span, arity_error(&format!("{name}()"), want));
                        }
                        NodeKind::Builtin(b, nodes)
                    }
                    None => {
                        self.error(callee.span, format!("unknown function '{name}'"));
                        NodeKind::Const(crate::value::Val::Null)
                    }
                }
            }
            ExprKind::Member(obj, name) => {
                if let ExprKind::Ident(ns) = &obj.kind
                    && Builtin::is_namespace(ns)
                    && !self.is_variable(ns, frame)
                {
                    return match Builtin::lookup(Some(ns), name) {
                        Some((b, want)) => {
                            if want != args.len() {
                                self.error(span, arity_error(&format!("{ns}.{name}()"), want));
                            }
                            NodeKind::Builtin(b, nodes)
                        }
                        None => {
                            self.error(callee.span, format!("unknown function '{ns}.{name}'"));
                            NodeKind::Const(crate::value::Val::Null)
                        }
                    };
                }
                let Some((lo, hi)) = method_arity(name) else {
                    self.error(callee.span, format!("unknown method '{name}()'"));
                    return NodeKind::Const(crate::value::Val::Null);
                };
                if args.len() < lo || args.len() > hi {
                    self.error(span, arity_error(&format!("method {name}()"), lo));
                }
                self.bind_placeholders = name == "bind" && matches!(obj.kind, ExprKind::Path(_));
                let recv = self.boxed(obj, frame);
                self.bind_placeholders = false;
                if name == "matches"
                    && let Some(Node {
                        kind: NodeKind::Const(crate::value::Val::Str(pattern)),
                        span: pspan,
                    }) = nodes.first()
                {
                    match compile_regex(pattern.as_str()) {
                        Ok(re) => return NodeKind::Matches(recv, Arc::new(re)),
                        Err(msg) => self.error(*pspan, msg),
                    }
                }
                NodeKind::Method(recv, Arc::from(name.as_str()), nodes)
            }
            _ => {
                // The parser already reported this.
                NodeKind::Const(crate::value::Val::Null)
            }
        }
    }

    /// Rejects recursion and call chains deeper than the limit. Call once, after every block.
    pub fn check_calls(&mut self) {
        let n = self.edges.len();
        // 0 = unvisited, 1 = on stack, 2 = done; depth[i] = longest chain starting at i.
        let mut state = vec![0u8; n];
        let mut depth = vec![1usize; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (node, next edge index).
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let edge = self.edges[node].get(*next).copied();
                *next += 1;
                match edge {
                    Some((callee, span)) => {
                        let c = callee as usize;
                        if c >= n {
                            continue;
                        }
                        match state[c] {
                            0 => {
                                state[c] = 1;
                                stack.push((c, 0));
                            }
                            1 => {
                                let from = stack.iter().position(|(f, _)| *f == c).unwrap_or(0);
                                let mut chain: Vec<&str> = stack[from..]
                                    .iter()
                                    .map(|(f, _)| self.func_info[*f].0.as_str())
                                    .collect();
                                chain.push(&self.func_info[c].0);
                                let msg =
                                    format!("recursion is not allowed: {}", chain.join(" → "));
                                self.error(span, msg);
                            }
                            _ => depth[node] = depth[node].max(depth[c] + 1),
                        }
                    }
                    None => {
                        state[node] = 2;
                        stack.pop();
                        if let Some(&(parent, _)) = stack.last() {
                            depth[parent] = depth[parent].max(depth[node] + 1);
                        }
                    }
                }
            }
        }
        for (i, d) in depth.iter().enumerate() {
            if *d > MAX_CALL_DEPTH {
                let (name, span, _) = self.func_info[i].clone();
                self.error(
                    span,
                    format!(
                        "calls starting at '{name}' nest {d} deep; the limit is {MAX_CALL_DEPTH}"
                    ),
                );
            }
        }
    }
}
