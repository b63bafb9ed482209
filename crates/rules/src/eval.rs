//! Expression evaluation with Firestore's semantics and limits.
//!
//! One [`Ctx`] lives for one request: it holds the wildcard bindings, the expression budget
//! (1,000 evaluations), the document-access counter and cache (10 distinct documents; repeats
//! are free), the call depth, the per-request regex cache and the `debug()` log. `&&`/`||`
//! short-circuit and absorb a left-hand error when the right side decides; `?:` evaluates one
//! branch; `let`s are evaluated lazily, once. Limit errors are fatal to the whole request.
//! Walking the match tree and collecting the decision is `decide.rs`'s job.

use std::sync::Arc;

use claimdb_model::{DocPath, Value};

use crate::ast::{BinOp, UnOp};
use crate::builtins;
use crate::error::EvalError;
use crate::methods::{self, RegexCache, make_list, make_map};
use crate::ops;
use crate::program::{Builtin, FuncDef, Node, NodeKind, PathNode, Program, TypeName};
use crate::request::{DocumentReader, Method, Request};
use crate::value::{MapV, NameV, ResourceRef, ResourceV, StrV, Val, doc_name};

/// Expression evaluations allowed per request.
pub const MAX_EXPRESSIONS: u32 = 1_000;
/// Distinct documents `get()`/`exists()`/`getAfter()`/`existsAfter()` may read per request.
pub const MAX_ACCESS_CALLS: u32 = 10;
/// Distinct documents all the operations of one batch or transaction may read together.
pub const MAX_BATCH_ACCESS_CALLS: u32 = 20;
/// Deepest nesting of expression evaluation, across function calls. Firestore has no such
/// limit; it keeps the native stack bounded (a few hundred bytes to ~2 KB per level).
pub const MAX_EVAL_NESTING: u32 = 400;
/// Deepest user-function call chain at run time.
pub const MAX_CALL_DEPTH: u32 = 20;

pub(crate) struct Ctx<'a, 'p> {
    prog: Option<&'p Program>,
    req: Option<&'a Request>,
    reader: Option<&'a dyn DocumentReader>,
    pub bindings: Slots<'a, INLINE_BINDINGS>,
    budget: u32,
    access_calls: u32,
    access_limit: u32,
    /// Documents read so far, by `(after, path)`: at most the access limit (10), so a list.
    cache: Vec<(bool, String, Val<'a>)>,
    depth: u32,
    /// Active `eval` frames: bounds the native stack whatever the rules look like.
    nesting: u32,
    regexes: RegexCache,
    pub debug: Vec<String>,
    /// A list request's `resource` stand-in, once built.
    resource: Option<Val<'a>>,
    /// For a list: the fields the query's constraints pin down (one combination of `in` values).
    list_data: Option<Val<'a>>,
}

/// The locals of one function call (parameters, then lazily evaluated `let`s).
pub(crate) struct Frame<'a, 'p> {
    pub func: Option<&'p FuncDef>,
    slots: Slots<'a, INLINE_LOCALS>,
}

/// Function locals kept inline, so that calling a small function allocates nothing.
const INLINE_LOCALS: usize = 4;
/// Wildcard bindings kept inline in the request context.
const INLINE_BINDINGS: usize = 8;

/// A fixed number of value slots: inline up to `N`, on the heap beyond.
pub(crate) enum Slots<'a, const N: usize> {
    Inline(usize, [Option<Val<'a>>; N]),
    Heap(Vec<Option<Val<'a>>>),
}

impl<'a, const N: usize> Slots<'a, N> {
    /// `n` empty slots.
    #[inline]
    pub fn new(n: usize) -> Self {
        if n <= N {
            Slots::Inline(n, std::array::from_fn(|_| None))
        } else {
            Slots::Heap(vec![None; n])
        }
    }

    pub fn get(&self, i: usize) -> Option<&Option<Val<'a>>> {
        match self {
            Slots::Inline(n, s) => s.get(..*n)?.get(i),
            Slots::Heap(s) => s.get(i),
        }
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Option<Val<'a>>> {
        match self {
            Slots::Inline(n, s) => s.get_mut(..*n)?.get_mut(i),
            Slots::Heap(s) => s.get_mut(i),
        }
    }
}

impl Frame<'_, '_> {
    pub fn top() -> Self {
        Frame {
            func: None,
            slots: Slots::new(0),
        }
    }
}

#[cold]
fn no_matches(v: &Val<'_>) -> EvalError {
    EvalError::ty(format!("{} has no method matches()", v.type_name()))
}

/// Appends an interpolated `$(…)` value to path segments.
fn path_segment(v: Val<'_>, segs: &mut Vec<String>) -> Result<(), EvalError> {
    match v {
        Val::Str(s) => segs.push(s.as_str().to_string()),
        Val::Int(i) => segs.push(i.to_string()),
        Val::Path(p) => segs.extend(p.iter().cloned()),
        Val::Null => return Err(EvalError::Null("null in a path".into())),
        other => {
            return Err(EvalError::ty(format!(
                "cannot put a {} in a path",
                other.type_name()
            )));
        }
    }
    Ok(())
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

impl<'a, 'p> Ctx<'a, 'p> {
    #[inline]
    pub fn new(prog: &'p Program, req: &'a Request, reader: &'a dyn DocumentReader) -> Self {
        Ctx {
            prog: Some(prog),
            req: Some(req),
            reader: Some(reader),
            bindings: Slots::new(prog.wildcard_slots),
            budget: MAX_EXPRESSIONS,
            access_calls: 0,
            access_limit: MAX_ACCESS_CALLS,
            cache: Vec::new(),
            depth: 0,
            nesting: 0,
            regexes: RegexCache::default(),
            debug: Vec::new(),
            resource: None,
            list_data: None,
        }
    }

    /// A context with no request, for constant folding.
    pub fn constant() -> Self {
        Ctx {
            prog: None,
            req: None,
            reader: None,
            bindings: Slots::new(0),
            // Folding is bounded by the source size, not by the per-request budget.
            budget: u32::MAX,
            access_calls: 0,
            access_limit: MAX_ACCESS_CALLS,
            cache: Vec::new(),
            depth: 0,
            nesting: 0,
            regexes: RegexCache::default(),
            debug: Vec::new(),
            resource: None,
            list_data: None,
        }
    }

    fn request(&self) -> Result<&'a Request, EvalError> {
        self.req
            .ok_or_else(|| EvalError::invalid("request is not available here"))
    }

    fn resource(&mut self) -> Result<Val<'a>, EvalError> {
        if let Some(v) = &self.resource {
            return Ok(v.clone());
        }
        let req = self.request()?;
        if req.method == Method::List {
            let data = match &self.list_data {
                Some(Val::Map(m) | Val::QueryData(m)) => m.clone(),
                _ => MapV::O(Arc::default()),
            };
            let v = Val::Resource(ResourceRef::Shared(Arc::new(ResourceV {
                name: NameV::of_target(req),
                data,
                in_query: true,
            })));
            self.resource = Some(v.clone());
            return Ok(v);
        }
        // The request's own documents are viewed in place: nothing to build or cache.
        Ok(match &req.existing {
            Some(data) => Val::Resource(ResourceRef::Request { req, data }),
            None => Val::Null,
        })
    }

    fn incoming(&self) -> Result<Val<'a>, EvalError> {
        let req = self.request()?;
        Ok(match (&req.incoming, req.method) {
            (Some(data), Method::Create | Method::Update) => {
                Val::Resource(ResourceRef::Request { req, data })
            }
            _ => Val::Null,
        })
    }

    /// `obj.name`, including the fields of `request` and of resources.
    fn member(&mut self, obj: Val<'a>, name: &str) -> Result<Val<'a>, EvalError> {
        match obj {
            Val::Request => {
                let req = self.request()?;
                match name {
                    "auth" => Ok(req.auth.as_ref().map_or(Val::Null, Val::from_value)),
                    "method" => Ok(Val::Str(StrV::B(req.method.name()))),
                    "path" => Ok(Val::Path(NameV::of_target(req).segments())),
                    "time" => Ok(Val::Timestamp(i128::from(req.time.micros()) * 1_000)),
                    "resource" => self.incoming(),
                    "query" => self.query(req),
                    _ => Err(EvalError::MissingKey(format!("request.{name}"))),
                }
            }
            Val::Resource(r) if r.in_query() && name != "data" => Err(EvalError::Null(format!(
                "resource.{name} is unknown in a list request: the query could return any document id"
            ))),
            Val::Resource(r) if r.in_query() => Ok(Val::QueryData(r.data())),
            Val::Resource(r) => match name {
                "data" => Ok(Val::Map(r.data())),
                "id" => Ok(r.name().id_val()),
                "__name__" => Ok(Val::Path(r.name().segments())),
                _ => Err(EvalError::MissingKey(name.to_string())),
            },
            other => ops::member(&other, name),
        }
    }

    fn query(&self, req: &'a Request) -> Result<Val<'a>, EvalError> {
        let Some(q) = &req.query else {
            return Err(EvalError::Null(
                "request.query exists only in list requests".into(),
            ));
        };
        let opt = |v: Option<i64>| v.map_or(Val::Null, Val::Int);
        let order = q
            .order_by
            .iter()
            .map(|(f, desc)| {
                make_map(vec![
                    (Val::str("field"), Val::str(f)),
                    (
                        Val::str("direction"),
                        Val::str(if *desc { "DESCENDING" } else { "ASCENDING" }),
                    ),
                ])
            })
            .collect::<Result<Vec<_>, _>>()?;
        make_map(vec![
            (Val::str("limit"), opt(q.limit)),
            (Val::str("offset"), opt(q.offset)),
            (Val::str("orderBy"), make_list(order)),
        ])
    }

    #[inline(never)]
    fn local(&mut self, i: u16, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        let i = i as usize;
        if let Some(Some(v)) = f.slots.get(i) {
            return Ok(v.clone());
        }
        let func = f
            .func
            .ok_or_else(|| EvalError::invalid("internal: local outside a function"))?;
        let node = func
            .lets
            .get(i.saturating_sub(func.params))
            .ok_or_else(|| EvalError::invalid("internal: bad local slot"))?;
        let v = self.eval(node, f)?;
        if let Some(slot) = f.slots.get_mut(i) {
            *slot = Some(v.clone());
        }
        Ok(v)
    }

    /// `get`/`exists`/`getAfter`/`existsAfter`.
    fn access(&mut self, b: Builtin, arg: Val<'a>) -> Result<Val<'a>, EvalError> {
        let after = matches!(b, Builtin::GetAfter | Builtin::ExistsAfter);
        let want_doc = matches!(b, Builtin::Get | Builtin::GetAfter);
        let Val::Path(p) = &arg else {
            return Err(EvalError::ty(format!(
                "{b:?}() needs a path, found {}",
                arg.type_name()
            )));
        };
        let req = self.request()?;
        let (Some("databases"), Some(db), Some("documents")) = (
            p.first().map(String::as_str),
            p.get(1),
            p.get(2).map(String::as_str),
        ) else {
            return Err(EvalError::invalid(format!(
                "document paths must start with /databases/$(database)/documents, got /{}",
                p.join("/")
            )));
        };
        if *db != req.database {
            return Err(EvalError::invalid(format!(
                "cannot read database '{db}' from rules of '{}'",
                req.database
            )));
        }
        let rel = p[3..].join("/");
        let cached = self
            .cache
            .iter()
            .find(|(a, r, _)| *a == after && *r == rel)
            .map(|(_, _, v)| v.clone());
        let found = match cached {
            Some(v) => v,
            None => {
                if self.access_calls >= self.access_limit {
                    return Err(EvalError::Limit(if self.access_limit < MAX_ACCESS_CALLS {
                        format!(
                            "more than {MAX_BATCH_ACCESS_CALLS} document reads (get/exists) in one batch"
                        )
                    } else {
                        format!(
                            "more than {MAX_ACCESS_CALLS} document reads (get/exists) in one request"
                        )
                    }));
                }
                let path = DocPath::parse(&rel).map_err(|e| EvalError::invalid(e.to_string()))?;
                self.access_calls += 1;
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
                        in_query: false,
                        data: match owned(&Value::Map(m)) {
                            Val::Map(m) => m,
                            _ => MapV::O(Arc::default()),
                        },
                    }))),
                    None => Val::Null,
                };
                self.cache.push((after, rel, v.clone()));
                v
            }
        };
        Ok(if want_doc {
            found
        } else {
            Val::Bool(!matches!(found, Val::Null))
        })
    }

    #[inline(never)]
    fn logic(
        &mut self,
        and: bool,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // `and`: false decides; `or`: true decides.
        let decisive = !and;
        match self.eval(a, f).and_then(want_bool) {
            Ok(x) if x == decisive => Ok(Val::Bool(x)),
            Ok(_) => self.eval(b, f).and_then(want_bool).map(Val::Bool),
            Err(e) if e.is_fatal() => Err(e),
            Err(e) => match self.eval(b, f).and_then(want_bool) {
                Ok(y) if y == decisive => Ok(Val::Bool(y)),
                Err(fatal) if fatal.is_fatal() => Err(fatal),
                _ => Err(e),
            },
        }
    }

    pub fn eval(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        if self.budget == 0 || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.budget -= 1;
        self.nesting += 1;
        let r = self.eval_node(n, f);
        self.nesting -= 1;
        r
    }

    /// A thin dispatcher: every arm that recurses lives in its own small function, so that the
    /// native stack per nesting level stays small even in debug builds.
    #[cold]
    #[inline(never)]
    fn limit_error(&self) -> EvalError {
        if self.budget == 0 {
            EvalError::Limit(format!(
                "more than {MAX_EXPRESSIONS} expressions evaluated for one request"
            ))
        } else {
            EvalError::Limit(format!(
                "expressions nest more than {MAX_EVAL_NESTING} deep across function calls"
            ))
        }
    }

    fn eval_node(&mut self, n: &'p Node, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        match &n.kind {
            NodeKind::Const(v) => Ok(v.clone()),
            NodeKind::Local(i) => self.local(*i, f),
            NodeKind::Wildcard(i) => self.wildcard(*i),
            NodeKind::Request => Ok(Val::Request),
            NodeKind::Resource => self.resource(),
            NodeKind::List(items) => self.list_node(items, f),
            NodeKind::Map(entries) => self.map_node(entries, f),
            NodeKind::Path(parts) => self.path_node(parts, f),
            NodeKind::Member(obj, name) => self.member_node(obj, name, f),
            NodeKind::Index(obj, i) => self.index_node(obj, i, f),
            NodeKind::Slice(obj, a, b) => self.slice_node(obj, a.as_deref(), b.as_deref(), f),
            NodeKind::Method(recv, name, args) => self.method_node(recv, name, args, f),
            NodeKind::Matches(recv, re) => self.matches_node(recv, re, f),
            NodeKind::Builtin(b, args) => self.builtin_node(*b, args, f),
            NodeKind::Call(id, args) => self.call(*id, args, f),
            NodeKind::Unary(op, x) => self.unary_node(*op, x, f),
            NodeKind::Binary(BinOp::And, a, b) => self.logic(true, a, b, f),
            NodeKind::Binary(BinOp::Or, a, b) => self.logic(false, a, b, f),
            NodeKind::Binary(op, a, b) => self.binary_node(*op, a, b, f),
            NodeKind::Is(x, t) => self.is_node(x, *t, f),
            NodeKind::Cond(c, a, b) => self.cond_node(c, a, b, f),
        }
    }

    fn wildcard(&self, i: u16) -> Result<Val<'a>, EvalError> {
        match self.bindings.get(i as usize) {
            Some(Some(v)) => Ok(v.clone()),
            _ => Err(EvalError::Null(
                "this wildcard is not bound (the document id is unknown in a list request)".into(),
            )),
        }
    }

    #[inline(never)]
    fn list_node(
        &mut self,
        items: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            out.push(self.eval(i, f)?);
        }
        Ok(make_list(out))
    }

    #[inline(never)]
    fn map_node(
        &mut self,
        entries: &'p [(Node, Node)],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            out.push((self.eval(k, f)?, self.eval(v, f)?));
        }
        make_map(out)
    }

    #[inline(never)]
    fn path_node(
        &mut self,
        parts: &'p [PathNode],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut segs = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                PathNode::Literal(s) => segs.push(s.clone()),
                PathNode::Interp(e) => {
                    let v = self.eval(e, f)?;
                    path_segment(v, &mut segs)?;
                }
            }
        }
        Ok(Val::path(segs))
    }

    #[inline(never)]
    fn member_node(
        &mut self,
        obj: &'p Node,
        name: &str,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = match obj.kind {
            // `request.x` / `resource.x`: charge the leaf as `eval` would, without the dispatch
            // (neither recurses, so the nesting count does not matter).
            NodeKind::Request | NodeKind::Resource => {
                if self.budget == 0 || self.nesting >= MAX_EVAL_NESTING {
                    return Err(self.limit_error());
                }
                self.budget -= 1;
                if let NodeKind::Request = obj.kind {
                    Val::Request
                } else {
                    self.resource()?
                }
            }
            _ => self.eval(obj, f)?,
        };
        self.member(v, name)
    }

    #[inline(never)]
    fn index_node(
        &mut self,
        obj: &'p Node,
        i: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(obj, f)?;
        let i = self.eval(i, f)?;
        match (&v, &i) {
            (Val::Request | Val::Resource(_), Val::Str(k)) => self.member(v.clone(), k.as_str()),
            _ => ops::index(&v, &i),
        }
    }

    #[inline(never)]
    fn slice_node(
        &mut self,
        obj: &'p Node,
        a: Option<&'p Node>,
        b: Option<&'p Node>,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(obj, f)?;
        let a = match a {
            Some(a) => Some(self.eval(a, f)?),
            None => None,
        };
        let b = match b {
            Some(b) => Some(self.eval(b, f)?),
            None => None,
        };
        ops::slice(&v, a.as_ref(), b.as_ref())
    }

    #[inline(never)]
    fn method_node(
        &mut self,
        recv: &'p Node,
        name: &str,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // `a.diff(b).affectedKeys().hasOnly([...])`: the idiom for "only these fields change".
        if let (NodeKind::Method(keys_of, keys, none), [allowed]) = (&recv.kind, args)
            && none.is_empty()
            && name == "hasOnly"
            && methods::is_diff_keys(keys)
            && let NodeKind::Method(x, diff, inner) = &keys_of.kind
            && let [y] = inner.as_slice()
            && &**diff == "diff"
        {
            return self.diff_has_only(x, y, keys, allowed, f);
        }
        // `a.diff(b).affectedKeys()` and friends: the keys straight from the two maps.
        if let (NodeKind::Method(x, diff, inner), []) = (&recv.kind, args)
            && let [y] = inner.as_slice()
            && &**diff == "diff"
            && methods::is_diff_keys(name)
        {
            return self.diff_keys(x, y, name, f);
        }
        let r = self.eval(recv, f)?;
        // Methods take at most two arguments: keep them on the stack.
        match args {
            [] => methods::call(r, name, &[], &mut self.regexes),
            [a] => {
                let a = self.eval(a, f)?;
                methods::call(r, name, std::slice::from_ref(&a), &mut self.regexes)
            }
            [a, b] => {
                let a = self.eval(a, f)?;
                let b = self.eval(b, f)?;
                methods::call(r, name, &[a, b], &mut self.regexes)
            }
            _ => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, f)?);
                }
                methods::call(r, name, &vals, &mut self.regexes)
            }
        }
    }

    /// `x.diff(y).<keys>().hasOnly(allowed)`: the same steps, budget and errors as evaluating
    /// the `<keys>` node (see [`Ctx::diff_keys`]) and then `allowed`, without building the key
    /// set when the operands are small maps.
    #[inline(never)]
    fn diff_has_only(
        &mut self,
        x: &'p Node,
        y: &'p Node,
        keys: &str,
        allowed: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // What `eval` does around the `<keys>` node, whose receiver is the `diff` node.
        if self.budget == 0 || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.budget -= 1;
        self.nesting += 1;
        let operands = self.diff_operands(x, y, f);
        self.nesting -= 1;
        let (a, b) = operands?;
        let (Val::Map(m), Val::Map(n)) = (&a, &b) else {
            let d = methods::call(a, "diff", std::slice::from_ref(&b), &mut self.regexes)?;
            let set = methods::call(d, keys, &[], &mut self.regexes)?;
            let allowed = self.eval(allowed, f)?;
            return methods::call(set, "hasOnly", &[allowed], &mut self.regexes);
        };
        // The key set of two maps cannot fail, so evaluating `allowed` after it is the same.
        let allowed = self.eval(allowed, f)?;
        if let Some(all) = methods::diff_has_only(m, n, keys, &allowed) {
            return Ok(Val::Bool(all));
        }
        let set = methods::map_diff(m, n, keys)
            .ok_or_else(|| EvalError::invalid("internal: not a map_diff method"))?;
        methods::call(set, "hasOnly", &[allowed], &mut self.regexes)
    }

    /// Evaluates the operands of a `diff` node with the budget and nesting `eval` would charge
    /// for the node itself.
    fn diff_operands(
        &mut self,
        x: &'p Node,
        y: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<(Val<'a>, Val<'a>), EvalError> {
        if self.budget == 0 || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.budget -= 1;
        self.nesting += 1;
        let operands = self.eval(x, f).and_then(|a| Ok((a, self.eval(y, f)?)));
        self.nesting -= 1;
        operands
    }

    /// `x.diff(y).<keys>()` where `keys` is one of the map_diff key methods: the same steps,
    /// budget and errors as evaluating the `diff` node and then calling `keys` on its value,
    /// without building the map_diff in between.
    #[inline(never)]
    fn diff_keys(
        &mut self,
        x: &'p Node,
        y: &'p Node,
        keys: &str,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let (a, b) = self.diff_operands(x, y, f)?;
        if let (Val::Map(m), Val::Map(n)) = (&a, &b)
            && let Some(v) = methods::map_diff(m, n, keys)
        {
            return Ok(v);
        }
        let d = methods::call(a, "diff", std::slice::from_ref(&b), &mut self.regexes)?;
        methods::call(d, keys, &[], &mut self.regexes)
    }

    #[inline(never)]
    fn matches_node(
        &mut self,
        recv: &'p Node,
        re: &regex::Regex,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        match self.eval(recv, f)? {
            Val::Str(s) => Ok(Val::Bool(re.is_match(s.as_str()))),
            Val::Null => Err(EvalError::Null("cannot call matches() on null".into())),
            other => Err(no_matches(&other)),
        }
    }

    #[inline(never)]
    fn builtin_node(
        &mut self,
        b: Builtin,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // Most built-ins take one or two arguments: keep those on the stack.
        match args {
            [a] => {
                let a = self.eval(a, f)?;
                self.builtin_apply(b, std::slice::from_ref(&a))
            }
            [a, b2] => {
                let a = self.eval(a, f)?;
                let b2 = self.eval(b2, f)?;
                self.builtin_apply(b, &[a, b2])
            }
            _ => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, f)?);
                }
                self.builtin_apply(b, &vals)
            }
        }
    }

    /// Applies a built-in to its evaluated arguments (`get()`/`exists()`/`debug()` take the
    /// last one, `Null` if none).
    fn builtin_apply(&mut self, b: Builtin, vals: &[Val<'a>]) -> Result<Val<'a>, EvalError> {
        let last = || vals.last().cloned().unwrap_or(Val::Null);
        match b {
            Builtin::Get | Builtin::Exists | Builtin::GetAfter | Builtin::ExistsAfter => {
                self.access(b, last())
            }
            Builtin::Debug => {
                let last = last();
                if self.debug.len() < 100 {
                    self.debug.push(crate::value::short(&last));
                }
                Ok(last)
            }
            _ => builtins::call(b, vals),
        }
    }

    #[inline(never)]
    fn unary_node(
        &mut self,
        op: UnOp,
        x: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(x, f)?;
        ops::unary(op, v)
    }

    #[inline(never)]
    fn binary_node(
        &mut self,
        op: BinOp,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let x = self.eval(a, f)?;
        let y = self.eval(b, f)?;
        ops::binary(op, x, y)
    }

    #[inline(never)]
    fn is_node(
        &mut self,
        x: &'p Node,
        t: TypeName,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(x, f)?;
        Ok(Val::Bool(ops::is_type(&v, t)))
    }

    #[inline(never)]
    fn cond_node(
        &mut self,
        c: &'p Node,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(c, f)?;
        if want_bool(v)? {
            self.eval(a, f)
        } else {
            self.eval(b, f)
        }
    }

    /// Evaluates a call's arguments into a new frame for the callee.
    pub fn call_frame(
        &mut self,
        id: u32,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Frame<'a, 'p>, EvalError> {
        let func = self
            .prog
            .and_then(|p| p.functions.get(id as usize))
            .ok_or_else(|| EvalError::invalid("internal: unknown function"))?;
        let n = func.params + func.lets.len();
        let slots = if n <= INLINE_LOCALS && args.len() <= n {
            let mut slots = Slots::new(n);
            for (i, a) in args.iter().enumerate() {
                let v = self.eval(a, f)?;
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(v);
                }
            }
            slots
        } else {
            let mut slots = Vec::with_capacity(n);
            for a in args {
                slots.push(Some(self.eval(a, f)?));
            }
            slots.resize(n, None);
            Slots::Heap(slots)
        };
        Ok(Frame {
            func: Some(func),
            slots,
        })
    }

    #[inline(never)]
    fn call(
        &mut self,
        id: u32,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        if self.depth >= MAX_CALL_DEPTH {
            return Err(EvalError::Limit(format!(
                "function calls nest deeper than {MAX_CALL_DEPTH}"
            )));
        }
        let mut frame = self.call_frame(id, args, f)?;
        let Some(func) = frame.func else {
            return Err(EvalError::invalid("internal: unknown function"));
        };
        self.depth += 1;
        let r = self.eval(&func.body, &mut frame);
        self.depth -= 1;
        r
    }

    /// Remaining expression budget (explanations run on their own budget).
    pub fn budget(&self) -> u32 {
        self.budget
    }

    pub fn set_budget(&mut self, budget: u32) {
        self.budget = budget;
    }

    /// Lowers the access-call limit (for an operation inside a batch).
    pub fn set_access_limit(&mut self, limit: u32) {
        self.access_limit = limit.min(MAX_ACCESS_CALLS);
    }

    /// Distinct documents read so far.
    pub fn access_calls(&self) -> u32 {
        self.access_calls
    }

    /// Sets what a list request's `resource.data` is known to hold.
    pub fn set_list_data(&mut self, data: Val<'a>) {
        self.list_data = Some(data);
        self.resource = None;
    }

    pub fn is_list(&self) -> bool {
        self.req.is_some_and(|r| r.method == Method::List)
    }
}

#[cfg(test)]
mod tests {
    use claimdb_model::{DocPath, Map, Timestamp, Value};

    use crate::{Method, NoDocuments, Request, Ruleset, Target};

    /// `a.diff(b).xKeys()` is evaluated without building the map_diff; through a `let` it is
    /// not. Both must give the same value or error, including past the expression budget.
    #[test]
    fn fused_diff_keys_agree_with_the_map_diff_value() {
        let map = |pairs: &[(&str, Value)]| -> Map {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let mut req = Request::new(
            Method::Update,
            Target::Doc(DocPath::parse("c/d").unwrap()),
            Timestamp::now(),
        );
        req.existing = Some(map(&[
            ("a", Value::Int(1)),
            ("b", Value::String("x".into())),
            ("c", Value::Double(f64::NAN)),
            ("m", Value::Map(map(&[("k", Value::Bool(true))]))),
        ]));
        req.incoming = Some(map(&[
            ("a", Value::Double(1.0)),
            ("b", Value::String("y".into())),
            ("c", Value::Double(f64::NAN)),
            ("d", Value::Null),
        ]));
        let functions = "function keys(a, b, which) { let d = a.diff(b); return which == 'added' ? d.addedKeys() : which == 'removed' ? d.removedKeys() : which == 'changed' ? d.changedKeys() : which == 'unchanged' ? d.unchangedKeys() : d.affectedKeys(); }";
        let operands = [
            ("request.resource.data", "resource.data"),
            ("resource.data", "request.resource.data"),
            ("{'a': 1, 'z': [1]}", "resource.data"),
            ("resource.data", "{}"),
            ("{}", "{}"),
            ("resource.data", "1"),
            ("null", "resource.data"),
            ("'s'", "resource.data"),
            ("resource.data.missing", "resource.data"),
            ("resource.data", "resource.data.missing"),
        ];
        let functions =
            format!("{functions} function only(k, allowed) {{ return k.hasOnly(allowed); }}");
        let many = (0..70)
            .map(|i| format!("'k{i}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let allowed = [
            "['a', 'b']".to_string(),
            "['a', 'b', 'c', 'd', 'm']".to_string(),
            "[]".to_string(),
            "['a', 1, null, 'd']".to_string(),
            "['b', 'c', 'd'].toSet()".to_string(),
            format!("[{many}, 'a', 'b', 'c', 'd', 'm']"),
            format!("[{many}]"),
            "'a'".to_string(),
            "null".to_string(),
            "resource.data.missing".to_string(),
        ];
        for (a, b) in operands {
            for which in ["added", "removed", "changed", "unchanged", "affected"] {
                let fused = format!("{a}.diff({b}).{which}Keys()");
                let plain = format!("keys({a}, {b}, '{which}')");
                assert_eq!(
                    Ruleset::evaluate_expression(&functions, &fused, &req, &NoDocuments),
                    Ruleset::evaluate_expression(&functions, &plain, &req, &NoDocuments),
                    "{fused}"
                );
                for allowed in &allowed {
                    let fused = format!("{a}.diff({b}).{which}Keys().hasOnly({allowed})");
                    let plain = format!("only(keys({a}, {b}, '{which}'), {allowed})");
                    assert_eq!(
                        Ruleset::evaluate_expression(&functions, &fused, &req, &NoDocuments),
                        Ruleset::evaluate_expression(&functions, &plain, &req, &NoDocuments),
                        "{fused}"
                    );
                }
            }
        }
    }
}
