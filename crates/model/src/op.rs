//! The query filter operators, with their one spelling table (Firestore's client SDK
//! spellings). Shared by the store, which executes filters, and the rules, which must prove a
//! query's possible results from them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    ArrayContains,
    ArrayContainsAny,
}

impl Op {
    /// Parses the operator spellings of the HTTP API (Firestore's client SDK spellings).
    pub fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "in" => Op::In,
            "not-in" => Op::NotIn,
            "array-contains" => Op::ArrayContains,
            "array-contains-any" => Op::ArrayContainsAny,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not-in",
            Op::ArrayContains => "array-contains",
            Op::ArrayContainsAny => "array-contains-any",
        }
    }
}
