//! The checked, compiled form the evaluator runs: expression nodes with every name resolved to a
//! slot, a built-in or a function index; functions in a flat table; and the match tree.
//!
//! Only `check` and `compile` build these; there is no way to make a `Program` from unchecked
//! syntax, which is what lets the evaluator trust arities and slots.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::ast::{AllowMethod, BinOp, UnOp};
use crate::lexer::Span;
use crate::value::Val;

/// Functions of the global and namespaced library (`get`, `math.abs`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Get,
    Exists,
    GetAfter,
    ExistsAfter,
    String,
    Int,
    Float,
    Bool,
    Path,
    Debug,
    MathAbs,
    MathCeil,
    MathFloor,
    MathRound,
    MathSqrt,
    MathPow,
    MathIsNaN,
    MathIsInfinite,
    TimestampDate,
    TimestampValue,
    DurationValue,
    DurationTime,
    DurationAbs,
    LatLngValue,
    HashCrc32,
    HashCrc32c,
    HashMd5,
    HashSha256,
}

impl Builtin {
    /// Looks up `name` (global) or `ns.name`; returns the builtin and its arity.
    pub fn lookup(ns: Option<&str>, name: &str) -> Option<(Builtin, usize)> {
        use Builtin::*;
        Some(match (ns, name) {
            (None, "get") => (Get, 1),
            (None, "exists") => (Exists, 1),
            (None, "getAfter") => (GetAfter, 1),
            (None, "existsAfter") => (ExistsAfter, 1),
            (None, "string") => (String, 1),
            (None, "int") => (Int, 1),
            (None, "float") => (Float, 1),
            (None, "bool") => (Bool, 1),
            (None, "path") => (Path, 1),
            (None, "debug") => (Debug, 1),
            (Some("math"), "abs") => (MathAbs, 1),
            (Some("math"), "ceil") => (MathCeil, 1),
            (Some("math"), "floor") => (MathFloor, 1),
            (Some("math"), "round") => (MathRound, 1),
            (Some("math"), "sqrt") => (MathSqrt, 1),
            (Some("math"), "pow") => (MathPow, 2),
            (Some("math"), "isNaN") => (MathIsNaN, 1),
            (Some("math"), "isInfinite") => (MathIsInfinite, 1),
            (Some("timestamp"), "date") => (TimestampDate, 3),
            (Some("timestamp"), "value") => (TimestampValue, 1),
            (Some("duration"), "value") => (DurationValue, 2),
            (Some("duration"), "time") => (DurationTime, 4),
            (Some("duration"), "abs") => (DurationAbs, 1),
            (Some("latlng"), "value") => (LatLngValue, 2),
            (Some("hashing"), "crc32") => (HashCrc32, 1),
            (Some("hashing"), "crc32c") => (HashCrc32c, 1),
            (Some("hashing"), "md5") => (HashMd5, 1),
            (Some("hashing"), "sha256") => (HashSha256, 1),
            _ => return None,
        })
    }

    pub fn is_namespace(name: &str) -> bool {
        matches!(
            name,
            "math" | "timestamp" | "duration" | "latlng" | "hashing"
        )
    }

    /// Pure builtins may be folded at compile time.
    pub fn is_pure(self) -> bool {
        !matches!(
            self,
            Builtin::Get
                | Builtin::Exists
                | Builtin::GetAfter
                | Builtin::ExistsAfter
                | Builtin::Debug
        )
    }
}

/// Minimum and maximum argument counts of a method name (any receiver type).
pub fn method_arity(name: &str) -> Option<(usize, usize)> {
    Some(match name {
        "size" | "lower" | "upper" | "trim" | "toUtf8" | "toSet" | "keys" | "values"
        | "addedKeys" | "removedKeys" | "changedKeys" | "unchangedKeys" | "affectedKeys"
        | "year" | "month" | "day" | "hours" | "minutes" | "seconds" | "nanos" | "dayOfWeek"
        | "dayOfYear" | "date" | "time" | "toMillis" | "latitude" | "longitude" | "toBase64"
        | "toHexString" => (0, 0),
        "matches" | "split" | "hasAll" | "hasAny" | "hasOnly" | "join" | "concat" | "removeAll"
        | "diff" | "union" | "intersection" | "difference" | "distance" | "bind" => (1, 1),
        "replace" | "get" => (2, 2),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub enum PathNode {
    Literal(String),
    Interp(Node),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Const(Val<'static>),
    /// A function parameter or `let` (index into the current frame).
    Local(u16),
    /// A match wildcard (index into the request's captured bindings).
    Wildcard(u16),
    Request,
    Resource,
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Path(Vec<PathNode>),
    Member(Box<Node>, Arc<str>),
    Index(Box<Node>, Box<Node>),
    Slice(Box<Node>, Option<Box<Node>>, Option<Box<Node>>),
    Method(Box<Node>, Arc<str>, Vec<Node>),
    /// `s.matches(<constant>)` with the pattern compiled once.
    Matches(Box<Node>, Arc<regex::Regex>),
    Builtin(Builtin, Vec<Node>),
    Call(u32, Vec<Node>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Is(Box<Node>, TypeName),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// The types `is` can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    Bool,
    Int,
    Float,
    Number,
    String,
    List,
    Map,
    Set,
    Timestamp,
    Duration,
    Path,
    LatLng,
    Bytes,
    MapDiff,
}

impl TypeName {
    pub fn parse(s: &str) -> Option<TypeName> {
        Some(match s {
            "bool" => TypeName::Bool,
            "int" => TypeName::Int,
            "float" => TypeName::Float,
            "number" => TypeName::Number,
            "string" => TypeName::String,
            "list" => TypeName::List,
            "map" => TypeName::Map,
            "set" => TypeName::Set,
            "timestamp" => TypeName::Timestamp,
            "duration" => TypeName::Duration,
            "path" => TypeName::Path,
            "latlng" => TypeName::LatLng,
            "bytes" => TypeName::Bytes,
            "map_diff" => TypeName::MapDiff,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
#[allow(dead_code)] // name and line are kept for traces and debugging output
pub struct FuncDef {
    pub name: String,
    pub params: usize,
    /// `let` expressions, evaluated lazily (slots `params..params+lets`).
    pub lets: Vec<Node>,
    pub body: Node,
    pub line: usize,
}

/// A method set an allow grants, as a bit mask over the five request methods.
#[derive(Debug, Clone)]
pub struct AllowDef {
    pub mask: u8,
    /// The methods as written (`read, write`), for traces.
    pub methods_text: Arc<str>,
    pub condition: Option<Node>,
    pub line: usize,
    /// Position among all allow statements, in source order.
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatSeg {
    Literal(String),
    /// Captures into wildcard slot `n`.
    Single(u16),
    Rest(u16),
}

/// A small, fast hasher for the match tree's literal-segment index (the FxHash mix). SipHash's
/// flooding resistance buys nothing here: the keys come from the rules file, and a request
/// path only ever looks keys up.
#[derive(Debug, Default, Clone, Copy)]
pub struct SegHasher(u64);

impl SegHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for SegHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Match nodes by the literal their pattern starts with.
pub type LiteralIndex = HashMap<String, Vec<usize>, BuildHasherDefault<SegHasher>>;

#[derive(Debug, Clone)]
pub struct MatchNode {
    pub pattern: Vec<PatSeg>,
    /// The full pattern as written, for traces.
    pub text: Arc<str>,
    pub line: usize,
    pub allows: Vec<AllowDef>,
    /// Children whose pattern starts with a literal, by that literal.
    pub by_literal: LiteralIndex,
    /// Children whose pattern starts with a wildcard.
    pub wild: Vec<usize>,
}

/// A whole checked program.
#[derive(Debug, Clone)]
pub struct Program {
    pub functions: Vec<FuncDef>,
    /// Arena of match nodes; `roots` are the service-level matches.
    pub matches: Vec<MatchNode>,
    pub roots_by_literal: LiteralIndex,
    pub roots_wild: Vec<usize>,
    /// Version 1: `{x=**}` matches one or more segments and only at the end.
    pub v1: bool,
    /// Number of wildcard slots any request may need.
    pub wildcard_slots: usize,
}

/// The bit of a request method in [`AllowDef::mask`].
pub fn mask_of(m: AllowMethod) -> u8 {
    match m {
        AllowMethod::Get => 1,
        AllowMethod::List => 2,
        AllowMethod::Create => 4,
        AllowMethod::Update => 8,
        AllowMethod::Delete => 16,
        AllowMethod::Read => 1 | 2,
        AllowMethod::Write => 4 | 8 | 16,
    }
}
