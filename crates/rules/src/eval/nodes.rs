//! The evaluators of compound expression nodes (literals, members, indexes, methods, calls,
//! operators, conditionals) and of user-defined function calls: the second half of [`Ctx`]'s
//! evaluation, kept apart from `eval.rs` so that each file reads on its own.

use super::*;

impl<'a, 'p> Ctx<'a, 'p> {
    #[inline(never)]
    pub(super) fn const_node(&mut self, v: &Val<'static>, cost: u32) -> Result<Val<'a>, EvalError> {
        self.spend(cost)?;
        Ok(v.clone())
    }

    #[inline(never)]
    pub(super) fn leaf_request(&mut self) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        Ok(Val::Request)
    }

    #[inline(never)]
    pub(super) fn leaf_resource(&mut self) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        self.resource()
    }

    #[cold]
    #[inline(never)]
    pub(super) fn unknown(&mut self, name: &str) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        Err(EvalError::Null(format!(
            "'{name}' is not defined here (not a parameter, let, wildcard, request or resource)"
        )))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn bad_call(&mut self, msg: &str) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        Err(EvalError::invalid(msg.to_string()))
    }

    #[inline(never)]
    pub(super) fn local(&mut self, i: u16, f: &mut Frame<'a, 'p>) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        match f.slots.get(i as usize) {
            Some(r) => r.clone(),
            None => Err(EvalError::invalid("internal: bad local slot")),
        }
    }

    /// `&&` and `||`: the left side decides if it can; an error (or a non-bool) on the left is
    /// absorbed when the right side decides. Evaluating the right side counts one more.
    #[inline(never)]
    pub(super) fn logic(
        &mut self,
        and: bool,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // `and`: false decides; `or`: true decides.
        let decisive = !and;
        let r = match self.eval_bool(a, f) {
            Ok(x) if x == decisive => Ok(Val::Bool(x)),
            // A limit ends the evaluation: nothing absorbs it.
            Err(e) if e.is_fatal() => return Err(e),
            left => self.logic_right(decisive, left.err(), b, f),
        };
        self.spend(1)?;
        r
    }

    pub(super) fn eval_bool(
        &mut self,
        n: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<bool, EvalError> {
        self.eval(n, f).and_then(want_bool)
    }

    /// The right side of `&&`/`||` when the left did not decide (`left`: its error, if any).
    #[inline(never)]
    pub(super) fn logic_right(
        &mut self,
        decisive: bool,
        left: Option<EvalError>,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        self.spend(1)?;
        let right = self.eval_bool(b, f);
        match (left, right) {
            (None, r) => r.map(Val::Bool),
            (Some(_), Ok(y)) if y == decisive && !self.over() => Ok(Val::Bool(y)),
            (Some(_), Err(limit)) if limit.is_fatal() => Err(limit),
            (Some(e), _) => Err(e),
        }
    }

    #[inline(never)]
    pub(super) fn list_node(
        &mut self,
        items: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut out = Vec::with_capacity(items.len());
        let mut err = None;
        for i in items {
            match self.eval(i, f) {
                Ok(v) => out.push(v),
                Err(e) => first_error(&mut err, e),
            }
        }
        self.spend(1)?;
        match err {
            Some(e) => Err(e),
            None => Ok(make_list(out)),
        }
    }

    #[inline(never)]
    pub(super) fn map_node(
        &mut self,
        entries: &'p [(Node, Node)],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut err = None;
        for (k, v) in entries {
            let k = self.eval(k, f);
            let v = self.eval(v, f);
            match (k, v) {
                (Ok(k), Ok(v)) => out.push((k, v)),
                (Err(e), _) | (_, Err(e)) => first_error(&mut err, e),
            }
        }
        self.spend(1)?;
        match err {
            Some(e) => Err(e),
            None => make_map(out),
        }
    }

    /// A path literal: literal segments are URL-decoded; `$(…)` adds a path's segments, or one
    /// segment of anything `string()` converts.
    #[inline(never)]
    pub(super) fn path_node(
        &mut self,
        parts: &'p [PathNode],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let mut segs = Vec::with_capacity(parts.len());
        let mut err = None;
        let mut literals = 0;
        for p in parts {
            match p {
                PathNode::Literal(s) => {
                    literals += 1;
                    segs.push(url_decode(s));
                }
                PathNode::Interp(e) => match self.eval(e, f) {
                    Ok(Val::Path(p)) => segs.extend(p.iter().cloned()),
                    Ok(v) => match to_string(&v) {
                        Ok(s) => segs.push(s),
                        Err(e) => first_error(&mut err, e),
                    },
                    Err(e) => first_error(&mut err, e),
                },
            }
        }
        self.spend(literals + 1)?;
        match err {
            Some(e) => Err(e),
            None => Ok(Val::path(segs)),
        }
    }

    #[inline(never)]
    pub(super) fn member_node(
        &mut self,
        obj: &'p Node,
        name: &str,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = match obj.kind {
            // `request.x` / `resource.x`: count the leaf as `eval` would, without the dispatch
            // (neither recurses, so the nesting count does not matter).
            NodeKind::Request => {
                self.spend(1)?;
                Val::Request
            }
            NodeKind::Resource => {
                self.spend(1)?;
                self.resource()?
            }
            _ => {
                let v = self.eval(obj, f);
                self.spend(1)?;
                return self.member(v?, name);
            }
        };
        let r = self.member(v, name);
        self.spend(1)?;
        r
    }

    #[inline(never)]
    pub(super) fn index_node(
        &mut self,
        obj: &'p Node,
        i: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let i = self.eval(i, f);
        let v = self.eval(obj, f);
        self.spend(1)?;
        let (v, i) = (v?, i?);
        match (&v, &i) {
            (Val::Request | Val::Resource(_), Val::Str(k)) => self.member(v.clone(), k.as_str()),
            _ => {
                let v = self.plain(v)?;
                ops::index(&v, &i)
            }
        }
    }

    #[inline(never)]
    pub(super) fn slice_node(
        &mut self,
        obj: &'p Node,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let b = self.eval(b, f);
        let a = self.eval(a, f);
        let v = self.eval(obj, f);
        self.spend(1)?;
        let v = self.plain(v?)?;
        ops::slice(&v, &a?, &b?)
    }

    #[inline(never)]
    pub(super) fn method_node(
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
            let operands = self.diff_operands(x, y, f);
            self.spend(1)?;
            let (a, b) = operands?;
            return self.apply_diff_keys(a, b, name);
        }
        // Arguments first (the last first), then the receiver; a null receiver fails before
        // the arguments' errors count. Up to two arguments stay on the stack.
        match args {
            [] => {
                let r = self.eval(recv, f);
                self.spend(1)?;
                let r = self.receiver(r, name)?;
                methods::call(r, name, &[], &mut self.regexes)
            }
            [a] => {
                let a = self.eval(a, f);
                let r = self.eval(recv, f);
                self.spend(1)?;
                let r = self.receiver(r, name)?;
                let a = self.plain(a?)?;
                methods::call(r, name, std::slice::from_ref(&a), &mut self.regexes)
            }
            [a, b] => {
                let b = self.eval(b, f);
                let a = self.eval(a, f);
                let r = self.eval(recv, f);
                self.spend(1)?;
                let r = self.receiver(r, name)?;
                let (a, b) = (a?, b?);
                let (a, b) = (self.plain(a)?, self.plain(b)?);
                methods::call(r, name, &[a, b], &mut self.regexes)
            }
            _ => {
                let vals = self.arguments(args, f);
                let r = self.eval(recv, f);
                self.spend(1)?;
                let r = self.plain(r?)?;
                self.method_apply(r, name, vals)
            }
        }
    }

    /// A method's receiver: an error, null, or the value (`request` and resources as maps).
    #[inline]
    pub(super) fn receiver(
        &mut self,
        r: Result<Val<'a>, EvalError>,
        name: &str,
    ) -> Result<Val<'a>, EvalError> {
        match r? {
            Val::Null => Err(EvalError::Null(format!("cannot call {name}() on null"))),
            other => self.plain(other),
        }
    }

    pub(super) fn method_apply(
        &mut self,
        r: Val<'a>,
        name: &str,
        vals: Results<'a>,
    ) -> Result<Val<'a>, EvalError> {
        if let Val::Null = r {
            return Err(EvalError::Null(format!("cannot call {name}() on null")));
        }
        self.with_values(vals, |ctx, args| {
            methods::call(r, name, args, &mut ctx.regexes)
        })
    }

    /// Calls `f` with the values of `vals` (`request` and resources as maps), or gives the
    /// first error among them.
    pub(super) fn with_values(
        &mut self,
        mut vals: Results<'a>,
        f: impl FnOnce(&mut Self, &[Val<'a>]) -> Result<Val<'a>, EvalError>,
    ) -> Result<Val<'a>, EvalError> {
        if let Some(e) = vals.first_error() {
            return Err(e.clone());
        }
        match vals.len() {
            0 => f(self, &[]),
            1 => {
                let a = self.plain(vals.take(0)?)?;
                f(self, std::slice::from_ref(&a))
            }
            2 => {
                let a = self.plain(vals.take(0)?)?;
                let b = self.plain(vals.take(1)?)?;
                f(self, &[a, b])
            }
            n => {
                let mut all = Vec::with_capacity(n);
                for i in 0..n {
                    all.push(self.plain(vals.take(i)?)?);
                }
                f(self, &all)
            }
        }
    }

    /// `x.diff(y).<keys>().hasOnly(allowed)`: the same count and result as evaluating the
    /// `<keys>` node and then `hasOnly`, without building the key set when it is small.
    #[inline(never)]
    pub(super) fn diff_has_only(
        &mut self,
        x: &'p Node,
        y: &'p Node,
        keys: &str,
        allowed: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // `hasOnly`'s argument first, then its receiver (the `<keys>` node, whose receiver is
        // the `diff` node).
        let allowed = self.eval(allowed, f);
        if self.count > self.max_count || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.nesting += 1;
        let operands = self.diff_operands(x, y, f);
        let keys_counted = self.spend(1);
        self.nesting -= 1;
        keys_counted?;
        self.spend(1)?;
        let (a, b) = operands?;
        let allowed = self.plain(allowed?)?;
        if let (Val::Map(m), Val::Map(n)) = (&a, &b)
            && let Some(all) = methods::diff_has_only(m, n, keys, &allowed)
        {
            return Ok(Val::Bool(all));
        }
        let set = self.apply_diff_keys(a, b, keys)?;
        let mut vals = Results::with_capacity(1);
        vals.push(Ok(allowed));
        self.method_apply(set, "hasOnly", vals)
    }

    /// Evaluates the operands of a `diff` node (its argument first) with the count `eval`
    /// would charge for the node itself.
    pub(super) fn diff_operands(
        &mut self,
        x: &'p Node,
        y: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<(Val<'a>, Val<'a>), EvalError> {
        if self.count > self.max_count || self.nesting >= MAX_EVAL_NESTING {
            return Err(self.limit_error());
        }
        self.nesting += 1;
        let b = self.eval(y, f);
        let a = self.eval(x, f);
        self.nesting -= 1;
        self.spend(1)?;
        let a = self.plain(a?)?;
        if let Val::Null = a {
            return Err(EvalError::Null("cannot call diff() on null".into()));
        }
        let b = self.plain(b?)?;
        Ok((a, b))
    }

    /// The map_diff `<keys>` method of `a.diff(b)`.
    pub(super) fn apply_diff_keys(
        &mut self,
        a: Val<'a>,
        b: Val<'a>,
        keys: &str,
    ) -> Result<Val<'a>, EvalError> {
        if let (Val::Map(m), Val::Map(n)) = (&a, &b) {
            return Ok(methods::map_diff(m, n, keys));
        }
        let mut vals = Results::with_capacity(1);
        vals.push(Ok(b));
        let d = self.method_apply(a, "diff", vals)?;
        self.method_apply(d, keys, Results::with_capacity(0))
    }

    #[inline(never)]
    pub(super) fn matches_node(
        &mut self,
        recv: &'p Node,
        re: &regex::Regex,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // The pattern literal counts as one expression.
        self.spend(1)?;
        let r = self.eval(recv, f);
        self.spend(1)?;
        match self.plain(r?)? {
            Val::Str(s) => Ok(Val::Bool(re.is_match(s.as_str()))),
            Val::Null => Err(EvalError::Null("cannot call matches() on null".into())),
            other => Err(EvalError::ty(format!(
                "{} has no method matches()",
                other.type_name()
            ))),
        }
    }

    /// Evaluates every argument (the last first); the first error in order wins.
    pub(super) fn arguments(&mut self, args: &'p [Node], f: &mut Frame<'a, 'p>) -> Results<'a> {
        let mut vals = Results::with_capacity(args.len());
        match args {
            [] => {}
            [a] => vals.push(self.eval(a, f)),
            [a, b] => {
                let b = self.eval(b, f);
                vals.push(self.eval(a, f));
                vals.push(b);
            }
            _ => {
                let mut rev: Vec<R<'a>> = args.iter().rev().map(|a| self.eval(a, f)).collect();
                while let Some(r) = rev.pop() {
                    vals.push(r);
                }
            }
        }
        vals
    }

    #[inline(never)]
    pub(super) fn builtin_node(
        &mut self,
        b: Builtin,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        match args {
            [a] => {
                let a = self.eval(a, f);
                self.spend(1)?;
                let a = self.plain(a?)?;
                self.builtin_apply(b, std::slice::from_ref(&a))
            }
            [a, b2] => {
                let b2 = self.eval(b2, f);
                let a = self.eval(a, f);
                self.spend(1)?;
                let (a, b2) = (a?, b2?);
                let (a, b2) = (self.plain(a)?, self.plain(b2)?);
                self.builtin_apply(b, &[a, b2])
            }
            _ => {
                let vals = self.arguments(args, f);
                self.spend(1)?;
                self.with_values(vals, |ctx, args| ctx.builtin_apply(b, args))
            }
        }
    }

    /// Applies a built-in to its evaluated arguments.
    pub(super) fn builtin_apply(
        &mut self,
        b: Builtin,
        vals: &[Val<'a>],
    ) -> Result<Val<'a>, EvalError> {
        match b {
            Builtin::Get
            | Builtin::Exists
            | Builtin::GetAfter
            | Builtin::ExistsAfter
            | Builtin::Value
            | Builtin::Debug => {
                let [arg] = vals else {
                    return Err(EvalError::ty(format!(
                        "{}() takes 1 argument, given {}",
                        b.name(),
                        vals.len()
                    )));
                };
                if b == Builtin::Debug {
                    if self.debug.len() < 100 {
                        self.debug.push(crate::value::short(arg));
                    }
                    return Ok(arg.clone());
                }
                self.access(b, arg)
            }
            _ => builtins::call(b, vals),
        }
    }

    #[inline(never)]
    pub(super) fn unary_node(
        &mut self,
        op: UnOp,
        x: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(x, f);
        self.spend(1)?;
        ops::unary(op, v?)
    }

    #[inline(never)]
    pub(super) fn binary_node(
        &mut self,
        op: BinOp,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // `x in y` is `y`'s operation: its error comes first.
        let (x, y) = if op == BinOp::In {
            let x = self.eval(a, f);
            let y = self.eval(b, f);
            (x, y)
        } else {
            let y = self.eval(b, f);
            let x = self.eval(a, f);
            (x, y)
        };
        self.spend(1)?;
        let (x, y) = if op == BinOp::In {
            let y = y?;
            (x?, y)
        } else {
            (x?, y?)
        };
        let (x, y) = (self.plain(x)?, self.plain(y)?);
        ops::binary(op, x, y)
    }

    #[inline(never)]
    pub(super) fn is_node(
        &mut self,
        x: &'p Node,
        t: TypeName,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        // The type counts as an expression, before the value.
        self.spend(1)?;
        let v = self.eval(x, f);
        self.spend(1)?;
        Ok(Val::Bool(ops::is_type(&v?, t)))
    }

    #[inline(never)]
    pub(super) fn cond_node(
        &mut self,
        c: &'p Node,
        a: &'p Node,
        b: &'p Node,
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        let v = self.eval(c, f);
        self.spend(1)?;
        let r = match v.and_then(want_bool) {
            Ok(true) => self.eval(a, f),
            Ok(false) => {
                self.spend(1)?;
                let r = self.eval(b, f);
                self.spend(1)?;
                r
            }
            Err(e) => Err(e),
        };
        self.spend(1)?;
        r
    }

    /// Evaluates a call's arguments (the last first) and the callee's `let`s (in order) into
    /// a new frame; the call itself counts after its arguments, before its `let`s.
    pub(crate) fn call_frame(
        &mut self,
        id: u32,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Frame<'a, 'p>, EvalError> {
        let func = self
            .prog
            .and_then(|p| p.functions.get(id as usize))
            .ok_or_else(|| EvalError::invalid("internal: unknown function"))?;
        let mut slots = Results::with_capacity(func.params + func.lets.len());
        match args {
            [] => {}
            [a] => slots.push(self.eval(a, f)),
            [a, b] => {
                let b = self.eval(b, f);
                slots.push(self.eval(a, f));
                slots.push(b);
            }
            _ => {
                let mut done = self.arguments(args, f);
                for i in 0..done.len() {
                    slots.push(done.take(i));
                }
            }
        }
        self.spend(1)?;
        let mut frame = Frame {
            func: Some(func),
            slots,
        };
        self.depth += 1;
        for l in &func.lets {
            let v = self.eval(l, &mut frame);
            let counted = self.spend(1);
            frame.slots.push(match (v, counted) {
                (_, Err(limit)) => Err(limit),
                (v, Ok(())) => v,
            });
        }
        self.depth -= 1;
        Ok(frame)
    }

    #[inline(never)]
    pub(super) fn call(
        &mut self,
        id: u32,
        args: &'p [Node],
        f: &mut Frame<'a, 'p>,
    ) -> Result<Val<'a>, EvalError> {
        if self.depth >= MAX_CALL_DEPTH {
            self.spend(1)?;
            return Err(EvalError::invalid(format!(
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

    /// Lowers the access-call limit (for an operation inside a batch).
    pub(crate) fn set_access_limit(&mut self, limit: u32) {
        self.access_limit = self.access_limit.min(limit);
    }

    /// Distinct documents read so far.
    pub(crate) fn access_calls(&self) -> u32 {
        self.access_calls
    }

    /// Sets how a list request looks for one case of its query.
    pub(crate) fn set_view(&mut self, view: View<'a>) {
        self.view = Some(view);
        self.request_map = None;
    }

    pub(crate) fn is_list(&self) -> bool {
        self.req.is_some_and(|r| r.method == Method::List)
    }
}
