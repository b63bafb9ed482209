//! From source to a [`Ruleset`]: parse, check, build the match tree (children indexed by their
//! first literal segment) and fold constant sub-expressions.
//!
//! A file that produces any diagnostic yields no ruleset at all, so the evaluator only ever sees
//! checked programs. Folding evaluates pure nodes whose inputs are all constants with a request-less
//! context; a fold that errors is left in place so the error happens (and is traced) at run time.

use std::sync::Arc;

use crate::ast::{self, Segment};
use crate::check::{Checker, MAX_CAPTURES, MAX_MATCH_NESTING};
use crate::decide::Mode;
use crate::error::Diagnostic;
use crate::eval::{Ctx, Frame};
use crate::eval::{MAX_ACCESS_CALLS, MAX_BATCH_ACCESS_CALLS};
use crate::lexer::Span;
use crate::parser::parse;
use crate::program::{LiteralIndex, MatchNode, Node, NodeKind, PatSeg, PathNode, Program};
use crate::request::{Decision, DocumentReader, Request};

/// The source [`Ruleset::locked`] stands for.
pub const LOCKED_SOURCE: &str = "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n    // Nothing is allowed until rules are deployed.\n  }\n}\n";

/// Most path segments across a chain of nested match patterns.
pub const MAX_PATH_SEGMENTS: usize = 100;

/// A compiled, immutable rules program; cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) program: Program,
    source: Arc<str>,
}

impl Ruleset {
    /// Compiles rules source, or returns every problem found.
    pub fn compile(src: &str) -> Result<Ruleset, Vec<Diagnostic>> {
        let (file, mut diags) = parse(src);
        if !diags.is_empty() {
            return Err(diags);
        }
        let v1 = file.version.as_deref() != Some("2");
        let mut b = Builder {
            ck: Checker::new(src),
            matches: Vec::new(),
            v1,
            max_slots: 0,
        };
        let mut roots_by_literal = LiteralIndex::default();
        let mut roots_wild = Vec::new();
        let mut seen_firestore = false;
        for service in &file.services {
            if service.name != "cloud.firestore" {
                b.ck.error(
                    service.span,
                    format!(
                        "service '{}' is not supported; claimdb runs 'cloud.firestore' rules",
                        service.name
                    ),
                );
                continue;
            }
            seen_firestore = true;
            for a in &service.body.allows {
                b.ck.error(a.span, "an allow statement must be inside a match block");
            }
            let (lit, wild) = b.block(&service.body, "", 0, 0);
            for (k, v) in lit {
                roots_by_literal.entry(k).or_insert_with(Vec::new).extend(v);
            }
            roots_wild.extend(wild);
        }
        if !seen_firestore && b.ck.diags.is_empty() {
            b.ck.error(
                Span::new(0, 0),
                "no 'service cloud.firestore { … }' block found",
            );
        }
        b.ck.check_calls();
        diags.append(&mut b.ck.diags);
        if !diags.is_empty() {
            diags.sort_by_key(|d| (d.line, d.column));
            return Err(diags);
        }
        let functions = b.ck.functions.into_iter().flatten().collect();
        Ok(Ruleset {
            source: Arc::from(src),
            program: Program {
                functions,
                matches: b.matches,
                roots_by_literal,
                roots_wild,
                v1,
                wildcard_slots: b.max_slots,
            },
        })
    }

    /// Rules that allow nothing (the locked-down default before a rules file is loaded).
    pub fn locked() -> Ruleset {
        Ruleset {
            source: Arc::from(LOCKED_SOURCE),
            program: Program {
                functions: Vec::new(),
                matches: Vec::new(),
                roots_by_literal: LiteralIndex::default(),
                roots_wild: Vec::new(),
                v1: false,
                wildcard_slots: 0,
            },
        }
    }

    /// Decides one request. Documents for `get()`/`exists()` come from `reader`.
    pub fn evaluate(&self, request: &Request, reader: &dyn DocumentReader) -> Decision {
        crate::decide::decide(
            &self.program,
            request,
            reader,
            Mode {
                explain_with: None,
                access_limit: MAX_ACCESS_CALLS,
            },
        )
    }

    /// Decides the operations of one batched write or transaction: each may read at most 10
    /// documents and all together at most 20. `explain` fills [`Decision::reasons`].
    pub fn evaluate_batch(
        &self,
        requests: &[Request],
        reader: &dyn DocumentReader,
        explain: bool,
    ) -> Vec<Decision> {
        let mut remaining = MAX_BATCH_ACCESS_CALLS;
        requests
            .iter()
            .map(|r| {
                let mode = Mode {
                    explain_with: explain.then_some(&*self.source),
                    access_limit: remaining.min(MAX_ACCESS_CALLS),
                };
                let d = crate::decide::decide(&self.program, r, reader, mode);
                remaining = remaining.saturating_sub(d.reads);
                d
            })
            .collect()
    }

    /// Like [`Ruleset::evaluate`], and for a denial also fills [`Decision::reasons`]: for each
    /// allow tried, the smallest failing sub-expression and what it saw, phrased for a person.
    pub fn explain(&self, request: &Request, reader: &dyn DocumentReader) -> Decision {
        crate::decide::decide(
            &self.program,
            request,
            reader,
            Mode {
                explain_with: Some(&self.source),
                access_limit: MAX_ACCESS_CALLS,
            },
        )
    }

    /// The source this ruleset was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates one expression (with the given extra `function` declarations in scope) against
    /// a request and renders its value, or its error. For tests, `rules eval` style tools and
    /// explanations; `database` and `document` (the path, as `{document=**}`) are in scope.
    pub fn evaluate_expression(
        functions: &str,
        expr: &str,
        request: &Request,
        reader: &dyn DocumentReader,
    ) -> Result<String, String> {
        let src = format!(
            "rules_version = '2';\nservice cloud.firestore {{ match /databases/{{database}}/documents {{ match /{{document=**}} {{\n{functions}\nallow get: if {expr};\n}} }} }}"
        );
        let rules = Ruleset::compile(&src).map_err(|d| {
            d.iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        crate::decide::probe(&rules.program, request, reader)
    }

    /// Whether the file declared `rules_version = '2'`.
    pub fn is_v2(&self) -> bool {
        !self.program.v1
    }
}

struct Builder<'s> {
    ck: Checker<'s>,
    matches: Vec<MatchNode>,
    v1: bool,
    max_slots: usize,
}

type Children = (LiteralIndex, Vec<usize>);

impl Builder<'_> {
    /// Checks a block's functions and builds its child matches; returns the children index.
    fn block(&mut self, block: &ast::Block, prefix: &str, nesting: usize, segs: usize) -> Children {
        self.ck.push_functions(&block.functions);
        let mut by_literal = LiteralIndex::default();
        let mut wild = Vec::new();
        for m in &block.matches {
            let Some(idx) = self.match_node(m, prefix, nesting + 1, segs) else {
                continue;
            };
            match m.segments.first() {
                Some(Segment::Literal(l)) => by_literal.entry(l.clone()).or_default().push(idx),
                _ => wild.push(idx),
            }
        }
        self.ck.pop_functions();
        (by_literal, wild)
    }

    fn match_node(
        &mut self,
        m: &ast::Match,
        prefix: &str,
        nesting: usize,
        segs: usize,
    ) -> Option<usize> {
        if nesting > MAX_MATCH_NESTING {
            self.ck.error(
                m.span,
                format!("match blocks nest deeper than {MAX_MATCH_NESTING}"),
            );
            return None;
        }
        let segs = segs + m.segments.len();
        if segs > MAX_PATH_SEGMENTS {
            self.ck.error(
                m.span,
                format!("nested match patterns exceed {MAX_PATH_SEGMENTS} segments"),
            );
            return None;
        }
        let saved = self.ck.wildcards.len();
        let mut pattern = Vec::new();
        let mut text = prefix.to_string();
        let mut rests = 0;
        for (i, seg) in m.segments.iter().enumerate() {
            let slot = self.ck.wildcards.len() as u16;
            match seg {
                Segment::Literal(l) => {
                    text.push('/');
                    text.push_str(l);
                    pattern.push(PatSeg::Literal(l.clone()));
                }
                Segment::Single(name) | Segment::Rest(name) => {
                    if self.ck.wildcards.iter().any(|w| w == name) {
                        self.ck.error(
                            m.span,
                            format!("wildcard '{name}' is already bound by an enclosing match"),
                        );
                    }
                    self.ck.wildcards.push(name.clone());
                    if let Segment::Rest(_) = seg {
                        rests += 1;
                        if self.v1 && i + 1 != m.segments.len() {
                            self.ck.error(
                                m.span,
                                "in rules_version 1 a {name=**} wildcard must be the last segment; add rules_version = '2'",
                            );
                        }
                        text.push_str(&format!("/{{{name}=**}}"));
                        pattern.push(PatSeg::Rest(slot));
                    } else {
                        text.push_str(&format!("/{{{name}}}"));
                        pattern.push(PatSeg::Single(slot));
                    }
                }
            }
        }
        if rests > 1 {
            self.ck.error(
                m.span,
                "a match pattern may hold only one {name=**} wildcard",
            );
        }
        if self.ck.wildcards.len() > MAX_CAPTURES {
            self.ck.error(
                m.span,
                format!("more than {MAX_CAPTURES} wildcards across nested matches"),
            );
        }
        self.max_slots = self.max_slots.max(self.ck.wildcards.len());
        let idx = self.matches.len();
        self.matches.push(MatchNode {
            pattern,
            text: Arc::from(text.as_str()),
            line: self.ck.line(m.span),
            allows: Vec::new(),
            by_literal: LiteralIndex::default(),
            wild: Vec::new(),
        });
        // Functions of this block must be visible to its allows, so check them first.
        self.ck.push_functions(&m.body.functions);
        let allows = m.body.allows.iter().map(|a| self.ck.allow(a)).collect();
        let mut by_literal = LiteralIndex::default();
        let mut wild = Vec::new();
        for child in &m.body.matches {
            let Some(c) = self.match_node(child, &text, nesting + 1, segs) else {
                continue;
            };
            match child.segments.first() {
                Some(Segment::Literal(l)) => by_literal.entry(l.clone()).or_default().push(c),
                _ => wild.push(c),
            }
        }
        self.ck.pop_functions();
        self.ck.wildcards.truncate(saved);
        if let Some(node) = self.matches.get_mut(idx) {
            node.allows = allows;
            node.by_literal = by_literal;
            node.wild = wild;
        }
        Some(idx)
    }
}

fn is_const(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Const(_))
}

/// Replaces a pure node whose inputs are all constants by its value.
pub(crate) fn fold(node: Node) -> Node {
    let foldable = match &node.kind {
        NodeKind::List(items) => items.iter().all(is_const),
        NodeKind::Map(entries) => entries.iter().all(|(k, v)| is_const(k) && is_const(v)),
        NodeKind::Path(parts) => parts.iter().all(|p| match p {
            PathNode::Literal(_) => true,
            PathNode::Interp(e) => is_const(e),
        }),
        NodeKind::Member(o, _)
        | NodeKind::Unary(_, o)
        | NodeKind::Is(o, _)
        | NodeKind::Matches(o, _) => is_const(o),
        NodeKind::Index(a, b) | NodeKind::Binary(_, a, b) => is_const(a) && is_const(b),
        NodeKind::Slice(a, b, c) => {
            is_const(a) && b.as_deref().is_none_or(is_const) && c.as_deref().is_none_or(is_const)
        }
        NodeKind::Method(r, _, args) => is_const(r) && args.iter().all(is_const),
        NodeKind::Builtin(b, args) => b.is_pure() && args.iter().all(is_const),
        NodeKind::Cond(c, _, _) => is_const(c),
        _ => false,
    };
    if !foldable {
        return node;
    }
    // A constant condition picks its branch without evaluating the other.
    if let NodeKind::Cond(c, a, b) = node.kind {
        return match &c.kind {
            NodeKind::Const(crate::value::Val::Bool(true)) => *a,
            NodeKind::Const(crate::value::Val::Bool(false)) => *b,
            _ => Node {
                kind: NodeKind::Cond(c, a, b),
                span: node.span,
            },
        };
    }
    let mut ctx = Ctx::constant();
    let value = ctx.eval(&node, &mut Frame::top());
    match value {
        Ok(v) => Node {
            kind: NodeKind::Const(detach(v)),
            span: node.span,
        },
        Err(_) => node,
    }
}

/// Constant folding only ever builds owned values; this re-types them as `'static`.
fn detach(v: crate::value::Val<'_>) -> crate::value::Val<'static> {
    use crate::value::{BytesV, ListV, MapV, Val};
    use std::sync::Arc;
    match v {
        Val::Null => Val::Null,
        Val::Bool(b) => Val::Bool(b),
        Val::Int(i) => Val::Int(i),
        Val::Float(f) => Val::Float(f),
        Val::Str(s) => Val::str(s.as_str()),
        Val::Bytes(b) => Val::Bytes(BytesV::O(Arc::from(b.as_slice()))),
        Val::List(l) => Val::List(ListV::O(Arc::new(l.iter().map(detach).collect()))),
        Val::Map(m) => Val::Map(MapV::O(Arc::new(
            m.entries()
                .into_iter()
                .map(|(k, v)| (k.to_string(), detach(v)))
                .collect(),
        ))),
        Val::Set(s) => Val::Set(Arc::new(s.iter().cloned().map(detach).collect())),
        Val::Timestamp(t) => Val::Timestamp(t),
        Val::Duration(d) => Val::Duration(d),
        Val::LatLng(a, b) => Val::LatLng(a, b),
        Val::Path(p) => Val::Path(p),
        Val::MapDiff(d) => {
            let a = detach(Val::Map(d.0.clone()));
            let b = detach(Val::Map(d.1.clone()));
            match (a, b) {
                (Val::Map(a), Val::Map(b)) => Val::MapDiff(Arc::new((a, b))),
                _ => Val::Null,
            }
        }
        Val::Request => Val::Request,
        Val::Resource(_) | Val::QueryData(_) => Val::Null,
    }
}
