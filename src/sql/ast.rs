//! The syntax tree of ksqlDB statements and expressions, with source positions.

use std::fmt;

use crate::catalog::types::SqlType;

/// A position in the statement text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Line: {}, Col: {}", self.line, self.column)
    }
}

/// A name as written: unquoted names are upper-cased, quoted ones kept as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub value: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Boolean(bool),
    /// An integer literal as written (INT when it fits, else BIGINT).
    Integer(i64),
    /// A decimal literal as written, e.g. `1000.0` (DECIMAL with the written precision).
    Decimal(String),
    /// A literal in scientific notation (DOUBLE).
    Double(f64),
    String(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Plus,
    Minus,
    Multiply,
    Divide,
    Modulo,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

impl BinaryOp {
    /// `+`, `-`, `*`, `/`, `%`.
    pub fn is_arithmetic(self) -> bool {
        matches!(self, BinaryOp::Plus | BinaryOp::Minus | BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Modulo)
    }

    /// `=`, `<>`, `<`, `<=`, `>`, `>=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq)
    }

    /// ksqlDB's name of a comparison in messages (`EQUAL`, `LESS_THAN` ...).
    pub fn ksql_name(self) -> &'static str {
        match self {
            BinaryOp::Eq => "EQUAL",
            BinaryOp::NotEq => "NOT_EQUAL",
            BinaryOp::Lt => "LESS_THAN",
            BinaryOp::LtEq => "LESS_THAN_OR_EQUAL",
            BinaryOp::Gt => "GREATER_THAN",
            BinaryOp::GtEq => "GREATER_THAN_OR_EQUAL",
            other => other.symbol(),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Concat => "||",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Minus,
    Plus,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
    /// Levels of the tree below and including this node (a leaf is 1); the parser refuses
    /// trees deeper than [`MAX_EXPRESSION_DEPTH`], so every recursive pass over an
    /// expression (binder, planner, compiler, evaluator) has a bounded depth.
    pub depth: u32,
}

/// How deep an expression tree may nest. PostgreSQL bounds the same with
/// `max_stack_depth`; a fixed depth makes the bound independent of the thread a statement
/// is planned or evaluated on.
pub const MAX_EXPRESSION_DEPTH: u32 = 256;

/// Stack of every thread that parses, plans or evaluates statements (the server's runtime
/// workers and blocking pools, the HTTP threads): enough for a statement at
/// [`MAX_EXPRESSION_DEPTH`] to go through every pass, parser to evaluator, in a debug build
/// with room to spare (a debug build's parser takes about 8 KiB of stack per nested
/// parenthesis). Only touched pages take memory.
pub const STATEMENT_THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `[qualifier.]name`
    Column {
        qualifier: Option<String>,
        name: String,
    },
    Literal(Literal),
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `name(args)`; `COUNT(*)` has `star`.
    Function {
        name: String,
        args: Vec<Expr>,
        distinct: bool,
        star: bool,
    },
    Cast {
        expr: Box<Expr>,
        ty: SqlType,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        else_: Option<Box<Expr>>,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    IsDistinctFrom {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    /// `array[i]` (1-based, negative from the end) or `map[key]`.
    Subscript {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `struct->field`
    Dereference {
        expr: Box<Expr>,
        field: String,
    },
    Array(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Struct(Vec<(String, Expr)>),
    /// `(x, y) => body`
    Lambda {
        params: Vec<String>,
        body: Box<Expr>,
    },
}

impl ExprKind {
    /// The depth of the deepest direct child (0 for a leaf).
    fn child_depth(&self) -> u32 {
        let d = |e: &Expr| e.depth;
        let most = |it: &mut dyn Iterator<Item = u32>| it.max().unwrap_or(0);
        match self {
            ExprKind::Column { .. } | ExprKind::Literal(_) => 0,
            ExprKind::Unary { expr, .. } | ExprKind::Cast { expr, .. } | ExprKind::IsNull { expr, .. } | ExprKind::Dereference { expr, .. } => expr.depth,
            ExprKind::Lambda { body, .. } => body.depth,
            ExprKind::Binary { left, right, .. } | ExprKind::IsDistinctFrom { left, right, .. } => left.depth.max(right.depth),
            ExprKind::Subscript { expr, index } => expr.depth.max(index.depth),
            ExprKind::Like { expr, pattern, .. } => expr.depth.max(pattern.depth),
            ExprKind::Between { expr, low, high, .. } => expr.depth.max(low.depth).max(high.depth),
            ExprKind::Function { args, .. } | ExprKind::Array(args) => most(&mut args.iter().map(d)),
            ExprKind::InList { expr, list, .. } => expr.depth.max(most(&mut list.iter().map(d))),
            ExprKind::Case { operand, whens, else_ } => operand
                .iter()
                .map(|e| e.depth)
                .chain(else_.iter().map(|e| e.depth))
                .chain(whens.iter().flat_map(|(w, t)| [w.depth, t.depth]))
                .max()
                .unwrap_or(0),
            ExprKind::Map(entries) => most(&mut entries.iter().flat_map(|(k, v)| [k.depth, v.depth])),
            ExprKind::Struct(fields) => most(&mut fields.iter().map(|(_, v)| v.depth)),
        }
    }
}

impl Expr {
    pub fn new(kind: ExprKind, pos: Pos) -> Expr {
        let depth = 1 + kind.child_depth();
        Expr { kind, pos, depth }
    }

    /// Rebuilds the expression with `f` applied to each direct child.
    pub fn map_children<E>(&self, f: &mut impl FnMut(&Expr) -> Result<Expr, E>) -> Result<Expr, E> {
        let b = |e: &Expr, f: &mut dyn FnMut(&Expr) -> Result<Expr, E>| f(e).map(Box::new);
        let kind = match &self.kind {
            ExprKind::Column { .. } | ExprKind::Literal(_) => self.kind.clone(),
            ExprKind::Unary { op, expr } => ExprKind::Unary { op: *op, expr: b(expr, f)? },
            ExprKind::Binary { op, left, right } => ExprKind::Binary { op: *op, left: b(left, f)?, right: b(right, f)? },
            ExprKind::Function { name, args, distinct, star } => {
                ExprKind::Function { name: name.clone(), args: args.iter().map(&mut *f).collect::<Result<_, _>>()?, distinct: *distinct, star: *star }
            }
            ExprKind::Cast { expr, ty } => ExprKind::Cast { expr: b(expr, f)?, ty: ty.clone() },
            ExprKind::Case { operand, whens, else_ } => ExprKind::Case {
                operand: operand.as_ref().map(|o| b(o, f)).transpose()?,
                whens: whens.iter().map(|(w, t)| Ok((f(w)?, f(t)?))).collect::<Result<_, E>>()?,
                else_: else_.as_ref().map(|e| b(e, f)).transpose()?,
            },
            ExprKind::Like { expr, pattern, escape, negated } => {
                ExprKind::Like { expr: b(expr, f)?, pattern: b(pattern, f)?, escape: *escape, negated: *negated }
            }
            ExprKind::Between { expr, low, high, negated } => ExprKind::Between { expr: b(expr, f)?, low: b(low, f)?, high: b(high, f)?, negated: *negated },
            ExprKind::InList { expr, list, negated } => {
                ExprKind::InList { expr: b(expr, f)?, list: list.iter().map(&mut *f).collect::<Result<_, _>>()?, negated: *negated }
            }
            ExprKind::IsNull { expr, negated } => ExprKind::IsNull { expr: b(expr, f)?, negated: *negated },
            ExprKind::IsDistinctFrom { left, right, negated } => ExprKind::IsDistinctFrom { left: b(left, f)?, right: b(right, f)?, negated: *negated },
            ExprKind::Subscript { expr, index } => ExprKind::Subscript { expr: b(expr, f)?, index: b(index, f)? },
            ExprKind::Dereference { expr, field } => ExprKind::Dereference { expr: b(expr, f)?, field: field.clone() },
            ExprKind::Array(items) => ExprKind::Array(items.iter().map(&mut *f).collect::<Result<_, _>>()?),
            ExprKind::Map(entries) => ExprKind::Map(entries.iter().map(|(k, v)| Ok((f(k)?, f(v)?))).collect::<Result<_, E>>()?),
            ExprKind::Struct(fields) => ExprKind::Struct(fields.iter().map(|(n, v)| Ok((n.clone(), f(v)?))).collect::<Result<_, E>>()?),
            ExprKind::Lambda { params, body } => ExprKind::Lambda { params: params.clone(), body: b(body, f)? },
        };
        Ok(Expr::new(kind, self.pos))
    }

    /// The same expression with every position cleared, for structural comparison.
    pub fn without_positions(&self) -> Expr {
        let mut e = self.map_children::<std::convert::Infallible>(&mut |c| Ok(c.without_positions())).unwrap_or_else(|never| match never {});
        e.pos = Pos::default();
        e
    }

    /// The first `Some` that `f` gives for this expression or a sub-expression (pre-order).
    pub fn find_map<T>(&self, f: &mut dyn FnMut(&Expr) -> Option<T>) -> Option<T> {
        if let Some(t) = f(self) {
            return Some(t);
        }
        let mut found = None;
        let _ = self.map_children::<()>(&mut |c| {
            if found.is_none() {
                found = c.find_map(f);
            }
            Ok(c.clone())
        });
        found
    }

    /// Whether two expressions are the same ignoring positions.
    pub fn same_as(&self, other: &Expr) -> bool {
        self.without_positions() == other.without_positions()
    }
}

/// SQL text of an expression, for messages (`L.A`, `ABS(R.A)`, `(X + 1)`).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[Expr]| items.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
        match &self.kind {
            ExprKind::Column { qualifier: Some(q), name } => write!(f, "{q}.{name}"),
            ExprKind::Column { qualifier: None, name } => write!(f, "{name}"),
            ExprKind::Literal(Literal::Null) => write!(f, "null"),
            ExprKind::Literal(Literal::Boolean(b)) => {
                write!(f, "{}", if *b { "true" } else { "false" })
            }
            ExprKind::Literal(Literal::Integer(i)) => write!(f, "{i}"),
            ExprKind::Literal(Literal::Decimal(d)) => write!(f, "{d}"),
            ExprKind::Literal(Literal::Double(d)) => write!(f, "{d:E}"),
            ExprKind::Literal(Literal::String(s)) => write!(f, "'{}'", s.replace('\'', "''")),
            ExprKind::Unary { op, expr } => match op {
                UnaryOp::Not => write!(f, "(NOT {expr})"),
                UnaryOp::Minus => write!(f, "-{expr}"),
                UnaryOp::Plus => write!(f, "+{expr}"),
            },
            ExprKind::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            ExprKind::Function { name, star: true, .. } => write!(f, "{name}(*)"),
            ExprKind::Function { name, args, distinct, .. } => write!(f, "{name}({}{})", if *distinct { "DISTINCT " } else { "" }, list(args)),
            ExprKind::Cast { expr, ty } => write!(f, "CAST({expr} AS {ty})"),
            ExprKind::IsNull { expr, negated } => {
                write!(f, "({expr} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            ExprKind::Subscript { expr, index } => write!(f, "{expr}[{index}]"),
            ExprKind::Dereference { expr, field } => write!(f, "{expr}->{field}"),
            ExprKind::Array(items) => write!(f, "ARRAY[{}]", list(items)),
            ExprKind::Map(entries) => write!(f, "MAP({})", entries.iter().map(|(k, v)| format!("{k}:={v}")).collect::<Vec<_>>().join(", ")),
            ExprKind::Struct(fields) => write!(f, "STRUCT({})", fields.iter().map(|(n, v)| format!("{n}:={v}")).collect::<Vec<_>>().join(", ")),
            ExprKind::InList { expr, list: items, negated } => write!(f, "({expr} {}IN ({}))", if *negated { "NOT " } else { "" }, list(items)),
            ExprKind::Between { expr, low, high, negated } => write!(f, "({expr} {}BETWEEN {low} AND {high})", if *negated { "NOT " } else { "" }),
            ExprKind::Like { expr, pattern, negated, .. } => write!(f, "({expr} {}LIKE {pattern})", if *negated { "NOT " } else { "" }),
            _ => write!(f, "the expression at {}", self.pos),
        }
    }
}

/// A duration such as `1 HOUR`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub millis: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WindowSpec {
    Tumbling { size: Duration, retention: Option<Duration>, grace: Option<Duration> },
    Hopping { size: Duration, advance: Duration, retention: Option<Duration>, grace: Option<Duration> },
    Session { gap: Duration, retention: Option<Duration>, grace: Option<Duration> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*` or `alias.*`
    Wildcard {
        qualifier: Option<String>,
        pos: Pos,
    },
    Expr {
        expr: Expr,
        alias: Option<Ident>,
    },
    /// `expr->*`: every field of a STRUCT, each a column named by its field.
    StructFields {
        expr: Expr,
        pos: Pos,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinWithin {
    pub before: Duration,
    pub after: Duration,
    pub grace: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    Source { name: Ident, alias: Option<Ident> },
    Join { left: Box<Relation>, right: Box<Relation>, kind: JoinKind, on: Expr, within: Option<JoinWithin> },
}

impl Relation {
    /// The FROM clause as SQL that parses back to this relation: names quoted with
    /// back-quotes (so their case is kept), durations in milliseconds.
    pub fn to_sql(&self) -> String {
        let q = |s: &str| crate::catalog::types::quote_ident(s);
        match self {
            Relation::Source { name, alias } => match alias {
                Some(a) => format!("{} {}", q(&name.value), q(&a.value)),
                None => q(&name.value),
            },
            Relation::Join { left, right, kind, on, within } => {
                let kind = match kind {
                    JoinKind::Inner => "INNER",
                    JoinKind::Left => "LEFT OUTER",
                    JoinKind::Right => "RIGHT OUTER",
                    JoinKind::Full => "FULL OUTER",
                };
                let within = match within {
                    None => String::new(),
                    Some(w) => {
                        let grace = w.grace.map(|g| format!(" GRACE PERIOD {} MILLISECONDS", g.millis)).unwrap_or_default();
                        format!(" WITHIN ({} MILLISECONDS, {} MILLISECONDS){grace}", w.before.millis, w.after.millis)
                    }
                };
                format!("{} {kind} JOIN {}{within} ON {}", left.to_sql(), right.to_sql(), quoted_columns(on))
            }
        }
    }
}

/// An expression whose column references are back-quoted (for SQL that is parsed again).
fn quoted_columns(e: &Expr) -> Expr {
    let q = |s: &str| crate::catalog::types::quote_ident(s);
    match &e.kind {
        ExprKind::Column { qualifier, name } => Expr::new(ExprKind::Column { qualifier: qualifier.as_deref().map(q), name: q(name) }, e.pos),
        _ => e.map_children::<std::convert::Infallible>(&mut |c| Ok(quoted_columns(c))).unwrap_or_else(|never| match never {}),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: Relation,
    pub window: Option<WindowSpec>,
    pub where_: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub partition_by: Vec<Expr>,
    /// `ORDER BY expr [ASC|DESC], ...` (pull queries); true = ascending.
    pub order_by: Vec<(Expr, bool)>,
    pub emit: Option<Emit>,
    pub limit: Option<u64>,
    pub pos: Pos,
}

impl Query {
    /// `SELECT select FROM from` with no other clause.
    pub fn new(select: Vec<SelectItem>, from: Relation, pos: Pos) -> Query {
        Query {
            select,
            from,
            window: None,
            where_: None,
            group_by: Vec::new(),
            having: None,
            partition_by: Vec::new(),
            order_by: Vec::new(),
            emit: None,
            limit: None,
            pos,
        }
    }
}

pub use crate::catalog::SourceKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnConstraint {
    None,
    Key,
    PrimaryKey,
    Headers,
    Header,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub ty: SqlType,
    pub constraint: ColumnConstraint,
    /// For `HEADER('key')` columns.
    pub header_key: Option<String>,
}

/// A `WITH (...)` property value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    String(String),
    Number(String),
    Boolean(bool),
}

impl PropValue {
    pub fn as_text(&self) -> String {
        match self {
            PropValue::String(s) | PropValue::Number(s) => s.clone(),
            PropValue::Boolean(b) => b.to_string(),
        }
    }
}

/// `WITH (...)` properties, names upper-cased, in written order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Props(pub Vec<(String, PropValue, Pos)>);

impl Props {
    pub fn get(&self, name: &str) -> Option<&PropValue> {
        self.0.iter().find(|(n, _, _)| n == name).map(|(_, v, _)| v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShowKind {
    Streams,
    Tables,
    Queries,
    Topics,
    Properties,
    Functions,
    Types,
    Variables,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateSource {
        kind: SourceKind,
        name: Ident,
        or_replace: bool,
        if_not_exists: bool,
        /// `CREATE SOURCE STREAM/TABLE`: read-only.
        read_only: bool,
        columns: Vec<ColumnDef>,
        props: Props,
    },
    CreateAsSelect {
        kind: SourceKind,
        name: Ident,
        or_replace: bool,
        if_not_exists: bool,
        props: Props,
        query: Query,
    },
    InsertValues {
        target: Ident,
        columns: Option<Vec<Ident>>,
        values: Vec<Expr>,
    },
    InsertSelect {
        target: Ident,
        props: Props,
        query: Query,
    },
    Select(Query),
    Show {
        kind: ShowKind,
        extended: bool,
    },
    Describe {
        name: Ident,
        extended: bool,
    },
    DescribeFunction {
        name: Ident,
    },
    DescribeAll {
        kind: SourceKind,
        extended: bool,
    },
    ExplainQueryId(Ident),
    ExplainStatement(Box<Statement>),
    Terminate {
        query_id: Option<Ident>,
    },
    Drop {
        kind: SourceKind,
        name: Ident,
        if_exists: bool,
        delete_topic: bool,
    },
    /// `CREATE TYPE name AS type`: a name for a type, usable wherever a type is.
    CreateType {
        name: Ident,
        ty: SqlType,
        if_not_exists: bool,
    },
    DropType {
        name: Ident,
        if_exists: bool,
    },
    /// `ALTER STREAM/TABLE name ADD COLUMN c type, ...`.
    Alter {
        kind: SourceKind,
        name: Ident,
        add_columns: Vec<(Ident, SqlType)>,
    },
    Print {
        topic: Ident,
        from_beginning: bool,
        interval: Option<u64>,
        limit: Option<u64>,
    },
    Set {
        name: String,
        value: String,
    },
    Unset {
        name: String,
    },
    Define {
        name: String,
        value: String,
    },
    Undefine {
        name: String,
    },
    /// `PAUSE query_id | ALL` (`query_id: None` for ALL).
    Pause {
        query_id: Option<Ident>,
    },
    /// `RESUME query_id | ALL`.
    Resume {
        query_id: Option<Ident>,
    },
    /// `ALTER SYSTEM 'name' = 'value'`: a server-wide default for every later statement.
    AlterSystem {
        name: String,
        value: String,
    },
    /// `ASSERT [NOT EXISTS] TOPIC name [WITH (...)] [TIMEOUT n unit]`.
    AssertTopic {
        topic: Ident,
        exists: bool,
        props: Props,
        timeout: Option<Duration>,
    },
    /// `ASSERT [NOT EXISTS] SCHEMA [SUBJECT 'name'] [ID n] [TIMEOUT n unit]`.
    AssertSchema {
        subject: Option<String>,
        id: Option<u64>,
        exists: bool,
        timeout: Option<Duration>,
    },
    /// `CREATE/DROP/DESCRIBE/SHOW CONNECTOR(S)`: recognised so the answer can say that
    /// Eddy runs no connectors; `action` is how the statement starts.
    Connector {
        action: &'static str,
    },
}

/// A parsed statement with its text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    /// The statement as written, including the terminating `;`.
    pub text: String,
}
