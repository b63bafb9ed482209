//! Expression evaluation with the Firestore emulator's semantics and limits.
//!
//! One [`Ctx`] lives for one decision: it holds the wildcard bindings, the expression count
//! (1,000 per decision, counted as Firebase counts them), the document-access counter and cache
//! (10 distinct documents, 20 for a list; repeats and the request's own document are free), the
//! call depth, the per-request regex cache and the `debug()` log.
//!
//! - `&&`/`||` short-circuit and absorb an error when the other side decides (`err || true`).
//! - `?:` evaluates one branch.
//! - Every operand of an operator, literal or call is evaluated even when another fails (the
//!   first error wins); a function's arguments and `let`s are all evaluated when it is called,
//!   but an error in one only matters if the function uses it (`f(null.x, true)` with
//!   `function f(a, b) { return b; }` is true).
//! - The count follows Firebase: each expression evaluated once (parentheses not at all);
//!   `&&`/`||` once more when they evaluate their right side; `?:` once more after its
//!   condition and two more when it is false; `is` and each `let` once more; a path literal once
//!   more per literal segment; an unknown function, or a call with the wrong number of
//!   arguments, once without evaluating its arguments. Past 1,000 every expression fails, so the
//!   decision's remaining conditions all fail (a bare `allow` still grants).
//!
//! Walking the match tree and collecting the decision is `decide.rs`'s job.

use std::sync::Arc;

use claimdb_model::{DocPath, Value};

use crate::ast::{BinOp, UnOp};
use crate::builtins::{self, url_decode};
use crate::error::EvalError;
use crate::methods::{self, RegexCache, make_list, make_map, to_string};
use crate::ops;
use crate::program::{Builtin, FuncDef, Node, NodeKind, PathNode, Program, TypeName};
use crate::request::{DocumentReader, Method, Request};
use crate::value::{MapV, NameV, OwnedMap, ResourceRef, ResourceV, StrV, Val, doc_name};

/// Expressions a decision may evaluate.
pub const MAX_EXPRESSIONS: u32 = 1_000;
/// Distinct documents `get()`/`exists()`/`getAfter()`/`existsAfter()` may read per request.
pub const MAX_ACCESS_CALLS: u32 = 10;
/// Distinct documents the rules of a list request may read.
pub const MAX_LIST_ACCESS_CALLS: u32 = 20;
/// Distinct documents all the operations of one batch or transaction may read together.
pub const MAX_BATCH_ACCESS_CALLS: u32 = 20;
/// Deepest nesting of expression evaluation, across function calls. Firestore has no such
/// limit (its expression count bounds it); this keeps the native stack bounded.
pub(crate) const MAX_EVAL_NESTING: u32 = 400;
/// Deepest user-function call chain at run time.
pub const MAX_CALL_DEPTH: u32 = 20;

pub(crate) struct Ctx<'a, 'p> {
    prog: Option<&'p Program>,
    req: Option<&'a Request>,
    reader: Option<&'a dyn DocumentReader>,
    pub bindings: Slots<'a, INLINE_BINDINGS>,
    /// Expressions evaluated so far in this decision.
    count: u32,
    /// How many may be evaluated ([`MAX_EXPRESSIONS`]; more while explaining).
    max_count: u32,
    access_calls: u32,
    access_limit: u32,
    /// Documents read so far, by `(after, path)`: at most the access limit (20), so a list.
    cache: Vec<(bool, Arc<[String]>, Val<'a>)>,
    depth: u32,
    /// Active `eval` frames: bounds the native stack whatever the rules look like.
    nesting: u32,
    regexes: RegexCache,
    pub debug: Vec<String>,
    /// For a list: `resource` (the fields the query's filters tell of) and `request.path`.
    view: Option<View<'a>>,
    /// `request` as a map, once a rule needed all of it.
    request_map: Option<Val<'a>>,
}

/// How a list request looks to its rules for one case of its query.
#[derive(Clone)]
pub(crate) struct View<'a> {
    pub resource: Val<'a>,
    /// `request.path`, when not the request's own (a collection group's is unknown).
    pub path: Option<Val<'a>>,
    /// The document a lookup of which is free (a case decided on one named document).
    pub target: Option<Arc<[String]>>,
}

/// The locals of one function call: parameters, then `let`s, each a value or the error it
/// came to (which matters only if the function uses it).
pub(crate) struct Frame<'a, 'p> {
    pub func: Option<&'p FuncDef>,
    slots: Results<'a>,
}

type R<'a> = Result<Val<'a>, EvalError>;

/// The function that evaluates one kind of node.
type Step<'a, 'p> = fn(&mut Ctx<'a, 'p>, &'p Node, &mut Frame<'a, 'p>) -> R<'a>;

#[cold]
fn internal() -> EvalError {
    EvalError::invalid("internal: a node of another kind")
}

/// Results kept inline up to this many (function locals, call and method arguments), so that
/// calling a small function or method allocates nothing.
const INLINE_RESULTS: usize = 4;

/// Values or errors in order: inline up to [`INLINE_RESULTS`], on the heap beyond.
#[derive(Clone)]
pub(crate) enum Results<'a> {
    Inline(usize, [Option<R<'a>>; INLINE_RESULTS]),
    Heap(Vec<R<'a>>),
}

impl<'a> Results<'a> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        if n <= INLINE_RESULTS {
            Results::Inline(0, std::array::from_fn(|_| None))
        } else {
            Results::Heap(Vec::with_capacity(n))
        }
    }

    pub(crate) fn push(&mut self, r: R<'a>) {
        match self {
            Results::Inline(n, slots) => match slots.get_mut(*n) {
                Some(slot) => {
                    *slot = Some(r);
                    *n += 1;
                }
                None => {
                    let mut v: Vec<R<'a>> = slots.iter_mut().filter_map(Option::take).collect();
                    v.push(r);
                    *self = Results::Heap(v);
                }
            },
            Results::Heap(v) => v.push(r),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&R<'a>> {
        match self {
            Results::Inline(n, slots) => slots.get(..*n)?.get(i)?.as_ref(),
            Results::Heap(v) => v.get(i),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Results::Inline(n, _) => *n,
            Results::Heap(v) => v.len(),
        }
    }

    fn take(&mut self, i: usize) -> R<'a> {
        let missing = || Err(EvalError::invalid("internal: missing argument"));
        match self {
            Results::Inline(n, slots) => match slots.get_mut(..*n).and_then(|s| s.get_mut(i)) {
                Some(slot) => slot.take().unwrap_or_else(missing),
                None => missing(),
            },
            Results::Heap(v) => match v.get_mut(i) {
                Some(slot) => std::mem::replace(slot, missing()),
                None => missing(),
            },
        }
    }

    /// The first error, in order.
    fn first_error(&self) -> Option<&EvalError> {
        (0..self.len()).find_map(|i| self.get(i).and_then(|r| r.as_ref().err()))
    }
}

/// Wildcard bindings kept inline in the request context.
const INLINE_BINDINGS: usize = 8;

/// A fixed number of value slots: inline up to `N`, on the heap beyond.
#[derive(Clone)]
pub(crate) enum Slots<'a, const N: usize> {
    Inline(usize, [Option<Val<'a>>; N]),
    Heap(Vec<Option<Val<'a>>>),
}

impl<'a, const N: usize> Slots<'a, N> {
    /// `n` empty slots.
    #[inline]
    pub(crate) fn new(n: usize) -> Self {
        if n <= N {
            Slots::Inline(n, std::array::from_fn(|_| None))
        } else {
            Slots::Heap(vec![None; n])
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Option<Val<'a>>> {
        match self {
            Slots::Inline(n, s) => s.get(..*n)?.get(i),
            Slots::Heap(s) => s.get(i),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Slots::Inline(n, _) => *n,
            Slots::Heap(s) => s.len(),
        }
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Option<Val<'a>>> {
        match self {
            Slots::Inline(n, s) => s.get_mut(..*n)?.get_mut(i),
            Slots::Heap(s) => s.get_mut(i),
        }
    }
}

impl<'a, 'p> Frame<'a, 'p> {
    pub(crate) fn top() -> Self {
        Frame {
            func: None,
            slots: Results::Heap(Vec::new()),
        }
    }

    /// The frame as the `let` in slot `n` sees it: only the locals before it.
    pub(crate) fn prefix(&self, n: usize) -> Frame<'a, 'p> {
        let mut slots = Results::with_capacity(n);
        for i in 0..n.min(self.slots.len()) {
            if let Some(r) = self.slots.get(i) {
                slots.push(r.clone());
            }
        }
        Frame {
            func: self.func,
            slots,
        }
    }
}

fn want_bool(v: Val<'_>) -> Result<bool, EvalError> {
    match v {
        Val::Bool(b) => Ok(b),
        Val::Null => Err(EvalError::Null("expected a bool, found null".into())),
        other => Err(EvalError::ty(format!(
            "expected a bool, found {}",
            other.type_name()
        ))),
    }
}

/// A deep, owned copy of a stored value (for documents read through the reader).
pub(crate) fn owned(v: &Value) -> Val<'static> {
    match v {
        Value::String(s) => Val::str(s),
        Value::Bytes(b) => Val::Bytes(crate::value::BytesV::O(Arc::from(b.as_slice()))),
        Value::Reference(p) => Val::Path(doc_name("(default)", p)),
        Value::Array(items) => make_list(items.iter().map(owned).collect()),
        Value::Map(m) => Val::Map(MapV::O(Arc::new(
            m.iter().map(|(k, v)| (k.clone(), owned(v))).collect(),
        ))),
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Int(i) => Val::Int(*i),
        Value::Double(d) => Val::Float(*d),
        Value::Timestamp(t) => Val::Timestamp(i128::from(t.micros()) * 1_000),
        Value::GeoPoint { lat, lng } => Val::LatLng(*lat, *lng),
    }
}

/// Keeps the first error of several results.
fn first_error(acc: &mut Option<EvalError>, e: EvalError) {
    if acc.is_none() {
        *acc = Some(e);
    }
}

impl<'a, 'p> Ctx<'a, 'p> {
    #[inline]
    pub(crate) fn new(prog: &'p Program, req: &'a Request, reader: &'a dyn DocumentReader) -> Self {
        Ctx {
            prog: Some(prog),
            req: Some(req),
            reader: Some(reader),
            bindings: Slots::new(prog.wildcard_slots),
            count: 0,
            max_count: MAX_EXPRESSIONS,
            access_calls: 0,
            access_limit: if req.method == Method::List {
                MAX_LIST_ACCESS_CALLS
            } else {
                MAX_ACCESS_CALLS
            },
            cache: Vec::new(),
            depth: 0,
            nesting: 0,
            regexes: RegexCache::default(),
            debug: Vec::new(),
            view: None,
            request_map: None,
        }
    }

    /// A context with no request, for constant folding.
    pub(crate) fn constant() -> Self {
        Ctx {
            prog: None,
            req: None,
            reader: None,
            bindings: Slots::new(0),
            count: 0,
            max_count: MAX_EXPRESSIONS,
            access_calls: 0,
            access_limit: MAX_ACCESS_CALLS,
            cache: Vec::new(),
            depth: 0,
            nesting: 0,
            regexes: RegexCache::default(),
            debug: Vec::new(),
            view: None,
            request_map: None,
        }
    }

    fn request(&self) -> Result<&'a Request, EvalError> {
        self.req
            .ok_or_else(|| EvalError::invalid("request is not available here"))
    }

    /// Expressions evaluated so far (what a folded constant stands for).
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Whether the decision went past the expression limit (every evaluation now fails).
    pub(crate) fn over(&self) -> bool {
        self.count > self.max_count
    }

    /// Changes how many expressions may be evaluated (explanations run on a larger count).
    pub(crate) fn set_count_limit(&mut self, max: u32) {
        self.max_count = max;
    }

    /// Reads one stored document as `resource` (null if it does not exist), without counting
    /// it as a lookup: the document a list names with `__name__ ==`.
    pub(crate) fn read_document(&mut self, path: &DocPath) -> Result<Val<'a>, EvalError> {
        let req = self.request()?;
        let reader = self
            .reader
            .ok_or_else(|| EvalError::invalid("documents are not available here"))?;
        let doc = reader.get(path).map_err(|e| EvalError::Read(e.0))?;
        Ok(match doc {
            Some(m) => Val::Resource(ResourceRef::Shared(Arc::new(ResourceV {
                name: NameV::Owned(doc_name(&req.database, path)),
                data: match owned(&Value::Map(m)) {
                    Val::Map(m) => m,
                    _ => MapV::O(Arc::default()),
                },
            }))),
            None => Val::Null,
        })
    }

    /// Resets the expression count (explanations run on their own count).
    pub(crate) fn set_count(&mut self, count: u32) {
        self.count = count;
    }

    /// Counts `n` expressions; an error once past the limit.
    #[inline]
    fn spend(&mut self, n: u32) -> Result<(), EvalError> {
        self.count = self.count.saturating_add(n);
        if self.count > self.max_count {
            return Err(self.limit_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn limit_error(&self) -> EvalError {
        if self.count > self.max_count {
            EvalError::Limit(format!(
                "more than {MAX_EXPRESSIONS} expressions evaluated for one request"
            ))
        } else {
            EvalError::Limit(format!(
                "expressions nest more than {MAX_EVAL_NESTING} deep across function calls"
            ))
        }
    }

    fn resource(&mut self) -> Result<Val<'a>, EvalError> {
        if let Some(view) = &self.view {
            return Ok(view.resource.clone());
        }
        let req = self.request()?;
        // The request's own documents are viewed in place: nothing to build or cache.
        Ok(match (&req.existing, &req.target) {
            (Some(data), crate::request::Target::Doc(_)) => {
                Val::Resource(ResourceRef::Request { req, data })
            }
            _ => Val::Null,
        })
    }

    /// `request.resource`: defined for writes only (null for a delete).
    fn incoming(&self) -> Result<Val<'a>, EvalError> {
        let req = self.request()?;
        match req.method {
            Method::Create | Method::Update => Ok(match (&req.incoming, &req.target) {
                (Some(data), crate::request::Target::Doc(_)) => {
                    Val::Resource(ResourceRef::Request { req, data })
                }
                _ => Val::Null,
            }),
            Method::Delete => Ok(Val::Null),
            Method::Get | Method::List => Err(EvalError::MissingKey("resource".into())),
        }
    }

    fn request_path(&self, req: &'a Request) -> Val<'a> {
        match self.view.as_ref().and_then(|v| v.path.clone()) {
            Some(p) => p,
            None => match &req.target {
                crate::request::Target::Doc(p) => Val::Path(doc_name(&req.database, p)),
                _ => Val::path(crate::value::target_segments(req)),
            },
        }
    }

    /// `request.name`.
    fn request_field(&mut self, name: &str) -> Result<Val<'a>, EvalError> {
        let req = self.request()?;
        match name {
            "auth" => Ok(req.auth.as_deref().map_or(Val::Null, Val::from_value)),
            "method" => Ok(Val::Str(StrV::B(req.method.name()))),
            "path" => match self.request_path(req) {
                Val::Unknown => Err(EvalError::Unprovable(
                    "request.path of a collection group query is not known".into(),
                )),
                p => Ok(p),
            },
            "time" => Ok(Val::Timestamp(i128::from(req.time.micros()) * 1_000)),
            "resource" => self.incoming(),
            "query" if req.method == Method::List => Ok(crate::decide::query_value(req)),
            _ => Err(EvalError::MissingKey(name.to_string())),
        }
    }

    /// `request` as the map rules see (keys in the emulator's order, those claimdb has).
    fn request_map(&mut self) -> Result<Val<'a>, EvalError> {
        if let Some(m) = &self.request_map {
            return Ok(m.clone());
        }
        let req = self.request()?;
        let keys: &[&str] = match req.method {
            Method::Get => &["time", "auth", "path", "method"],
            Method::List => &["time", "auth", "query", "path", "method"],
            _ => &["time", "auth", "path", "resource", "method"],
        };
        let mut m = OwnedMap::with_capacity(keys.len());
        for k in keys {
            let v = match *k {
                "path" => self.request_path(req),
                _ => self.request_field(k)?,
            };
            m.insert(*k, v);
        }
        let v = Val::Map(MapV::O(Arc::new(m)));
        self.request_map = Some(v.clone());
        Ok(v)
    }

    /// `request` and resources as the maps they are to rules.
    #[inline(always)]
    fn plain(&mut self, v: Val<'a>) -> Result<Val<'a>, EvalError> {
        if matches!(v, Val::Request | Val::Resource(_)) {
            self.plain_slow(v)
        } else {
            Ok(v)
        }
    }

    #[inline(never)]
    fn plain_slow(&mut self, v: Val<'a>) -> Result<Val<'a>, EvalError> {
        Ok(match v {
            Val::Request => self.request_map()?,
            Val::Resource(r) => Val::Map(r.to_map()),
            other => other,
        })
    }

    /// `obj.name`, including the fields of `request` and of resources.
    fn member(&mut self, obj: Val<'a>, name: &str) -> Result<Val<'a>, EvalError> {
        match obj {
            Val::Request => self.request_field(name),
            Val::Resource(r) => match name {
                "data" => Ok(Val::Map(r.data())),
                "id" => Ok(match r.name() {
                    NameV::Doc(_, p) => Val::Str(StrV::B(p.id())),
                    NameV::Owned(s) => Val::str(s.last().map_or("", String::as_str)),
                }),
                "__name__" => Ok(Val::Path(r.name().segments())),
                _ => Err(EvalError::MissingKey(name.to_string())),
            },
            other => ops::member(&other, name),
        }
    }

    #[inline(never)]
    fn wildcard(&mut self, slots: &[u16]) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        // The innermost wildcard of the name; one left unbound (a list's unknown document id)
        // gives way to an enclosing one of the same name.
        for &s in slots {
            if let Some(Some(v)) = self.bindings.get(s as usize) {
                return Ok(v.clone());
            }
        }
        Err(EvalError::Null(
            "this wildcard is not bound (the document id is unknown in a list request)".into(),
        ))
    }

    /// `get`/`exists`/`getAfter`/`existsAfter`/`value`.
    fn access(&mut self, b: Builtin, arg: &Val<'a>) -> Result<Val<'a>, EvalError> {
        let after = matches!(b, Builtin::GetAfter | Builtin::ExistsAfter);
        let want_doc = matches!(b, Builtin::Get | Builtin::GetAfter | Builtin::Value);
        let Val::Path(p) = arg else {
            return Err(EvalError::ty(format!(
                "{}() needs a path, found {}",
                b.name(),
                arg.type_name()
            )));
        };
        let req = self.request()?;
        let document = p.len() >= 5
            && p.len() % 2 == 1
            && p.first().is_some_and(|s| s == "databases")
            && p.get(1).is_some_and(|db| *db == req.database)
            && p.get(2).is_some_and(|s| s == "documents");
        if !document {
            return Err(EvalError::invalid(format!(
                "{}() needs the path of a document of this database, /databases/$(database)/documents/…, got /{}",
                b.name(),
                p.join("/")
            )));
        }
        let cached = self
            .cache
            .iter()
            .find(|(a, r, _)| *a == after && **r == **p)
            .map(|(_, _, v)| v.clone());
        if let Some(v) = cached {
            return Ok(if want_doc {
                v
            } else {
                Val::Bool(!matches!(v, Val::Null))
            });
        }
        let target: Option<Arc<[String]>> = match &self.view {
            Some(view) => view.target.clone(),
            None => match &req.target {
                crate::request::Target::Doc(d) => Some(doc_name(&req.database, d)),
                _ => None,
            },
        };
        let free = target.is_some_and(|t| *t == **p);
        let seen = self.cache.iter().any(|(_, r, _)| **r == **p);
        if !free && !seen {
            if self.access_calls >= self.access_limit {
                return Err(EvalError::invalid(
                    if self.access_limit < MAX_ACCESS_CALLS {
                        format!(
                            "more than {MAX_BATCH_ACCESS_CALLS} document reads (get/exists) in one batch"
                        )
                    } else {
                        format!(
                            "more than {} document reads (get/exists) in one request",
                            self.access_limit
                        )
                    },
                ));
            }
            self.access_calls += 1;
        }
        let rel = p.get(3..).unwrap_or(&[]).join("/");
        let path = DocPath::parse(&rel).map_err(|e| EvalError::invalid(e.to_string()))?;
        let reader = self
            .reader
            .ok_or_else(|| EvalError::invalid("documents are not available here"))?;
        let doc = if after {
            reader.get_after(&path)
        } else {
            reader.get(&path)
        }
        .map_err(|e| EvalError::Read(e.0))?;
        let v = match doc {
            Some(m) => Val::Resource(ResourceRef::Shared(Arc::new(ResourceV {
                name: NameV::Owned(p.clone()),
                data: match owned(&Value::Map(m)) {
                    Val::Map(m) => m,
                    _ => MapV::O(Arc::default()),
                },
            }))),
            None => Val::Null,
        };
        self.cache.push((after, p.clone(), v.clone()));
        Ok(if want_doc {
            v
        } else {
            Val::Bool(!matches!(v, Val::Null))
        })
    }

    /// Evaluates one node: the count and nesting checks around [`Ctx::eval_node`].
    pub(crate) fn eval(
        &mut self,
        n: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        if self.count > self.max_count || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.nesting += 1;
        let r = self.eval_node(n, f);
        self.nesting -= 1;
        r
    }

    /// A thin dispatcher: every arm that recurses lives in its own small function, so that the
    /// native stack per nesting level stays small even in debug builds.
    fn eval_node(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        // One call through a pointer: in a debug build each call of a `match` would keep a
        // return slot of its own in this frame, which every level of nesting pays for.
        let step: Step<'a, 'p> = match &n.kind {
            NodeKind::Const(..) => Self::step_const,
            NodeKind::Local(_) => Self::step_local,
            NodeKind::Wildcard(_) => Self::step_wildcard,
            NodeKind::Request => Self::step_request,
            NodeKind::Resource => Self::step_resource,
            NodeKind::Unknown(_) => Self::step_unknown,
            NodeKind::BadCall(_) => Self::step_bad_call,
            NodeKind::List(_) => Self::step_list,
            NodeKind::Map(_) => Self::step_map,
            NodeKind::Path(_) => Self::step_path,
            NodeKind::Member(..) => Self::step_member,
            NodeKind::Index(..) => Self::step_index,
            NodeKind::Slice(..) => Self::step_slice,
            NodeKind::Method(..) => Self::step_method,
            NodeKind::Matches(..) => Self::step_matches,
            NodeKind::Builtin(..) => Self::step_builtin,
            NodeKind::Call(..) => Self::step_call,
            NodeKind::Unary(..) => Self::step_unary,
            NodeKind::Binary(BinOp::And | BinOp::Or, ..) => Self::step_logic,
            NodeKind::Binary(..) => Self::step_binary,
            NodeKind::Is(..) => Self::step_is,
            NodeKind::Cond(..) => Self::step_cond,
        };
        step(self, n, f)
    }

    fn step_const(&mut self, n: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Const(v, cost) => self.const_node(v, *cost),
            _ => Err(internal()),
        }
    }
    fn step_local(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Local(i) => self.local(*i, f),
            _ => Err(internal()),
        }
    }
    fn step_wildcard(&mut self, n: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Wildcard(slots) => self.wildcard(slots),
            _ => Err(internal()),
        }
    }
    fn step_request(&mut self, _: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        self.leaf_request()
    }
    fn step_resource(&mut self, _: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        self.leaf_resource()
    }
    fn step_unknown(&mut self, n: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Unknown(name) => self.unknown(name),
            _ => Err(internal()),
        }
    }
    fn step_bad_call(&mut self, n: &'p Node, _: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::BadCall(msg) => self.bad_call(msg),
            _ => Err(internal()),
        }
    }
    fn step_list(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::List(items) => self.list_node(items, f),
            _ => Err(internal()),
        }
    }
    fn step_map(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Map(entries) => self.map_node(entries, f),
            _ => Err(internal()),
        }
    }
    fn step_path(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Path(parts) => self.path_node(parts, f),
            _ => Err(internal()),
        }
    }
    fn step_member(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Member(obj, name) => self.member_node(obj, name, f),
            _ => Err(internal()),
        }
    }
    fn step_index(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Index(obj, i) => self.index_node(obj, i, f),
            _ => Err(internal()),
        }
    }
    fn step_slice(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Slice(obj, a, b) => self.slice_node(obj, a, b, f),
            _ => Err(internal()),
        }
    }
    fn step_method(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Method(recv, name, args) => self.method_node(recv, name, args, f),
            _ => Err(internal()),
        }
    }
    fn step_matches(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Matches(recv, re) => self.matches_node(recv, re, f),
            _ => Err(internal()),
        }
    }
    fn step_builtin(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Builtin(b, args) => self.builtin_node(*b, args, f),
            _ => Err(internal()),
        }
    }
    fn step_call(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Call(id, args) => self.call(*id, args, f),
            _ => Err(internal()),
        }
    }
    fn step_unary(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Unary(op, x) => self.unary_node(*op, x, f),
            _ => Err(internal()),
        }
    }
    fn step_logic(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Binary(op, a, b) => self.logic(*op == BinOp::And, a, b, f),
            _ => Err(internal()),
        }
    }
    fn step_binary(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Binary(op, a, b) => self.binary_node(*op, a, b, f),
            _ => Err(internal()),
        }
    }
    fn step_is(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Is(x, t) => self.is_node(x, *t, f),
            _ => Err(internal()),
        }
    }
    fn step_cond(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> R<'a> {
        match &n.kind {
            NodeKind::Cond(c, a, b) => self.cond_node(c, a, b, f),
            _ => Err(internal()),
        }
    }
}

mod nodes;
#[cfg(test)]
mod tests;
