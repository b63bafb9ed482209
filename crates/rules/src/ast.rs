//! The syntax tree the parser produces: a faithful, unresolved picture of the source with spans.
//!
//! Nothing here is resolved: names are strings and calls are only told apart by their form
//! (`f()`, `ns.f()`, `x.m()`). The parser has enforced the grammar and its nesting limits;
//! `check`/`compile` resolve names and turn the tree into the program the evaluator runs.

use crate::lexer::Span;

/// A whole rules file.
#[derive(Debug, Clone, Default)]
pub struct File {
    /// `rules_version = '…'` if present (`None` means version 1), and where it was written.
    pub version: Option<(String, Span)>,
    /// Functions declared outside any service: visible to every service.
    pub functions: Vec<Function>,
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
    /// Each segment with its span (for `{name}` the name's).
    pub segments: Vec<(Segment, Span)>,
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
    /// The methods named that exist.
    pub methods: Vec<AllowMethod>,
    /// Names that are no method (a warning in Firebase; they allow nothing).
    pub unknown_methods: Vec<(String, Span)>,
    /// `None` for a bare `allow read;`, which always grants.
    pub condition: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub name_span: Span,
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
    /// A literal segment, as written (URL-decoded when evaluated).
    Literal(String),
    Interp(Expr),
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Nesting level below this node as Firebase counts it for "Expression is too complex"
    /// (operands, arguments, list and map items, `$( )` parts and parentheses count one level;
    /// the object of a member, index or method call does not).
    pub level: u32,
    /// Height of the tree counting every node (a leaf is 1).
    pub height: u32,
    /// Parentheses written around this expression.
    pub parens: u32,
}

impl Expr {
    /// Builds a node, computing its level and height from its children.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let mut level = 0u32;
        let mut height = 0u32;
        let mut see = |e: &Expr, counts: bool| {
            level = level.max(e.level + u32::from(counts));
            height = height.max(e.height);
        };
        match &kind {
            ExprKind::List(items) | ExprKind::Call(_, items) | ExprKind::NsCall(_, _, items) => {
                items.iter().for_each(|e| see(e, true));
            }
            ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                see(k, true);
                see(v, true);
            }),
            ExprKind::Path(parts) => parts.iter().for_each(|p| {
                if let PathPart::Interp(e) = p {
                    see(e, true);
                }
            }),
            ExprKind::Member(e, _) => see(e, false),
            ExprKind::Index(a, b) => {
                see(a, false);
                see(b, true);
            }
            ExprKind::Slice(a, b, c) => {
                see(a, false);
                see(b, true);
                see(c, true);
            }
            ExprKind::Method(r, _, args) => {
                see(r, false);
                args.iter().for_each(|e| see(e, true));
            }
            // `-(x)`: the first parenthesis under a negation does not count.
            ExprKind::Unary(UnOp::Neg, e) => {
                level = level.max(e.level + 1 - u32::from(e.parens > 0));
                height = height.max(e.height);
            }
            ExprKind::Unary(UnOp::Not, e) | ExprKind::Is(e, _) => see(e, true),
            ExprKind::Binary(_, a, b) => {
                see(a, true);
                see(b, true);
            }
            ExprKind::Cond(a, b, c) => {
                see(a, true);
                see(b, true);
                see(c, true);
            }
            _ => {}
        }
        Expr {
            kind,
            span,
            level,
            height: height + 1,
            parens: 0,
        }
    }

    /// Records one pair of parentheses around this expression.
    pub fn parenthesize(&mut self) {
        self.parens += 1;
        self.level += 1;
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
    /// `a[i:j]`: both bounds are written (either may evaluate to null).
    Slice(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `f(args)`: a function of the rules file or a global built-in.
    Call(String, Vec<Expr>),
    /// `math.abs(x)`: a function of a namespace (`math`, `duration`, `timestamp`, `latlng`,
    /// `hashing`).
    NsCall(String, String, Vec<Expr>),
    /// `recv.m(args)`.
    Method(Box<Expr>, String, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, String),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Stands in for an expression that failed to parse (an error was already reported).
    Invalid,
}
