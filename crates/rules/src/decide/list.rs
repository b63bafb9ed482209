//! Deciding a list request: the query's filters taken apart into the ways a document may
//! satisfy them, each way decided on a partial `resource` holding only the fields the filters
//! name (a pinned value or a constraint), and `request.query` as the rules see it.

use super::*;

/// A filtered field: one plain name borrowed from the query, or a parsed dotted path.
#[derive(Clone, PartialEq)]
enum FieldKey<'q> {
    Plain(&'q str),
    Path(Vec<String>),
}

impl FieldKey<'_> {
    fn of(f: &Filter) -> Option<FieldKey<'_>> {
        let plain = !f.field.is_empty() && !f.field.bytes().any(|b| b == b'.' || b == b'`');
        if plain {
            return Some(FieldKey::Plain(&f.field));
        }
        FieldPath::parse(&f.field)
            .ok()
            .map(|p| FieldKey::Path(p.segments().to_vec()))
    }

    fn is_name(&self) -> bool {
        match self {
            FieldKey::Plain(s) => *s == claimdb_model::field::DOCUMENT_ID,
            FieldKey::Path(p) => p.len() == 1 && p[0] == claimdb_model::field::DOCUMENT_ID,
        }
    }

    fn text(&self) -> String {
        match self {
            FieldKey::Plain(s) => (*s).to_string(),
            FieldKey::Path(p) => p.join("\u{1}"),
        }
    }
}

/// One filter of a way: a field and what it tells of it, or a named document (its path
/// from `databases`).
#[derive(Clone)]
enum Atom<'q> {
    Field(FieldKey<'q>, Vec<Simple<'q>>),
    Name(Vec<&'q str>),
}

/// A way a document may satisfy the query's filters.
enum Way<'q> {
    /// `__name__ ==` this document (its path from `databases`).
    Document(Vec<&'q str>),
    /// Each field the filters name, with what they tell of it, in order of appearance.
    Fields(Vec<(FieldKey<'q>, Vec<Simple<'q>>)>),
}

/// The document a `__name__` filter value names, from `databases`.
fn named<'q>(req: &'q Request, v: &'q Value) -> Option<Vec<&'q str>> {
    let mut segs = vec!["databases", req.database.as_str(), "documents"];
    match v {
        Value::Reference(p) => segs.extend(p.segments()),
        Value::String(id) if !id.is_empty() && !id.contains('/') => match &req.target {
            Target::Collection(c) => {
                segs.extend(c.as_str().split('/'));
                segs.push(id);
            }
            _ => return None,
        },
        _ => return None,
    }
    Some(segs)
}

/// What one filter gives the ways of a query.
enum Alternatives<'q> {
    /// Nothing: it constrains no field the rules can see.
    Nothing,
    /// One more filter for every way.
    One(Atom<'q>),
    /// Each way splits into one per alternative (`in`, `array-contains-any`).
    Split(Vec<Atom<'q>>),
}

/// The alternatives one filter gives.
fn alternatives<'q>(req: &'q Request, f: &'q Filter) -> Alternatives<'q> {
    let Some(field) = FieldKey::of(f) else {
        return Alternatives::Nothing;
    };
    if field.is_name() {
        return match (f.op, &f.value) {
            (FilterOp::Eq, v) => match named(req, v) {
                Some(p) => Alternatives::One(Atom::Name(p)),
                None => Alternatives::Nothing,
            },
            (FilterOp::In, Value::Array(items)) => Alternatives::Split(
                items
                    .iter()
                    .filter_map(|v| named(req, v).map(Atom::Name))
                    .collect(),
            ),
            _ => Alternatives::Nothing,
        };
    }
    match (f.op, &f.value) {
        (FilterOp::In, Value::Array(items)) => Alternatives::Split(
            items
                .iter()
                .map(|v| Atom::Field(field.clone(), value_simples(FilterOp::Eq, v)))
                .collect(),
        ),
        (FilterOp::ArrayContainsAny, Value::Array(items)) => Alternatives::Split(
            items
                .iter()
                .map(|v| Atom::Field(field.clone(), value_simples(FilterOp::ArrayContains, v)))
                .collect(),
        ),
        (op, v) => Alternatives::One(Atom::Field(field, simples(op, v))),
    }
}

/// A way's filters as one text, to tell repeated ways apart.
fn signature(atoms: &[Atom<'_>]) -> Option<String> {
    let mut parts = Vec::with_capacity(atoms.len());
    for a in atoms {
        let Atom::Field(field, simples) = a else {
            return None;
        };
        let mut s = field.text();
        for x in simples {
            let v = match &x.value {
                Val::Float(f) if f.is_nan() => "NaN".to_string(),
                v => format!("{}:{v}", v.type_name()),
            };
            s.push_str(&format!("\u{2}{}\u{3}{v}", x.comparator.name()));
        }
        parts.push(s);
    }
    parts.sort();
    Some(parts.join("\u{4}"))
}

/// The ways the query's filters may be satisfied, each once; `None` if there are too many.
/// An or query's conjunctions ([`crate::Query::disjunctions`]) each give their own ways, as
/// each `in` and `array-contains-any` value does.
fn ways(req: &Request) -> Option<Vec<Way<'_>>> {
    let mut all: Vec<Vec<Atom<'_>>> = Vec::new();
    match &req.query {
        None => all.push(Vec::new()),
        Some(q) if q.disjunctions.is_empty() => all = conjunction_ways(req, q.filters.iter())?,
        Some(q) => {
            for disjunction in &q.disjunctions {
                let more = conjunction_ways(req, q.filters.iter().chain(disjunction))?;
                if all.len().saturating_add(more.len()) > MAX_QUERY_WAYS {
                    return None;
                }
                all.extend(more);
            }
        }
    }
    if all.len() == 1 {
        return Some(all.into_iter().map(way).collect());
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(all.len());
    for atoms in all {
        if let Some(sig) = signature(&atoms)
            && !seen.insert(sig)
        {
            continue;
        }
        out.push(way(atoms));
    }
    if out.is_empty() {
        out.push(Way::Fields(Vec::new()));
    }
    Some(out)
}

/// The ways of one conjunction of filters: one, split by each `in` and `array-contains-any`.
fn conjunction_ways<'q>(
    req: &'q Request,
    filters: impl Iterator<Item = &'q Filter>,
) -> Option<Vec<Vec<Atom<'q>>>> {
    let mut product: Vec<Vec<Atom<'q>>> = vec![Vec::new()];
    for f in filters {
        match alternatives(req, f) {
            Alternatives::Nothing => {}
            Alternatives::One(atom) => {
                // The usual filter: one more atom in every way.
                if let [w] = product.as_mut_slice() {
                    w.push(atom);
                } else {
                    for w in &mut product {
                        w.push(atom.clone());
                    }
                }
            }
            Alternatives::Split(alts) => {
                if product.len().saturating_mul(alts.len()) > MAX_QUERY_WAYS {
                    return None;
                }
                let mut next = Vec::with_capacity(product.len() * alts.len());
                for left in &product {
                    for right in &alts {
                        let mut w = left.clone();
                        w.push(right.clone());
                        next.push(w);
                    }
                }
                product = next;
            }
        }
    }
    Some(product)
}

fn way(atoms: Vec<Atom<'_>>) -> Way<'_> {
    let mut fields: Vec<(FieldKey<'_>, Vec<Simple<'_>>)> = Vec::with_capacity(atoms.len());
    for atom in atoms {
        match atom {
            Atom::Name(p) => return Way::Document(p),
            Atom::Field(field, simples) => match fields.iter_mut().find(|(f, _)| *f == field) {
                Some((_, all)) => all.extend(simples),
                None => fields.push((field, simples)),
            },
        }
    }
    Way::Fields(fields)
}

/// What a field's filters tell of it: its value when they are one `EQ`, or a constraint of
/// them, each once.
fn known<'q>(filters: &[Simple<'q>]) -> Val<'q> {
    if let [
        Simple {
            comparator: Comparator::Eq,
            value,
        },
    ] = filters
    {
        return value.clone();
    }
    let mut distinct: Vec<Simple<'q>> = Vec::with_capacity(filters.len());
    for s in filters {
        if !distinct.iter().any(|d| d.same_as(s)) {
            distinct.push(s.clone());
        }
    }
    if let [
        Simple {
            comparator: Comparator::Eq,
            value,
        },
    ] = distinct.as_slice()
    {
        return value.clone();
    }
    Val::Constraint(Arc::from(distinct))
}

/// A nested map being built from field paths.
enum Node<'q> {
    Value(Val<'q>),
    Map(OwnedNodes<'q>),
}

/// Keys in the order first written.
type OwnedNodes<'q> = Vec<(String, Node<'q>)>;

fn insert<'q>(map: &mut OwnedNodes<'q>, field: &[String], value: Val<'q>) {
    let Some((first, rest)) = field.split_first() else {
        return;
    };
    let i = match map.iter().position(|(k, _)| k == first) {
        Some(i) => i,
        None => {
            map.push((first.clone(), Node::Map(Vec::new())));
            map.len() - 1
        }
    };
    let Some((_, node)) = map.get_mut(i) else {
        return;
    };
    if rest.is_empty() {
        *node = Node::Value(value);
        return;
    }
    if let Node::Value(_) = node {
        *node = Node::Map(Vec::new());
    }
    if let Node::Map(inner) = node {
        insert(inner, rest, value);
    }
}

fn freeze(map: OwnedNodes<'_>) -> Val<'_> {
    Val::Map(MapV::O(Arc::new(
        map.into_iter()
            .map(|(k, node)| {
                let v = match node {
                    Node::Value(v) => v,
                    Node::Map(inner) => freeze(inner),
                };
                (k, v)
            })
            .collect(),
    )))
}

/// `resource` for one way of fields: `{data: …}` with only the fields the filters name.
fn partial_resource<'q>(fields: &[(FieldKey<'q>, Vec<Simple<'q>>)]) -> Val<'q> {
    let data = if fields.iter().all(|(f, _)| matches!(f, FieldKey::Plain(_))) {
        // Plain names: one flat map.
        let mut m = OwnedMap::with_capacity(fields.len());
        for (f, filters) in fields {
            if let FieldKey::Plain(name) = f {
                m.insert(*name, known(filters));
            }
        }
        Val::Map(MapV::O(Arc::new(m)))
    } else {
        let mut root = Vec::new();
        for (field, filters) in fields {
            match field {
                FieldKey::Plain(name) => insert(&mut root, &[(*name).to_string()], known(filters)),
                FieldKey::Path(p) => insert(&mut root, p, known(filters)),
            }
        }
        freeze(root)
    };
    let mut m = OwnedMap::with_capacity(1);
    m.insert("data", data);
    Val::Map(MapV::O(Arc::new(m)))
}

pub(super) fn decide_list<'a, 'p>(
    prog: &'p Program,
    req: &'a Request,
    ctx: &mut Ctx<'a, 'p>,
    mode: Mode<'p>,
) -> Decision {
    let Some(ways) = ways(req) else {
        let mut d = empty_decision();
        d.limit = Some(format!(
            "the query's filters take more than {MAX_QUERY_WAYS} ways apart (each disjunction of an or, and each 'in' and 'array-contains-any' value, is one) to prove"
        ));
        return d;
    };
    // The collection's path (or a group's parents, unknown run and collection id), then the
    // unknown document id.
    let mut segs: Vec<Seg<'a>> = Vec::with_capacity(INLINE_SEGMENTS);
    segs.extend([
        Seg::Lit("databases"),
        Seg::Lit(&req.database),
        Seg::Lit("documents"),
    ]);
    let group = match &req.target {
        Target::Doc(p) => {
            segs.extend(p.segments().map(Seg::Lit));
            false
        }
        Target::Collection(c) => {
            segs.extend(c.as_str().split('/').map(Seg::Lit));
            false
        }
        Target::Group {
            under,
            collection_id,
        } => {
            if let Some(u) = under {
                segs.extend(u.segments().map(Seg::Lit));
            }
            segs.push(Seg::UnknownRun);
            segs.push(Seg::Lit(collection_id));
            true
        }
    };
    segs.push(Seg::UnknownId);
    let mut last = None;
    for w in &ways {
        ctx.set_count(0);
        let mut d = empty_decision();
        match w {
            Way::Fields(fields) => {
                ctx.set_view(View {
                    resource: partial_resource(fields),
                    path: group.then_some(Val::Unknown),
                    target: None,
                });
                walk(prog, req, ctx, &segs, mode, &mut d);
            }
            Way::Document(path) => {
                let rel = path.get(3..).unwrap_or(&[]).join("/");
                let stored = match claimdb_model::DocPath::parse(&rel) {
                    Ok(p) => ctx.read_document(&p).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match stored {
                    // Not a limit: the engine loads what was wanted and decides again.
                    Err(e) => d.tried.push(Tried {
                        allow: 0,
                        line: 0,
                        methods: Arc::from("list"),
                        outcome: Outcome::Error(format!("reading {rel}: {e}")),
                    }),
                    Ok(doc) => {
                        let full: Arc<[String]> = path.iter().map(|s| (*s).to_string()).collect();
                        ctx.set_view(View {
                            resource: doc,
                            path: Some(Val::Path(full.clone())),
                            target: Some(full),
                        });
                        let segs: Vec<Seg<'a>> = path.iter().map(|s| Seg::Lit(s)).collect();
                        walk(prog, req, ctx, &segs, mode, &mut d);
                    }
                }
            }
        }
        if !d.allowed {
            return d;
        }
        last = Some(d);
    }
    last.unwrap_or_else(empty_decision)
}

/// `request.query`: the emulator's keys, in its order.
pub(crate) fn query_value<'a>(req: &'a Request) -> Val<'a> {
    let q = req.query.clone().unwrap_or_default();
    let base = crate::value::target_segments(req);
    let (kind, parent, group) = match &req.target {
        Target::Group { collection_id, .. } => (Val::str(collection_id), base.clone(), true),
        _ => match base.split_last() {
            Some((id, parent)) => (Val::str(id), parent.to_vec(), false),
            None => (Val::Null, Vec::new(), false),
        },
    };
    // `databases/{id}/documents`, the root, is no document.
    let parent = if parent.len() > 3 {
        Val::path(parent)
    } else {
        Val::Null
    };
    let orders: Vec<(String, &'static str)> = q
        .order_by
        .iter()
        .map(|(f, desc)| {
            let field = match FieldPath::parse(f) {
                Ok(p) => p.segments().join("."),
                Err(_) => f.clone(),
            };
            (field, if *desc { "DESC" } else { "ASC" })
        })
        .collect();
    let mut order_by = OwnedMap::new();
    for i in java_hash_order(&orders.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>()) {
        if let Some((f, d)) = orders.get(i) {
            order_by.insert(f.clone(), Val::str(d));
        }
    }
    let mut m = OwnedMap::with_capacity(9);
    m.insert("distinct", Val::Bool(false));
    m.insert("selectOnlyKeys", Val::Bool(false));
    m.insert("groupBy", Val::Map(MapV::O(Arc::default())));
    m.insert("kind", kind);
    m.insert(if group { "ancestor" } else { "parent" }, parent);
    m.insert("orderBy", Val::Map(MapV::O(Arc::new(order_by))));
    m.insert("limit", q.limit.map_or(Val::Null, Val::Int));
    m.insert("offset", Val::Int(q.offset.unwrap_or(0)));
    m.insert("allDescendants", Val::Bool(group));
    Val::Map(MapV::O(Arc::new(m)))
}

/// The order a Java `HashMap<String, …>` iterates distinct `keys` in (the emulator builds
/// `request.query.orderBy` as one): by bucket of the spread string hash, then insertion.
fn java_hash_order(keys: &[&str]) -> Vec<usize> {
    let mut entries: Vec<(usize, u32)> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if keys.get(..i).is_some_and(|before| before.contains(k)) {
            continue;
        }
        let mut h: i32 = 0;
        for unit in k.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
        }
        let h = h as u32;
        entries.push((i, h ^ (h >> 16)));
    }
    let mut capacity: u32 = 16;
    while entries.len() as u32 > capacity / 4 * 3 {
        capacity *= 2;
    }
    loop {
        // A bucket reaching 8 entries makes a small table grow rather than become a tree.
        let crowded = capacity < 64 && {
            let mut counts = std::collections::HashMap::new();
            entries.iter().any(|(_, h)| {
                let c = counts.entry(h & (capacity - 1)).or_insert(0u32);
                *c += 1;
                *c >= 8
            })
        };
        if !crowded {
            break;
        }
        capacity *= 2;
    }
    entries.sort_by_key(|&(i, h)| (h & (capacity - 1), i));
    entries.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::java_hash_order;

    #[test]
    fn java_hash_map_order() {
        // Java: new HashMap<>() with put("b"), put("a"), put("title"), put("year") iterates
        // a, b, year, title ("a".hashCode() = 97, "b" = 98, "year" = 3704893,
        // "title" = 110371416).
        let keys = ["b", "a", "title", "year"];
        let order: Vec<&str> = java_hash_order(&keys)
            .into_iter()
            .map(|i| keys[i])
            .collect();
        assert_eq!(order, ["a", "b", "year", "title"]);
    }
}
