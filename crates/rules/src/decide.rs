//! Deciding a request: walk the match tree along the request path (children found by their first
//! literal segment, plus wildcard-led children), bind wildcards, and evaluate the `allow`s of every
//! match that covers the whole path for the request's method until one grants.
//!
//! Semantics: any granting allow wins; an allow whose condition errors does not grant but others
//! still may; a limit error (expression budget, access calls, call depth) denies the request.
//! For `list`, the request path is the collection plus an unknown document id, which a `{id}`
//! wildcard matches but leaves unbound.

use claimdb_model::{FieldPath, Value};

use crate::eval::{Ctx, Frame};
use crate::explain::Explainer;
use crate::program::{MatchNode, PatSeg, Program};
use crate::request::{
    Decision, DocumentReader, FilterOp, Matched, Method, Outcome, Query, Request, Target, Tried,
};
use crate::value::{MapV, StrV, Val};

/// One request path segment; `None` is the unknown document id of a list request.
type Seg<'a> = Option<&'a str>;

/// Most match-block visits while matching one request path.
pub const MAX_MATCH_STEPS: u32 = 10_000;

/// Most combinations of `in` values a list query may expand to when proving it allowed.
pub const MAX_QUERY_COMBINATIONS: usize = 100;

/// How to run one decision: whether to explain it, and the document-read allowance.
#[derive(Clone, Copy)]
pub(crate) struct Mode<'s> {
    pub explain_with: Option<&'s str>,
    pub access_limit: u32,
}

pub(crate) fn decide(
    prog: &Program,
    req: &Request,
    reader: &dyn DocumentReader,
    mode: Mode<'_>,
) -> Decision {
    if req.method != Method::List {
        return walk(prog, req, reader, mode, None);
    }
    // Rules are not filters: a list is allowed only if it is allowed for every document the
    // query could return. Equality filters pin fields down; each `in` multiplies the cases.
    let constraints = match query_constraints(req.query.as_ref()) {
        Ok(c) => c,
        Err(limit) => {
            let mut d = walk(
                prog,
                req,
                reader,
                Mode {
                    explain_with: None,
                    ..mode
                },
                None,
            );
            d.allowed = false;
            d.granted_by = None;
            d.limit = Some(limit);
            return d;
        }
    };
    // Every combination of one value per constraint, the last constraint varying fastest.
    let mut choice = vec![0usize; constraints.len()];
    let mut pins: Vec<(&[String], &Value)> = Vec::with_capacity(constraints.len());
    let mut last: Option<Decision> = None;
    let mut reads = 0;
    // An `in []` leaves no case at all (the query returns nothing).
    let any = constraints.iter().all(|c| !c.values.is_empty());
    if any {
        loop {
            pins.clear();
            pins.extend(
                constraints
                    .iter()
                    .zip(&choice)
                    .filter_map(|(c, &i)| Some((c.field.segments(), c.values.get(i)?))),
            );
            let mut d = walk(prog, req, reader, mode, Some(pinned(&pins)));
            reads = reads.max(d.reads);
            d.reads = reads;
            if !d.allowed {
                return d;
            }
            last = Some(d);
            if !next_choice(&mut choice, &constraints) {
                break;
            }
        }
    }
    last.unwrap_or_else(|| walk(prog, req, reader, mode, None))
}

/// Moves to the next combination (the last position that can still move is bumped, those after
/// it reset); false once every combination has been visited.
fn next_choice(choice: &mut [usize], constraints: &[Constraint<'_>]) -> bool {
    for (i, c) in choice.iter_mut().zip(constraints).rev() {
        *i += 1;
        if *i < c.values.len() {
            return true;
        }
        *i = 0;
    }
    false
}

/// A filtered field path: the filter's own text when it is one plain name, else parsed.
enum Field<'q> {
    Plain(&'q String),
    Parsed(FieldPath),
}

impl Field<'_> {
    fn segments(&self) -> &[String] {
        match self {
            Field::Plain(s) => std::slice::from_ref(*s),
            Field::Parsed(p) => p.segments(),
        }
    }
}

/// One field the query's constraints fix, and the values it may take (one for `==`, each
/// alternative for `in`).
struct Constraint<'q> {
    field: Field<'q>,
    values: &'q [Value],
}

/// The documents a query could return, as the field values its constraints fix: every
/// combination of one value per constraint is one case to prove.
fn query_constraints(query: Option<&Query>) -> Result<Vec<Constraint<'_>>, String> {
    let mut out = Vec::new();
    let Some(q) = query else {
        return Ok(out);
    };
    let mut cases: usize = 1;
    for f in &q.filters {
        let values: &[Value] = match (f.op, &f.value) {
            (FilterOp::Eq, v) => std::slice::from_ref(v),
            (FilterOp::In, Value::Array(items)) => items,
            _ => continue,
        };
        // A plain name (no dot, no backtick) parses to itself; skip the parser for it.
        let plain = !f.field.is_empty()
            && f.field.len() <= claimdb_model::limits::MAX_FIELD_NAME_BYTES
            && !f.field.bytes().any(|b| b == b'.' || b == b'`');
        let field = if plain {
            if f.field == claimdb_model::field::DOCUMENT_ID {
                continue;
            }
            Field::Plain(&f.field)
        } else {
            let Ok(field) = FieldPath::parse(&f.field) else {
                continue;
            };
            if field.is_document_id() {
                continue;
            }
            Field::Parsed(field)
        };
        if cases.saturating_mul(values.len()) > MAX_QUERY_COMBINATIONS {
            return Err(format!(
                "the query's 'in' filters expand to more than {MAX_QUERY_COMBINATIONS} cases to prove"
            ));
        }
        cases *= values.len();
        out.push(Constraint { field, values });
    }
    Ok(out)
}

/// The partially known document for one case: pinned fields hold their values; maps that only
/// lead to pinned fields are themselves partially known (so `nested.size()` is not provable
/// from `nested.x == 1`). Where a field is pinned twice, the first pin counts.
fn pinned<'q>(pins: &[(&[String], &'q Value)]) -> Val<'q> {
    let mut fields: std::collections::BTreeMap<String, Val<'q>> = std::collections::BTreeMap::new();
    for (i, (path, _)) in pins.iter().enumerate() {
        let Some(first) = path.first() else {
            continue;
        };
        if fields.contains_key(first.as_str()) {
            continue;
        }
        let group = pins
            .get(i..)
            .unwrap_or(&[])
            .iter()
            .filter(|(p, _)| p.first() == Some(first));
        let value = match group.clone().find(|(p, _)| p.len() == 1) {
            Some((_, v)) => Val::from_value(v),
            None => {
                let below: Vec<(&[String], &'q Value)> = group
                    .map(|(p, v)| (p.get(1..).unwrap_or(&[]), *v))
                    .collect();
                pinned(&below)
            }
        };
        fields.insert(first.clone(), value);
    }
    Val::QueryData(MapV::O(std::sync::Arc::new(fields)))
}

fn walk(
    prog: &Program,
    req: &Request,
    reader: &dyn DocumentReader,
    mode: Mode<'_>,
    list_data: Option<Val<'_>>,
) -> Decision {
    let (path, list) = match &req.target {
        Target::Doc(p) => (p.as_str(), false),
        Target::Collection(c) => (c.as_str(), true),
        Target::Group {
            under,
            collection_id,
        } => {
            let mut segs: Vec<Seg<'_>> = vec![
                Some("databases"),
                Some(req.database.as_str()),
                Some("documents"),
            ];
            if let Some(u) = under {
                segs.extend(u.segments().map(Some));
            }
            segs.extend([Some(ANY_RUN), Some(collection_id.as_str()), None]);
            let mut ctx = Ctx::new(prog, req, reader);
            return walk_segments(prog, req, &mut ctx, &segs, mode, list_data);
        }
    };
    // The path's segments, on the stack unless the path is unusually deep.
    let n = 3 + 1 + path.bytes().filter(|b| *b == b'/').count() + usize::from(list);
    let mut inline: [Seg<'_>; INLINE_SEGMENTS] = [None; INLINE_SEGMENTS];
    let mut heap: Vec<Seg<'_>> = Vec::new();
    let segs: &mut [Seg<'_>] = match inline.get_mut(..n) {
        Some(s) => s,
        None => {
            heap.resize(n, None);
            &mut heap
        }
    };
    fill_segments(segs, &req.database, path);
    // The context lives in this frame; the walker borrows it (no large moves).
    let mut ctx = Ctx::new(prog, req, reader);
    walk_segments(prog, req, &mut ctx, segs, mode, list_data)
}

/// Walks the match tree over the request path's segments and decides.
fn walk_segments<'a, 'p>(
    prog: &'p Program,
    req: &'a Request,
    ctx: &mut Ctx<'a, 'p>,
    segs: &[Seg<'a>],
    mode: Mode<'p>,
    list_data: Option<Val<'a>>,
) -> Decision {
    let explain_with = mode.explain_with;
    let mut w = Walker {
        prog,
        ctx,
        segs,
        bit: req.method.bit(),
        decision: Decision {
            allowed: false,
            granted_by: None,
            matched: Vec::with_capacity(2),
            tried: Vec::with_capacity(2),
            limit: None,
            debug: Vec::new(),
            reasons: Vec::new(),
            reads: 0,
        },
        done: false,
        source: explain_with,
        steps: 0,
    };
    w.ctx.set_access_limit(mode.access_limit);
    if let Some(data) = list_data {
        w.ctx.set_list_data(data);
    }
    let first = w.segs.first().copied().flatten();
    let literal: &[usize] = first
        .and_then(|s| prog.roots_by_literal.get(s))
        .map_or(&[], Vec::as_slice);
    for &r in literal.iter().chain(prog.roots_wild.iter()) {
        w.visit(r, 0);
        if w.done {
            break;
        }
    }
    w.decision.debug = std::mem::take(&mut w.ctx.debug);
    w.decision.reads = w.ctx.access_calls();
    if w.decision.allowed {
        w.decision.reasons.clear();
    }
    w.decision
}

/// The segment standing for the unknown part of a collection group's paths (any number of
/// segments). Real segments never hold a control character, so it cannot collide with one; only
/// a `{name=**}` wildcard can match it.
const ANY_RUN: &str = "\u{0}**";

fn is_any_run(s: &str) -> bool {
    s == ANY_RUN
}

/// Request paths up to this many segments (with `databases/<db>/documents`) are matched
/// without allocating.
const INLINE_SEGMENTS: usize = 24;

/// Writes `databases`, the database id, `documents` and the path's segments into `out`; a
/// slot left over (a list request's unknown document id) stays `None`.
fn fill_segments<'a>(out: &mut [Seg<'a>], database: &'a str, path: &'a str) {
    let mut slots = out.iter_mut();
    for seg in [Some("databases"), Some(database), Some("documents")] {
        if let Some(slot) = slots.next() {
            *slot = seg;
        }
    }
    // Split by hand: `str::split(char)` sets up a searcher that costs more than these few bytes.
    let mut start = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' {
            if let Some(slot) = slots.next() {
                *slot = path.get(start..i);
            }
            start = i + 1;
        }
    }
    if let Some(slot) = slots.next() {
        *slot = path.get(start..);
    }
}

struct Walker<'a, 'p, 's> {
    prog: &'p Program,
    ctx: &'s mut Ctx<'a, 'p>,
    segs: &'s [Seg<'a>],
    bit: u8,
    decision: Decision,
    done: bool,
    /// The rules source, when explanations are wanted.
    source: Option<&'p str>,
    steps: u32,
}

impl<'a, 'p> Walker<'a, 'p, '_> {
    fn visit(&mut self, idx: usize, pos: usize) {
        // Nested `{x=**}` wildcards multiply the ways a path can match; bound the walk.
        self.steps += 1;
        if self.steps > MAX_MATCH_STEPS {
            self.decision.limit = Some(format!(
                "matching this path tried more than {MAX_MATCH_STEPS} match blocks; simplify nested {{name=**}} wildcards"
            ));
            self.done = true;
            return;
        }
        let prog = self.prog;
        let Some(node) = prog.matches.get(idx) else {
            return;
        };
        let Some(k) = node
            .pattern
            .iter()
            .position(|p| matches!(p, PatSeg::Rest(_)))
        else {
            // Fixed-length pattern: match and bind in place, no allocation.
            if self.bind_fixed(&node.pattern, pos) {
                self.matched(node, pos + node.pattern.len());
            }
            return;
        };
        let (prefix, rest) = node.pattern.split_at(k);
        let (Some(PatSeg::Rest(slot)), suffix) = (rest.first(), rest.get(1..).unwrap_or(&[]))
        else {
            return;
        };
        if !self.bind_fixed(prefix, pos) {
            return;
        }
        let start = pos + prefix.len();
        let available = self.segs.len().saturating_sub(start + suffix.len());
        // v1: one or more segments; v2: zero or more.
        for len in usize::from(prog.v1)..=available {
            self.steps += 1;
            if self.steps > MAX_MATCH_STEPS {
                self.decision.limit = Some(format!(
                    "matching this path tried more than {MAX_MATCH_STEPS} ways; simplify nested {{name=**}} wildcards"
                ));
                self.done = true;
                return;
            }
            if !self.bind_fixed(suffix, start + len) {
                continue;
            }
            // A run holding the unknown part of a group's path binds nothing usable.
            let bound = self.segs[start..start + len]
                .iter()
                .map(|s| s.filter(|s| !is_any_run(s)).map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .map(Val::path);
            if let Some(b) = self.ctx.bindings.get_mut(*slot as usize) {
                *b = bound;
            }
            self.matched(node, start + len + suffix.len());
            if self.done {
                return;
            }
        }
    }

    /// Matches a run of literal and `{x}` segments at `pos`, binding the wildcards.
    fn bind_fixed(&mut self, pat: &[PatSeg], pos: usize) -> bool {
        let Some(segs) = self.segs.get(pos..pos + pat.len()) else {
            return false;
        };
        for (p, s) in pat.iter().zip(segs) {
            match (p, s) {
                (_, Some(s)) if is_any_run(s) => return false,
                (PatSeg::Literal(l), Some(s)) if l == s => {}
                (PatSeg::Single(slot), s) => {
                    if let Some(b) = self.ctx.bindings.get_mut(*slot as usize) {
                        *b = s.map(|s| Val::Str(StrV::B(s)));
                    }
                }
                _ => return false,
            }
        }
        true
    }

    /// `node` matched up to `end`: apply it if that is the whole path, then try its children.
    fn matched(&mut self, node: &'p MatchNode, end: usize) {
        if end == self.segs.len() {
            self.apply(node);
            if self.done {
                return;
            }
        }
        let next = self.segs.get(end).copied().flatten();
        let literal: &'p [usize] = next
            .and_then(|s| node.by_literal.get(s))
            .map_or(&[], Vec::as_slice);
        for &c in literal.iter().chain(node.wild.iter()) {
            self.visit(c, end);
            if self.done {
                return;
            }
        }
    }

    fn apply(&mut self, node: &'p MatchNode) {
        self.decision.matched.push(Matched {
            line: node.line,
            pattern: node.text.clone(),
        });
        for allow in &node.allows {
            if allow.mask & self.bit == 0 {
                continue;
            }
            let outcome = match &allow.condition {
                None => Ok(true),
                Some(cond) => match self.ctx.eval(cond, &mut Frame::top()) {
                    Ok(Val::Bool(b)) => Ok(b),
                    Ok(other) => Err(crate::error::EvalError::ty(format!(
                        "the condition is a {}, not a bool",
                        other.type_name()
                    ))),
                    Err(e) => Err(e),
                },
            };
            let (outcome, fatal) = match outcome {
                Ok(true) => (Outcome::True, false),
                Ok(false) => (Outcome::False, false),
                Err(e) => (Outcome::Error(e.to_string()), e.is_fatal()),
            };
            let granted = outcome == Outcome::True;
            if fatal {
                self.decision.limit = match &outcome {
                    Outcome::Error(e) => Some(e.clone()),
                    _ => None,
                };
            }
            self.decision.tried.push(Tried {
                allow: allow.id,
                line: allow.line,
                methods: allow.methods_text.clone(),
                outcome,
            });
            if fatal {
                self.done = true;
                return;
            }
            if !granted && let (Some(src), Some(cond)) = (self.source, &allow.condition) {
                let mut ex = Explainer {
                    ctx: &mut *self.ctx,
                    src,
                    allow_line: allow.line,
                    out: Vec::new(),
                    depth: 0,
                    needed: None,
                };
                ex.explain(cond);
                self.decision.reasons.extend(ex.out);
            }
            if granted {
                self.decision.allowed = true;
                self.decision.granted_by = Some(allow.line);
                self.done = true;
                return;
            }
        }
    }
}

/// Evaluates the first allow condition of a probe ruleset (built by
/// [`crate::Ruleset::evaluate_expression`]) with `database` and `document` bound from `req`.
pub(crate) fn probe(
    prog: &Program,
    req: &Request,
    reader: &dyn DocumentReader,
) -> Result<String, String> {
    let mut ctx = Ctx::new(prog, req, reader);
    let doc: Vec<String> = match &req.target {
        Target::Doc(p) => p.segments().map(str::to_string).collect(),
        Target::Collection(c) => c.as_str().split('/').map(str::to_string).collect(),
        Target::Group { collection_id, .. } => vec![collection_id.clone()],
    };
    if let Some(b) = ctx.bindings.get_mut(0) {
        *b = Some(Val::Str(StrV::B(req.database.as_str())));
    }
    if let Some(b) = ctx.bindings.get_mut(1) {
        *b = Some(Val::path(doc));
    }
    let cond = prog
        .matches
        .iter()
        .flat_map(|m| m.allows.iter())
        .find_map(|a| a.condition.as_ref())
        .ok_or_else(|| "no expression".to_string())?;
    ctx.eval(cond, &mut Frame::top())
        .map(|v| v.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::owned;
    use crate::request::Filter;

    type Pins = Vec<(Vec<String>, Value)>;

    /// The cases as first written: one owned set of pins per combination of `in` values.
    fn reference_cases(q: &Query) -> Option<Vec<Pins>> {
        let mut cases: Vec<Pins> = vec![Vec::new()];
        for f in &q.filters {
            let Ok(field) = FieldPath::parse(&f.field) else {
                continue;
            };
            if field.is_document_id() {
                continue;
            }
            let alternatives: Vec<Value> = match (f.op, &f.value) {
                (FilterOp::Eq, v) => vec![v.clone()],
                (FilterOp::In, Value::Array(items)) => items.clone(),
                _ => continue,
            };
            if cases.len().saturating_mul(alternatives.len()) > MAX_QUERY_COMBINATIONS {
                return None;
            }
            let mut next = Vec::new();
            for c in &cases {
                for v in &alternatives {
                    let mut c = c.clone();
                    c.push((field.segments().to_vec(), v.clone()));
                    next.push(c);
                }
            }
            cases = next;
        }
        Some(cases)
    }

    /// The partially known document as first written (grouped in a map, values copied).
    fn reference_pinned(pins: &[(&[String], &Value)]) -> Val<'static> {
        let mut groups: std::collections::BTreeMap<&str, Vec<(&[String], &Value)>> =
            std::collections::BTreeMap::new();
        for (path, value) in pins {
            if let Some((first, rest)) = path.split_first() {
                groups
                    .entry(first.as_str())
                    .or_default()
                    .push((rest, value));
            }
        }
        let fields = groups
            .into_iter()
            .map(|(name, below)| {
                let value = match below.iter().find(|(rest, _)| rest.is_empty()) {
                    Some((_, v)) => owned(v),
                    None => reference_pinned(&below),
                };
                (name.to_string(), value)
            })
            .collect();
        Val::QueryData(MapV::O(std::sync::Arc::new(fields)))
    }

    fn cases(q: &Query) -> Option<Vec<String>> {
        let constraints = query_constraints(Some(q)).ok()?;
        let mut out = Vec::new();
        if constraints.iter().any(|c| c.values.is_empty()) {
            return Some(out);
        }
        let mut choice = vec![0; constraints.len()];
        loop {
            let pins: Vec<(&[String], &Value)> = constraints
                .iter()
                .zip(&choice)
                .filter_map(|(c, &i)| Some((c.field.segments(), c.values.get(i)?)))
                .collect();
            out.push(pinned(&pins).to_string());
            if !next_choice(&mut choice, &constraints) {
                return Some(out);
            }
        }
    }

    #[test]
    fn cases_match_the_reference() {
        let f = |field: &str, op: FilterOp, value: Value| Filter {
            field: field.into(),
            op,
            value,
        };
        let s = |x: &str| Value::String(x.into());
        let arr = |xs: &[Value]| Value::Array(xs.to_vec());
        let many: Vec<Value> = (0..11).map(Value::Int).collect();
        let queries = vec![
            vec![],
            vec![f("a", FilterOp::Eq, s("x"))],
            vec![f("a", FilterOp::In, arr(&[]))],
            vec![
                f("a", FilterOp::In, arr(&[s("x"), s("y")])),
                f(
                    "b.c",
                    FilterOp::In,
                    arr(&[Value::Int(1), Value::Int(2), Value::Int(3)]),
                ),
                f("b.d", FilterOp::Eq, Value::Bool(true)),
                f("b", FilterOp::Lt, Value::Int(3)),
            ],
            vec![
                f("a", FilterOp::Eq, s("first")),
                f("a", FilterOp::Eq, s("second")),
                f("a.b", FilterOp::Eq, s("below")),
            ],
            vec![
                f("a.b", FilterOp::Eq, s("below")),
                f("a", FilterOp::Eq, s("whole")),
            ],
            vec![
                f("`x.y`.z", FilterOp::Eq, Value::Int(1)),
                f("__name__", FilterOp::Eq, s("docs/d")),
                f("`__name__`", FilterOp::Eq, s("quoted")),
                f("bad..path", FilterOp::Eq, Value::Int(2)),
                f("", FilterOp::Eq, Value::Int(3)),
                f("in", FilterOp::In, Value::Int(4)),
                f("tags", FilterOp::ArrayContains, s("t")),
            ],
            vec![
                f("a", FilterOp::In, arr(&many)),
                f("b", FilterOp::In, arr(&many)),
            ],
            vec![
                f("a", FilterOp::In, arr(&many[..10])),
                f("b", FilterOp::In, arr(&many[..10])),
                f("c", FilterOp::In, arr(&[])),
                f("d", FilterOp::In, arr(&many)),
            ],
        ];
        for filters in queries {
            let q = Query {
                filters,
                ..Query::default()
            };
            let want = reference_cases(&q).map(|cases| {
                cases
                    .iter()
                    .map(|c| {
                        let pins: Vec<(&[String], &Value)> =
                            c.iter().map(|(p, v)| (p.as_slice(), v)).collect();
                        reference_pinned(&pins).to_string()
                    })
                    .collect::<Vec<_>>()
            });
            assert_eq!(cases(&q), want, "{:?}", q.filters);
        }
    }
}
