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

/// Functions of the global and namespaced library (`get`, `math.abs`, …), as the Firestore
/// emulator has them. The reference also lists `math.isInfinite` and a `bool()` conversion; the
/// emulator has neither (calling them is a "function not found" error), so neither is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Get,
    Exists,
    GetAfter,
    ExistsAfter,
    /// `value(path)`: the emulator's alias of `get`.
    Value,
    String,
    Int,
    Float,
    Path,
    Debug,
    MathAbs,
    MathCeil,
    MathFloor,
    MathRound,
    MathSqrt,
    MathPow,
    MathIsNaN,
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
    pub(crate) fn lookup(ns: Option<&str>, name: &str) -> Option<(Builtin, usize)> {
        use Builtin::*;
        Some(match (ns, name) {
            (None, "get") => (Get, 1),
            (None, "exists") => (Exists, 1),
            (None, "getAfter") => (GetAfter, 1),
            (None, "existsAfter") => (ExistsAfter, 1),
            (None, "value") => (Value, 1),
            (None, "string") => (String, 1),
            (None, "int") => (Int, 1),
            (None, "float") => (Float, 1),
            (None, "path") => (Path, 1),
            (None, "debug") => (Debug, 1),
            (Some("math"), "abs") => (MathAbs, 1),
            (Some("math"), "ceil") => (MathCeil, 1),
            (Some("math"), "floor") => (MathFloor, 1),
            (Some("math"), "round") => (MathRound, 1),
            (Some("math"), "sqrt") => (MathSqrt, 1),
            (Some("math"), "pow") => (MathPow, 2),
            (Some("math"), "isNaN") => (MathIsNaN, 1),
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

    /// The function's name as written (`math.abs`), for messages.
    pub(crate) fn name(self) -> &'static str {
        use Builtin::*;
        match self {
            Get => "get",
            Exists => "exists",
            GetAfter => "getAfter",
            ExistsAfter => "existsAfter",
            Value => "value",
            String => "string",
            Int => "int",
            Float => "float",
            Path => "path",
            Debug => "debug",
            MathAbs => "math.abs",
            MathCeil => "math.ceil",
            MathFloor => "math.floor",
            MathRound => "math.round",
            MathSqrt => "math.sqrt",
            MathPow => "math.pow",
            MathIsNaN => "math.isNaN",
            TimestampDate => "timestamp.date",
            TimestampValue => "timestamp.value",
            DurationValue => "duration.value",
            DurationTime => "duration.time",
            DurationAbs => "duration.abs",
            LatLngValue => "latlng.value",
            HashCrc32 => "hashing.crc32",
            HashCrc32c => "hashing.crc32c",
            HashMd5 => "hashing.md5",
            HashSha256 => "hashing.sha256",
        }
    }

    /// Pure builtins may be folded at compile time.
    pub(crate) fn is_pure(self) -> bool {
        !matches!(
            self,
            Builtin::Get
                | Builtin::Exists
                | Builtin::GetAfter
                | Builtin::ExistsAfter
                | Builtin::Value
                | Builtin::Debug
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) enum PathNode {
    Literal(String),
    Interp(Node),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// A constant, and how many expressions Firebase counts to evaluate what it was folded from.
    Const(Val<'static>, u32),
    /// A function parameter or `let` (index into the current frame).
    Local(u16),
    /// A match wildcard: its slot, then the slots of enclosing wildcards of the same name
    /// (used when the inner one is unbound, as a list's document id is).
    Wildcard(Box<[u16]>),
    Request,
    Resource,
    /// A name that is nothing in scope: Firebase compiles it (with a warning) and evaluating
    /// it is a null value error.
    Unknown(Arc<str>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Path(Vec<PathNode>),
    Member(Box<Node>, Arc<str>),
    Index(Box<Node>, Box<Node>),
    Slice(Box<Node>, Box<Node>, Box<Node>),
    Method(Box<Node>, Arc<str>, Vec<Node>),
    /// `s.matches(<constant>)` with the pattern compiled once.
    Matches(Box<Node>, Arc<regex::Regex>),
    Builtin(Builtin, Vec<Node>),
    Call(u32, Vec<Node>),
    /// A call that fails when evaluated without evaluating its arguments: an unknown function
    /// (a warning in Firebase), or a function of the file given the wrong number of arguments.
    BadCall(Arc<str>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Is(Box<Node>, TypeName),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// The types `is` can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeName {
    Bool,
    Int,
    Float,
    Number,
    String,
    List,
    Map,
    /// Nothing is a `set` to `is` (as the emulator measures it), nor a `vector`.
    Never,
    Timestamp,
    Duration,
    Path,
    LatLng,
    Bytes,
    MapDiff,
    Constraint,
}

impl TypeName {
    pub(crate) fn parse(s: &str) -> Option<TypeName> {
        Some(match s {
            "bool" => TypeName::Bool,
            "int" => TypeName::Int,
            "float" => TypeName::Float,
            "number" => TypeName::Number,
            "string" => TypeName::String,
            "list" => TypeName::List,
            "map" => TypeName::Map,
            "set" | "vector" => TypeName::Never,
            "timestamp" => TypeName::Timestamp,
            "duration" => TypeName::Duration,
            "path" => TypeName::Path,
            "latlng" => TypeName::LatLng,
            "bytes" => TypeName::Bytes,
            "map_diff" => TypeName::MapDiff,
            "constraint" => TypeName::Constraint,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
#[allow(dead_code)] // name and line are kept for traces and debugging output
pub(crate) struct FuncDef {
    pub name: String,
    pub params: usize,
    /// `let` expressions, evaluated in order when the function is called (slots
    /// `params..params+lets`); an error in one matters only if the function uses it.
    pub lets: Vec<Node>,
    pub body: Node,
    pub line: usize,
}

/// A method set an allow grants, as a bit mask over the five request methods.
#[derive(Debug, Clone)]
pub(crate) struct AllowDef {
    pub mask: u8,
    /// The methods as written (`read, write`), for traces.
    pub methods_text: Arc<str>,
    pub condition: Option<Node>,
    pub line: usize,
    /// Position among all allow statements, in source order.
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PatSeg {
    Literal(String),
    /// Captures into wildcard slot `n`.
    Single(u16),
    Rest(u16),
}

/// A small, fast hasher for the match tree's literal-segment index (the FxHash mix). SipHash's
/// flooding resistance buys nothing here: the keys come from the rules file, and a request
/// path only ever looks keys up.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SegHasher(u64);

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
pub(crate) type LiteralIndex = HashMap<String, Vec<usize>, BuildHasherDefault<SegHasher>>;

#[derive(Debug, Clone)]
pub(crate) struct MatchNode {
    pub pattern: Vec<PatSeg>,
    /// The full pattern as written, for traces.
    pub text: Arc<str>,
    pub line: usize,
    /// Wildcard slots bound along the chain of matches down to this one.
    pub slots: u16,
    pub allows: Vec<AllowDef>,
    /// Children whose pattern starts with a literal, by that literal.
    pub by_literal: LiteralIndex,
    /// Children whose pattern starts with a wildcard.
    pub wild: Vec<usize>,
}

/// A whole checked program.
#[derive(Debug, Clone)]
pub(crate) struct Program {
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
pub(crate) fn mask_of(m: AllowMethod) -> u8 {
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
