//! Deciding a request as the Firestore emulator does: find every match that covers the request
//! path (walking the match tree: children found by their first literal segment, plus
//! wildcard-led children), collect the `allow` statements for the request's method, and
//! evaluate them in source order until one grants.
//!
//! - A match covers a path when its segments, after those of the matches around it, take the
//!   whole path. A `{name=**}` wildcard takes a run of segments (one or more in rules version 1,
//!   zero or more in version 2); a match that covers the path in several ways counts once,
//!   with the first way (fewest segments to earlier recursive wildcards).
//! - Any granting allow wins; an allow whose condition errors does not grant, others still may.
//! - A `list` is checked on its collection's path followed by an unknown document id (a
//!   collection group's also holds an unknown run of parents): only a `{name}` wildcard takes
//!   the unknown id, and leaves it unbound; a `{name=**}` takes it as a path holding an unknown
//!   part. Rules are not filters: the query's filters are taken apart into the ways a document
//!   may satisfy them (each value of an `in` or `array-contains-any` is a way of its own), and
//!   every way must be allowed, with `resource` as `{data: …}` holding only the fields the
//!   filters name — a field's value when they pin it to one, else a constraint of them
//!   (`crate::constraint`). A way with `__name__ ==` a document is decided on that document as
//!   stored. Each way counts its expressions from zero.

use std::sync::Arc;

use claimdb_model::{FieldPath, Value};

use crate::constraint::{Comparator, Simple, simples, value_simples};
use crate::eval::{Ctx, Frame, View};
use crate::explain::Explainer;
use crate::ops::{UNKNOWN_ID, UNKNOWN_RUN};
use crate::program::{AllowDef, MatchNode, PatSeg, Program};
use crate::request::{
    Decision, DocumentReader, Filter, FilterOp, Matched, Method, Outcome, Request, Target, Tried,
};
use crate::value::{MapV, OwnedMap, StrV, Val};

/// One segment of the path to cover.
#[derive(Clone, Copy, PartialEq)]
enum Seg<'a> {
    /// A segment of the request's path or query (bound without copying).
    Lit(&'a str),
    /// A list's unknown document id: any one segment.
    UnknownId,
    /// A collection group's unknown parents: any run of segments.
    UnknownRun,
}

impl Seg<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Seg::Lit(s) => Some(s),
            Seg::UnknownId | Seg::UnknownRun => None,
        }
    }
}

/// Most match-block visits while matching one request path.
pub(crate) const MAX_MATCH_STEPS: u32 = 10_000;

/// Most ways a list query's filters may be taken apart into (Firestore allows 30 disjunctions).
pub(crate) const MAX_QUERY_WAYS: usize = 1_000;

/// How to run one decision: whether to explain it, and the document-read allowance.
#[derive(Clone, Copy)]
pub(crate) struct Mode<'s> {
    pub explain_with: Option<&'s str>,
    pub access_limit: u32,
}

fn empty_decision() -> Decision {
    Decision {
        allowed: false,
        granted_by: None,
        matched: Vec::with_capacity(2),
        tried: Vec::with_capacity(2),
        limit: None,
        debug: Vec::new(),
        reasons: Vec::new(),
        reads: 0,
    }
}

pub(crate) fn decide(
    prog: &Program,
    req: &Request,
    reader: &dyn DocumentReader,
    mode: Mode<'_>,
) -> Decision {
    let mut ctx = Ctx::new(prog, req, reader);
    ctx.set_access_limit(mode.access_limit);
    let mut d = if req.method == Method::List {
        decide_list(prog, req, &mut ctx, mode)
    } else {
        let path = match &req.target {
            Target::Doc(p) => p.as_str(),
            Target::Collection(c) => c.as_str(),
            Target::Group { collection_id, .. } => collection_id.as_str(),
        };
        // The path's segments, on the stack unless the path is unusually deep.
        let n = 3 + 1 + path.bytes().filter(|b| *b == b'/').count();
        let mut inline: [Seg<'_>; INLINE_SEGMENTS] = [Seg::UnknownId; INLINE_SEGMENTS];
        let mut heap: Vec<Seg<'_>> = Vec::new();
        let segs: &mut [Seg<'_>] = match inline.get_mut(..n) {
            Some(s) => s,
            None => {
                heap.resize(n, Seg::UnknownId);
                &mut heap
            }
        };
        fill_segments(segs, &req.database, path);
        let mut d = empty_decision();
        walk(prog, req, &mut ctx, segs, mode, &mut d);
        d
    };
    d.debug = std::mem::take(&mut ctx.debug);
    d.reads = ctx.access_calls();
    if d.allowed {
        d.reasons.clear();
    }
    d
}

/// Request paths up to this many segments (with `databases/<db>/documents`) are matched
/// without allocating.
const INLINE_SEGMENTS: usize = 24;

/// Writes `databases`, the database id, `documents` and the path's segments into `out`.
fn fill_segments<'a>(out: &mut [Seg<'a>], database: &'a str, path: &'a str) {
    let mut slots = out.iter_mut();
    for seg in ["databases", database, "documents"] {
        if let Some(slot) = slots.next() {
            *slot = Seg::Lit(seg);
        }
    }
    // Split by hand: `str::split(char)` sets up a searcher that costs more than these few bytes.
    let mut start = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' {
            if let Some(slot) = slots.next() {
                *slot = Seg::Lit(path.get(start..i).unwrap_or(""));
            }
            start = i + 1;
        }
    }
    if let Some(slot) = slots.next() {
        *slot = Seg::Lit(path.get(start..).unwrap_or(""));
    }
}

/// A match covering the path, with the wildcard bindings it was reached with (those of its
/// chain of matches: the first slots).
struct Covering<'a> {
    node: usize,
    /// How many slots its chain of matches binds.
    slots: u16,
    /// A copy of those slots; `None` while they are still in the context as bound.
    bindings: Option<crate::eval::Slots<'a, 4>>,
}

/// Finds the matches covering `segs`, then evaluates their statements for the request's
/// method in source order until one grants.
fn walk<'a, 'p>(
    prog: &'p Program,
    req: &'a Request,
    ctx: &mut Ctx<'a, 'p>,
    segs: &[Seg<'a>],
    mode: Mode<'p>,
    decision: &mut Decision,
) {
    let mut w = Walker {
        prog,
        ctx,
        segs,
        found: Found {
            first: None,
            more: Vec::new(),
        },
        live: false,
        steps: 0,
        limit: None,
    };
    let first = w.segs.first().and_then(Seg::text);
    let literal: &[usize] = first
        .and_then(|s| prog.roots_by_literal.get(s))
        .map_or(&[], Vec::as_slice);
    for &r in literal.iter().chain(prog.roots_wild.iter()) {
        w.visit(r, 0);
    }
    let Walker {
        ctx, found, limit, ..
    } = w;
    if let Some(l) = limit {
        decision.limit = Some(l);
        return;
    }
    let bit = req.method.bit();
    let Found { first, more } = found;
    let Some(first) = first else {
        return;
    };
    for c in std::iter::once(&first).chain(more.iter()) {
        if let Some(node) = prog.matches.get(c.node) {
            decision.matched.push(Matched {
                line: node.line,
                pattern: node.text.clone(),
            });
        }
    }
    if more.is_empty() {
        // One match covers the path (the usual case): its statements are in source order.
        let Some(node) = prog.matches.get(first.node) else {
            return;
        };
        if let Some(b) = first.bindings {
            restore(ctx, b);
        }
        for allow in node.allows.iter().filter(|a| a.mask & bit != 0) {
            if try_allow(ctx, allow, mode, decision) {
                return;
            }
        }
        return;
    }
    // The statements that apply, in source order (every covering's bindings were copied out
    // but the last's, which is in the context; copy it too).
    let mut found: Vec<Covering<'a>> = std::iter::once(first).chain(more).collect();
    if let Some(last) = found.last_mut()
        && last.bindings.is_none()
    {
        let n = last.slots as usize;
        let mut b = crate::eval::Slots::new(n);
        for i in 0..n {
            if let (Some(dst), Some(src)) = (b.get_mut(i), ctx.bindings.get(i)) {
                dst.clone_from(src);
            }
        }
        last.bindings = Some(b);
    }
    let mut statements: Vec<(&'p AllowDef, usize)> = Vec::new();
    for (i, c) in found.iter().enumerate() {
        if let Some(node) = prog.matches.get(c.node) {
            statements.extend(
                node.allows
                    .iter()
                    .filter(|a| a.mask & bit != 0)
                    .map(|a| (a, i)),
            );
        }
    }
    statements.sort_by_key(|(a, _)| a.id);
    for (allow, i) in statements {
        if let Some(b) = found.get(i).and_then(|c| c.bindings.clone()) {
            restore(ctx, b);
        }
        if try_allow(ctx, allow, mode, decision) {
            return;
        }
    }
}

/// Puts a covering's bindings back into the context's first slots.
fn restore<'a>(ctx: &mut Ctx<'a, '_>, mut bound: crate::eval::Slots<'a, 4>) {
    for i in 0..bound.len() {
        if let (Some(slot), Some(v)) = (ctx.bindings.get_mut(i), bound.get_mut(i)) {
            *slot = v.take();
        }
    }
}

/// Evaluates one statement into `decision`; whether it granted.
fn try_allow<'a, 'p>(
    ctx: &mut Ctx<'a, 'p>,
    allow: &'p AllowDef,
    mode: Mode<'p>,
    decision: &mut Decision,
) -> bool {
    let outcome = match &allow.condition {
        None => Ok(true),
        Some(cond) => match ctx.eval(cond, &mut Frame::top()) {
            Ok(Val::Bool(b)) => Ok(b),
            Ok(other) => Err(crate::error::EvalError::ty(format!(
                "the condition is a {}, not a bool",
                other.type_name()
            ))),
            Err(e) => Err(e),
        },
    };
    let outcome = match outcome {
        Ok(true) => Outcome::True,
        Ok(false) => Outcome::False,
        Err(e) => {
            if e.is_fatal() && decision.limit.is_none() {
                decision.limit = Some(e.to_string());
            }
            Outcome::Error(e.to_string())
        }
    };
    let granted = outcome == Outcome::True;
    decision.tried.push(Tried {
        allow: allow.id,
        line: allow.line,
        methods: allow.methods_text.clone(),
        outcome,
    });
    if granted {
        decision.allowed = true;
        decision.granted_by = Some(allow.line);
        decision.limit = None;
        return true;
    }
    if let (Some(src), Some(cond)) = (mode.explain_with, &allow.condition)
        && !ctx.over()
    {
        let saved = ctx.count();
        let mut ex = Explainer {
            ctx: &mut *ctx,
            src,
            allow_line: allow.line,
            out: Vec::new(),
            depth: 0,
            needed: None,
        };
        ex.explain(cond);
        decision.reasons.extend(ex.out);
        ctx.set_count(saved);
    }
    false
}

/// The matches covering the path: the first inline (the usual case is one).
struct Found<'a> {
    first: Option<Covering<'a>>,
    more: Vec<Covering<'a>>,
}

struct Walker<'a, 'p, 's> {
    prog: &'p Program,
    ctx: &'s mut Ctx<'a, 'p>,
    segs: &'s [Seg<'a>],
    found: Found<'a>,
    /// The last covering's bindings are only in the context.
    live: bool,
    steps: u32,
    limit: Option<String>,
}

impl<'a, 'p> Walker<'a, 'p, '_> {
    fn step(&mut self) -> bool {
        // Nested `{x=**}` wildcards multiply the ways a path can match; bound the walk.
        self.steps += 1;
        if self.steps > MAX_MATCH_STEPS {
            self.limit = Some(format!(
                "matching this path tried more than {MAX_MATCH_STEPS} ways; simplify nested {{name=**}} wildcards"
            ));
            return false;
        }
        true
    }

    fn visit(&mut self, idx: usize, pos: usize) {
        if self.limit.is_some() || !self.step() {
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
                let end = pos + node.pattern.len();
                if end == self.segs.len() {
                    self.cover(idx);
                }
                self.children(node, end);
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
        let mut covered = false;
        // v1: one or more segments; v2: zero or more.
        for len in usize::from(prog.v1)..=available {
            if !self.step() {
                return;
            }
            if !self.bind_fixed(suffix, start + len) {
                continue;
            }
            let bound: Vec<String> = self
                .segs
                .get(start..start + len)
                .unwrap_or(&[])
                .iter()
                .map(|s| match s {
                    Seg::Lit(s) => (*s).to_string(),
                    Seg::UnknownId => UNKNOWN_ID.to_string(),
                    Seg::UnknownRun => UNKNOWN_RUN.to_string(),
                })
                .collect();
            self.set(*slot, Some(Val::path(bound)));
            let end = start + len + suffix.len();
            if end == self.segs.len() && !covered {
                covered = true;
                self.cover(idx);
            }
            self.children(node, end);
        }
    }

    /// Records that match `idx` covers the path, with the bindings as they are now.
    fn cover(&mut self, idx: usize) {
        // The bindings stay in the context (no copy) until a later step would change them.
        self.snapshot();
        let slots = self.prog.matches.get(idx).map_or(0, |m| m.slots);
        let c = Covering {
            node: idx,
            slots,
            bindings: None,
        };
        if self.found.first.is_none() {
            self.found.first = Some(c);
        } else {
            self.found.more.push(c);
        }
        self.live = true;
    }

    /// Copies the bindings of the last covering out of the context, if they are still only
    /// there.
    fn snapshot(&mut self) {
        if !std::mem::take(&mut self.live) {
            return;
        }
        let found = &mut self.found;
        let Some(c) = found.more.last_mut().or(found.first.as_mut()) else {
            return;
        };
        let n = c.slots as usize;
        let mut bindings = crate::eval::Slots::new(n);
        for i in 0..n {
            if let (Some(dst), Some(src)) = (bindings.get_mut(i), self.ctx.bindings.get(i)) {
                dst.clone_from(src);
            }
        }
        c.bindings = Some(bindings);
    }

    /// Binds wildcard `slot`, first saving the last covering's bindings if it used the slot.
    fn set(&mut self, slot: u16, v: Option<Val<'a>>) {
        if self.live {
            let found = &self.found;
            let used = found
                .more
                .last()
                .or(found.first.as_ref())
                .is_some_and(|c| slot < c.slots);
            if used {
                self.snapshot();
            }
        }
        if let Some(b) = self.ctx.bindings.get_mut(slot as usize) {
            *b = v;
        }
    }

    fn children(&mut self, node: &'p MatchNode, end: usize) {
        let next = self.segs.get(end).and_then(Seg::text);
        let literal: &'p [usize] = next
            .and_then(|s| node.by_literal.get(s))
            .map_or(&[], Vec::as_slice);
        for &c in literal.iter().chain(node.wild.iter()) {
            self.visit(c, end);
        }
    }

    /// Matches a run of literal and `{x}` segments at `pos`, binding the wildcards.
    fn bind_fixed(&mut self, pat: &[PatSeg], pos: usize) -> bool {
        let Some(segs) = self.segs.get(pos..pos + pat.len()) else {
            return false;
        };
        for (p, s) in pat.iter().zip(segs) {
            match (p, s) {
                (PatSeg::Literal(l), s) if s.text() == Some(l.as_str()) => {}
                (PatSeg::Single(slot), Seg::Lit(s)) => self.set(*slot, Some(Val::Str(StrV::B(s)))),
                (PatSeg::Single(slot), Seg::UnknownId) => self.set(*slot, None),
                _ => return false,
            }
        }
        true
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

mod list;

use list::decide_list;
pub(crate) use list::query_value;
