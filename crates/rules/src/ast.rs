//! The syntax tree the parser produces: a faithful, unresolved picture of the source with spans.
//!
//! Nothing here is checked: names are strings, calls are not yet told apart from methods, and
//! limits are not enforced. `check`/`compile` turn it into the program the evaluator runs.

use crate::lexer::Span;

/// A whole rules file.
#[derive(Debug, Clone, Default)]
pub struct File {
    /// `rules_version = '…'` if present (`None` means version 1).
    pub version: Option<String>,
    pub services: Vec<Service>,
}

/// `service cloud.firestore { … }`.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub span: Span,
    pub body: Block,
}

/// The contents of a service or match body.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub matches: Vec<Match>,
    pub allows: Vec<Allow>,
    pub functions: Vec<Function>,
}

/// One segment of a `match` pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment, bound as a string.
    Single(String),
    /// `{name=**}`: a run of segments, bound as a path.
    Rest(String),
}

#[derive(Debug, Clone)]
pub struct Match {
    pub segments: Vec<Segment>,
    pub span: Span,
    pub body: Block,
}

/// A method named in an `allow` statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowMethod {
    Read,
    Write,
    Get,
    List,
    Create,
    Update,
    Delete,
}

impl AllowMethod {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "read" => AllowMethod::Read,
            "write" => AllowMethod::Write,
            "get" => AllowMethod::Get,
            "list" => AllowMethod::List,
            "create" => AllowMethod::Create,
            "update" => AllowMethod::Update,
            "delete" => AllowMethod::Delete,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AllowMethod::Read => "read",
            AllowMethod::Write => "write",
            AllowMethod::Get => "get",
            AllowMethod::List => "list",
            AllowMethod::Create => "create",
            AllowMethod::Update => "update",
            AllowMethod::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Allow {
    pub methods: Vec<AllowMethod>,
    /// `None` for a bare `allow read;`, which always grants.
    pub condition: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub params: Vec<(String, Span)>,
    pub lets: Vec<(String, Expr, Span)>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// One piece of a path literal.
#[derive(Debug, Clone)]
pub enum PathPart {
    Literal(String),
    Interp(Expr),
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of this tree (a leaf is 1); the parser keeps it within its nesting limit so that
    /// later recursive passes cannot overflow the stack.
    pub depth: u32,
}

impl Expr {
    /// Builds a node, computing its height from its children.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let child = |e: &Expr| e.depth;
        let below = match &kind {
            ExprKind::List(items) => items.iter().map(child).max().unwrap_or(0),
            ExprKind::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.depth.max(v.depth))
                .max()
                .unwrap_or(0),
            ExprKind::Path(parts) => parts
                .iter()
                .map(|p| match p {
                    PathPart::Interp(e) => e.depth,
                    PathPart::Literal(_) => 0,
                })
                .max()
                .unwrap_or(0),
            ExprKind::Member(e, _) | ExprKind::Unary(_, e) | ExprKind::Is(e, _) => e.depth,
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => a.depth.max(b.depth),
            ExprKind::Slice(a, b, c) => a
                .depth
                .max(b.as_ref().map_or(0, |e| e.depth))
                .max(c.as_ref().map_or(0, |e| e.depth)),
            ExprKind::Call(f, args) => args.iter().map(child).max().unwrap_or(0).max(f.depth),
            ExprKind::Cond(a, b, c) => a.depth.max(b.depth).max(c.depth),
            _ => 0,
        };
        Expr {
            kind,
            span,
            depth: below + 1,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Path(Vec<PathPart>),
    Ident(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `f(args)` or `recv.m(args)`: the callee is an `Ident` or a `Member`.
    Call(Box<Expr>, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, String),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Stands in for an expression that failed to parse (an error was already reported).
    Invalid,
}
