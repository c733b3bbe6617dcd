//! SQL: the ksqlDB dialect's parser, the binder that resolves names and types against the
//! catalog and lowers expressions to DataFusion, and the planner that turns queries into
//! plans the runtime executes. DataFusion is used only here and in `exec::expr`.

pub mod aggregate_plan;
pub mod aggregates;
pub mod ast;
pub mod binder;
pub mod compile;
mod expr_types;
pub mod functions;
mod in_predicate;
mod join_output;
pub mod join_plan;
mod lambda_bind;
mod overloads;
pub mod parser;
pub mod planner;
pub mod pull;
pub mod pull_rules;
pub mod pull_template;
pub mod split;
pub mod table_functions;
pub mod udf;

use ast::Pos;
pub use parser::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{}", render(.pos, .message, .hint))]
    Invalid { message: String, pos: Option<Pos>, hint: Option<String> },
    /// A `WITH` clause ksqlDB rejects while it builds the statement, before planning
    /// (reported there as a parse failure); worded like `Invalid`.
    #[error("{}", render(.pos, .message, .hint))]
    Properties { message: String, pos: Option<Pos>, hint: Option<String> },
    /// A column no source of the statement has. `clause` is where it was, once known:
    /// ksqlDB names it (`SELECT column 'X' cannot be resolved.`).
    #[error("{}", render(&Some(*.pos), &unknown_column(.name, *.clause), .hint))]
    UnknownColumn { name: String, clause: Option<&'static str>, pos: Pos, hint: Option<String> },
    /// A CAST between types that do not convert (in a SELECT list, ksqlDB's "Invalid Select").
    #[error("{}", render(&Some(*.pos), &unsupported_cast(.from, .to, *.in_select), .hint))]
    UnsupportedCast { from: String, to: String, in_select: bool, pos: Pos, hint: Option<String> },
    /// Expressions of an aggregating query that are neither grouped nor aggregated: one
    /// found in the SELECT list or HAVING clause, or (`listing`) all of the SELECT list's.
    #[error("{}", render(.pos, &not_aggregated(.expressions, *.in_having, *.listing), .hint))]
    NotAggregated { expressions: String, in_having: bool, listing: bool, pos: Option<Pos>, hint: Option<String> },
    /// An aggregate called with arguments it does not take (`SUM needs a numeric argument, ...`).
    #[error("{}", render(&Some(*.pos), &format!("{} {}", .function, .error), &None))]
    AggregateArguments {
        function: String,
        #[source]
        error: aggregates::AggArgumentError,
        pos: Pos,
    },
    /// DataFusion failed on an expression the binder accepted.
    #[error("internal error while planning: {0}; please report this together with the statement")]
    Internal(#[source] Box<datafusion::error::DataFusionError>),
    /// An expression or column of an Arrow type SQL has no name for.
    #[error("internal error while planning: {what} has unsupported type {ty}; please report this together with the statement")]
    UnsupportedArrowType { what: String, ty: arrow::datatypes::DataType },
    /// The planner was called on something it does not plan.
    #[error("internal error while planning: {0}; please report this together with the statement")]
    PlanInvariant(&'static str),
}

fn unknown_column(name: &str, clause: Option<&str>) -> String {
    match clause {
        None => format!("column '{name}' cannot be resolved"),
        Some(c @ "PARTITION BY") => {
            format!("{c} column '{name}' cannot be resolved. '{name}' must be a column in the source schema since PARTITION BY is applied on the input.")
        }
        Some(c) => format!("{c} column '{name}' cannot be resolved."),
    }
}

fn unsupported_cast(from: &str, to: &str, in_select: bool) -> String {
    let message = format!("Cast of {from} to {to} is not supported");
    if in_select { format!("Invalid Select: {message}") } else { message }
}

fn not_aggregated(expressions: &str, in_having: bool, listing: bool) -> String {
    let head = if in_having { "Non-aggregate HAVING expression not part of GROUP BY" } else { "Non-aggregate SELECT expression(s) not part of GROUP BY" };
    if listing {
        format!("{head}: {expressions}\nEither add the column(s) to the GROUP BY or remove them from the SELECT.")
    } else {
        format!("{head}: {expressions}")
    }
}

/// `A`, `A and B`, `A, B and C` (or with `or`), as ksqlDB lists names in messages.
pub fn listing(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

fn render(pos: &Option<Pos>, message: &str, hint: &Option<String>) -> String {
    let mut s = match pos {
        Some(p) => format!("{p}: {message}"),
        None => message.to_string(),
    };
    if let Some(h) = hint {
        // Messages that quote ksqlDB's text may end with their own full stop.
        if !s.ends_with('.') {
            s.push('.');
        }
        s.push_str(" Hint: ");
        s.push_str(h);
    }
    s
}

impl SqlError {
    pub fn at(pos: Pos, message: impl Into<String>, hint: Option<String>) -> SqlError {
        SqlError::Invalid { message: message.into(), pos: Some(pos), hint }
    }

    pub fn invalid(message: impl Into<String>, hint: Option<String>) -> SqlError {
        SqlError::Invalid { message: message.into(), pos: None, hint }
    }

    /// The error placed at `pos` when it has no position yet.
    pub fn with_pos(self, at: Pos) -> SqlError {
        match self {
            SqlError::Invalid { message, pos: None, hint } => SqlError::Invalid { message, pos: Some(at), hint },
            SqlError::Properties { message, pos: None, hint } => SqlError::Properties { message, pos: Some(at), hint },
            SqlError::NotAggregated { expressions, in_having, listing, pos: None, hint } => {
                SqlError::NotAggregated { expressions, in_having, listing, pos: Some(at), hint }
            }
            other => other,
        }
    }

    /// The same error, as one of a statement's `WITH` clause (see `Properties`).
    pub fn in_properties(self) -> SqlError {
        match self {
            SqlError::Invalid { message, pos, hint } => SqlError::Properties { message, pos, hint },
            other => other,
        }
    }

    pub fn internal(e: datafusion::error::DataFusionError) -> SqlError {
        SqlError::Internal(Box::new(e))
    }

    /// The message without position or hint.
    pub fn message(&self) -> String {
        match self {
            SqlError::Parse(p) => p.message.clone(),
            SqlError::Invalid { message, .. } | SqlError::Properties { message, .. } => message.clone(),
            SqlError::UnknownColumn { name, clause, .. } => unknown_column(name, *clause),
            SqlError::UnsupportedCast { from, to, in_select, .. } => unsupported_cast(from, to, *in_select),
            SqlError::NotAggregated { expressions, in_having, listing, .. } => not_aggregated(expressions, *in_having, *listing),
            SqlError::AggregateArguments { function, error, .. } => format!("{function} {error}"),
            SqlError::Internal(e) => e.to_string(),
            SqlError::UnsupportedArrowType { what, ty } => format!("{what} has unsupported type {ty}"),
            SqlError::PlanInvariant(m) => m.to_string(),
        }
    }

    pub fn pos(&self) -> Option<Pos> {
        match self {
            SqlError::Parse(p) => Some(p.pos),
            SqlError::Invalid { pos, .. } | SqlError::Properties { pos, .. } | SqlError::NotAggregated { pos, .. } => *pos,
            SqlError::UnknownColumn { pos, .. } | SqlError::UnsupportedCast { pos, .. } | SqlError::AggregateArguments { pos, .. } => Some(*pos),
            SqlError::Internal(_) | SqlError::UnsupportedArrowType { .. } | SqlError::PlanInvariant(_) => None,
        }
    }
}
