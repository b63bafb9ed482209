//! From source to a [`Ruleset`]: parse, check, build the match tree (children indexed by their
//! first literal segment) and fold constant sub-expressions.
//!
//! A file that produces any diagnostic yields no ruleset at all, so the evaluator only ever sees
//! checked programs. Folding evaluates pure nodes whose inputs are all constants with a request-less
//! context; a fold that errors is left in place so the error happens (and is traced) at run time.

use std::sync::Arc;

use crate::ast::{self, Segment};
use crate::check::Checker;
use crate::decide::Mode;
use crate::error::Diagnostic;
use crate::eval::{Ctx, Frame};
use crate::eval::{MAX_ACCESS_CALLS, MAX_BATCH_ACCESS_CALLS};
use crate::parser::parse;
use crate::program::{LiteralIndex, MatchNode, Node, NodeKind, PatSeg, PathNode, Program};
use crate::request::{Decision, DocumentReader, Request};

/// The source [`Ruleset::locked`] stands for.
/// (Firebase refuses an empty `match` body, so it says `if false` explicitly.)
pub const LOCKED_SOURCE: &str = "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n    // Nothing is allowed until rules are deployed.\n    match /{document=**} {\n      allow read, write: if false;\n    }\n  }\n}\n";

/// Most path segments across a chain of nested match patterns.
pub const MAX_PATH_SEGMENTS: usize = 100;
/// Most wildcards across a chain of nested match patterns.
pub(crate) const MAX_CAPTURES: usize = 20;
/// Most nested match blocks (counting the one of `/databases/{database}/documents`).
pub(crate) const MAX_MATCH_NESTING: usize = 10;

/// A compiled, immutable rules program; cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub(crate) program: Program,
    source: Arc<str>,
    warnings: Arc<[Diagnostic]>,
}

impl Ruleset {
    /// Compiles rules source, or returns every problem found. A file compiles here exactly
    /// when it compiles in Firebase (what Firebase only warns about compiles).
    pub fn compile(src: &str) -> Result<Ruleset, Vec<Diagnostic>> {
        let (file, mut diags) = parse(src);
        if !diags.is_empty() {
            diags.sort_by_key(|d| (d.line, d.column));
            return Err(diags);
        }
        let v1 = match &file.version {
            None => true,
            Some((v, _)) if v == "1" => true,
            Some((v, _)) if v == "2" => false,
            Some((v, span)) => {
                return Err(vec![Diagnostic::new(
                    src,
                    *span,
                    format!(
                        "unsupported rules_version '{}'; use '1' or '2'",
                        crate::parser::shorten(v)
                    ),
                )]);
            }
        };
        let mut b = Builder {
            ck: Checker::new(src, v1),
            matches: Vec::new(),
            v1,
            max_slots: 0,
            keep: true,
        };
        b.ck.push_functions(&file.functions);
        let mut roots_by_literal = LiteralIndex::default();
        let mut roots_wild = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for service in &file.services {
            if service.name != "cloud.firestore" && service.name != "firebase.storage" {
                b.ck.warn(
                    service.span,
                    format!(
                        "unknown service '{}'; claimdb decides with 'cloud.firestore'",
                        service.name
                    ),
                );
            }
            if seen.contains(&service.name.as_str()) {
                b.ck.error(
                    service.span,
                    format!("service '{}' is declared twice", service.name),
                );
            }
            seen.push(&service.name);
            // Other services (Firebase warns about unknown names) are checked, not kept.
            b.keep = service.name == "cloud.firestore";
            let (lit, wild) = b.block(&service.body, "", 0, 0, 0, 0);
            if b.keep {
                for (k, v) in lit {
                    roots_by_literal.entry(k).or_insert_with(Vec::new).extend(v);
                }
                roots_wild.extend(wild);
            }
        }
        b.ck.pop_functions();
        b.ck.check_calls();
        diags.append(&mut b.ck.diags);
        if !diags.is_empty() {
            diags.sort_by_key(|d| (d.line, d.column));
            return Err(diags);
        }
        let functions = b.ck.functions.into_iter().flatten().collect();
        let mut warnings = b.ck.warnings;
        warnings.sort_by_key(|d| (d.line, d.column));
        Ok(Ruleset {
            source: Arc::from(src),
            warnings: Arc::from(warnings),
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
            warnings: Arc::from(Vec::new()),
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

    /// What Firebase warns about in the source (unknown names, functions and methods, calls
    /// with the wrong number of arguments): the file compiles, and the rules fail where they
    /// use these.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
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
    /// Whether the service being built is the one the program keeps (`cloud.firestore`).
    keep: bool,
}

type Children = (LiteralIndex, Vec<usize>);

/// Firebase's limits on nested matches: the depth (the first match of a service is 1) at
/// which it refuses, and the most path segments and wildcards along a chain of matches.
const REFUSED_MATCH_DEPTH: usize = MAX_MATCH_NESTING + 2;

impl Builder<'_> {
    /// Checks a block's functions and builds its child matches; returns the children index.
    /// `depth`, `segs`, `vars` and `globs` describe the enclosing matches.
    fn block(
        &mut self,
        block: &ast::Block,
        prefix: &str,
        depth: usize,
        segs: usize,
        vars: usize,
        globs: usize,
    ) -> Children {
        self.ck.push_functions(&block.functions);
        let mut by_literal = LiteralIndex::default();
        let mut wild = Vec::new();
        for m in &block.matches {
            let Some(idx) = self.match_node(m, prefix, depth + 1, segs, vars, globs) else {
                continue;
            };
            match m.segments.first() {
                Some((Segment::Literal(l), _)) => {
                    by_literal.entry(l.clone()).or_default().push(idx)
                }
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
        depth: usize,
        segs: usize,
        vars: usize,
        outer_globs: usize,
    ) -> Option<usize> {
        if depth == REFUSED_MATCH_DEPTH {
            self.ck.error(
                m.span,
                format!("match blocks nest deeper than {}", REFUSED_MATCH_DEPTH - 1),
            );
        }
        let total_segs = segs + m.segments.len();
        if total_segs > MAX_PATH_SEGMENTS && segs <= MAX_PATH_SEGMENTS {
            self.ck.error(
                m.span,
                format!("nested match patterns exceed {MAX_PATH_SEGMENTS} segments"),
            );
        }
        let own_vars = m
            .segments
            .iter()
            .filter(|(s, _)| !matches!(s, Segment::Literal(_)))
            .count();
        if vars + own_vars > MAX_CAPTURES && vars <= MAX_CAPTURES {
            self.ck.error(
                m.span,
                format!("more than {MAX_CAPTURES} wildcards across nested matches"),
            );
        }
        let saved = self.ck.wildcards.len();
        let mut pattern = Vec::new();
        let mut text = prefix.to_string();
        let mut globs = 0;
        let mut names: Vec<&str> = Vec::new();
        let last = m.segments.len().saturating_sub(1);
        for (i, (seg, span)) in m.segments.iter().enumerate() {
            let slot = self.ck.wildcards.len() as u16;
            match seg {
                Segment::Literal(l) => {
                    text.push('/');
                    text.push_str(l);
                    pattern.push(PatSeg::Literal(l.clone()));
                }
                Segment::Single(name) | Segment::Rest(name) => {
                    if names.contains(&name.as_str()) {
                        self.ck.error(
                            *span,
                            format!("wildcard '{name}' appears twice in this match path"),
                        );
                    }
                    names.push(name);
                    self.ck.wildcards.push(name.clone());
                    if let Segment::Rest(_) = seg {
                        if self.v1 && i != last {
                            self.ck.error(
                                *span,
                                "in rules_version 1 a {name=**} wildcard must be the last segment; add rules_version = '2'",
                            );
                        } else if !self.v1 && outer_globs + globs > 0 {
                            self.ck.error(
                                *span,
                                "only one {name=**} wildcard is allowed along a path of nested matches",
                            );
                        }
                        globs += 1;
                        text.push_str(&format!("/{{{name}=**}}"));
                        pattern.push(PatSeg::Rest(slot));
                    } else {
                        text.push_str(&format!("/{{{name}}}"));
                        pattern.push(PatSeg::Single(slot));
                    }
                }
            }
        }
        self.max_slots = self.max_slots.max(self.ck.wildcards.len());
        let idx = self.matches.len();
        if self.keep {
            self.matches.push(MatchNode {
                pattern,
                text: Arc::from(text.as_str()),
                line: self.ck.line(m.span),
                slots: self.ck.wildcards.len() as u16,
                allows: Vec::new(),
                by_literal: LiteralIndex::default(),
                wild: Vec::new(),
            });
        }
        // Functions of this block must be visible to its allows, so check them first.
        self.ck.push_functions(&m.body.functions);
        let allows: Vec<_> = m.body.allows.iter().map(|a| self.ck.allow(a)).collect();
        let mut by_literal = LiteralIndex::default();
        let mut wild = Vec::new();
        for child in &m.body.matches {
            let Some(c) = self.match_node(
                child,
                &text,
                depth + 1,
                total_segs,
                vars + own_vars,
                outer_globs + globs,
            ) else {
                continue;
            };
            match child.segments.first() {
                Some((Segment::Literal(l), _)) => by_literal.entry(l.clone()).or_default().push(c),
                _ => wild.push(c),
            }
        }
        self.ck.pop_functions();
        self.ck.wildcards.truncate(saved);
        if !self.keep {
            return None;
        }
        if let Some(node) = self.matches.get_mut(idx) {
            node.allows = allows;
            node.by_literal = by_literal;
            node.wild = wild;
        }
        Some(idx)
    }
}

fn is_const(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Const(..))
}

/// Replaces a pure node whose inputs are all constants by its value, keeping the count of
/// expressions Firebase would evaluate for it.
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
        NodeKind::Slice(a, b, c) | NodeKind::Cond(a, b, c) => {
            is_const(a) && is_const(b) && is_const(c)
        }
        NodeKind::Method(r, _, args) => is_const(r) && args.iter().all(is_const),
        NodeKind::Builtin(b, args) => b.is_pure() && args.iter().all(is_const),
        _ => false,
    };
    if !foldable {
        return node;
    }
    let mut ctx = Ctx::constant();
    let value = ctx.eval(&node, &mut Frame::top());
    match value {
        Ok(v) => Node {
            kind: NodeKind::Const(detach(v), ctx.count()),
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
        Val::Constraint(_) | Val::Unknown | Val::Request | Val::Resource(_) => Val::Null,
    }
}
