//! Parser for ksqlDB's SQL dialect, on `sqlparser`'s tokenizer.
//!
//! Unquoted identifiers are upper-cased (ksqlDB's rule); back-quoted or double-quoted ones
//! keep their case. Errors carry the line and column of the offending token and a hint.
//! This file holds the entry points and the token-level helpers; `statements`, `query`,
//! `types` and `expressions` parse the grammar's parts.

use std::collections::BTreeMap;
use std::fmt;

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::ast::*;
use crate::catalog::types::SqlType;

mod control;
mod expressions;
mod query;
mod statements;
mod types;

/// Tokenizer settings for ksqlDB: back-quoted and double-quoted identifiers.
#[derive(Debug, Default)]
pub struct KsqlDialect;

impl Dialect for KsqlDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_' || ch == '@'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// A syntax error; otherwise a statement that parses but cannot be prepared (a
    /// numeric literal out of range).
    pub syntax: bool,
    pub message: String,
    pub pos: Pos,
    pub hint: Option<String>,
    /// The text of the statement the error is in, when known.
    pub statement: Option<String>,
}

/// Laid out as ksqlDB's parser reports errors: the position, `Syntax Error` (or, for a
/// statement that parses but cannot be prepared, `Failed to prepare statement` first), the problem
/// and the statement, each on its own line; then Eddy's hint.
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.syntax {
            true => write!(f, "line {}:{}: Syntax Error\n{}", self.pos.line, self.pos.column, self.message)?,
            false => write!(f, "Failed to prepare statement: line {}:{}: {}", self.pos.line, self.pos.column, self.message)?,
        }
        if let Some(s) = &self.statement {
            write!(f, "\nStatement: {s}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nHint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

type PResult<T> = Result<T, ParseError>;

/// Words that end an expression or clause and so cannot be implicit aliases.
const RESERVED: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "HAVING",
    "WINDOW",
    "PARTITION",
    "EMIT",
    "LIMIT",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "ON",
    "WITHIN",
    "AS",
    "AND",
    "OR",
    "NOT",
    "BY",
    "IS",
    "IN",
    "LIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "VALUES",
    "INTO",
    "GRACE",
    "CHANGES",
    "FINAL",
    "ORDER",
    "ASC",
    "DESC",
];

/// Parses one or more `;`-terminated statements.
pub fn parse(sql: &str) -> PResult<Vec<ParsedStatement>> {
    parse_with_types(sql, &BTreeMap::new())
}

/// Parses statements that may use the custom types `types` (CREATE TYPE); a CREATE TYPE
/// or DROP TYPE in the script applies to the statements after it.
pub fn parse_with_types(sql: &str, types: &BTreeMap<String, SqlType>) -> PResult<Vec<ParsedStatement>> {
    let mut p = Parser::new(sql)?;
    p.types = types.clone();
    let mut out = Vec::new();
    loop {
        while p.eat(&Token::SemiColon) {}
        if p.at_eof() {
            break;
        }
        let (start, first) = (p.offset_of(p.i), p.i);
        let statement = p.statement().map_err(|mut e| {
            e.statement = Some(p.statement_text(first));
            e
        })?;
        let end = if p.peek() == &Token::SemiColon {
            let end = p.end_offset_of(p.i);
            p.i += 1;
            end
        } else if p.at_eof() {
            sql.len()
        } else {
            return Err(p.error_here("expected ';' at the end of the statement", Some("separate statements with ';'")));
        };
        let text = sql.get(start..end).unwrap_or(sql).trim().to_string();
        match &statement {
            Statement::CreateType { name, ty, .. } => {
                p.types.entry(name.value.clone()).or_insert_with(|| ty.clone());
            }
            Statement::DropType { name, .. } => {
                p.types.remove(&name.value);
            }
            _ => {}
        }
        out.push(ParsedStatement { statement, text });
    }
    Ok(out)
}

/// The stream or table a `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name`
/// statement creates, read from its first words only, so it works for statements that no
/// longer parse as a whole.
pub fn created_source_name(sql: &str) -> Option<String> {
    let tokens = Tokenizer::new(&KsqlDialect, sql).tokenize().ok()?;
    let mut words = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_)));
    let kw = |t: &Token, k: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let mut t = words.next()?;
    if !kw(&t, "CREATE") {
        return None;
    }
    t = words.next()?;
    if kw(&t, "OR") {
        words.next().filter(|r| kw(r, "REPLACE"))?;
        t = words.next()?;
    }
    if kw(&t, "SOURCE") {
        t = words.next()?;
    }
    if !(kw(&t, "STREAM") || kw(&t, "TABLE")) {
        return None;
    }
    t = words.next()?;
    if kw(&t, "IF") {
        words.next().filter(|n| kw(n, "NOT"))?;
        words.next().filter(|e| kw(e, "EXISTS"))?;
        t = words.next()?;
    }
    match t {
        Token::Word(w) if w.quote_style.is_some() => Some(w.value),
        Token::Word(w) => Some(w.value.to_uppercase()),
        _ => None,
    }
}

/// Parses a single expression (used by tests and tools).
pub fn parse_expression(sql: &str) -> PResult<Expr> {
    let mut p = Parser::new(sql)?;
    let e = p.expr()?;
    if !p.at_eof() {
        return Err(p.error_here("unexpected input after the expression", None));
    }
    Ok(e)
}

struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    i: usize,
    line_starts: Vec<usize>,
    /// Types named by CREATE TYPE: the catalog's, and those the script itself creates.
    types: BTreeMap<String, SqlType>,
    /// How many nested expressions and types the parser is inside now.
    nesting: u32,
}

fn pos_of(t: &TokenWithSpan) -> Pos {
    Pos { line: t.span.start.line, column: t.span.start.column }
}

fn describe(t: &Token) -> String {
    match t {
        Token::EOF => "end of input".to_string(),
        Token::Word(w) if w.quote_style.is_some() => format!("identifier `{}`", w.value),
        Token::Word(w) => format!("'{}'", w.value),
        Token::SingleQuotedString(s) => format!("string '{s}'"),
        Token::Number(n, _) => format!("number {n}"),
        other => format!("'{other}'"),
    }
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str) -> PResult<Self> {
        let dialect = KsqlDialect;
        let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| ParseError {
            syntax: true,
            message: e.message.clone(),
            pos: Pos { line: e.location.line, column: e.location.column },
            hint: Some("check quotes: strings use single quotes ('text'), identifiers back-quotes (`Name`)".into()),
            statement: None,
        })?;
        let tokens: Vec<TokenWithSpan> = tokens.into_iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
        let mut line_starts = vec![0];
        for (i, b) in sql.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Ok(Parser { sql, tokens, i: 0, line_starts, types: BTreeMap::new(), nesting: 0 })
    }

    fn byte_offset(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1) as usize) else {
            return self.sql.len();
        };
        let rest = &self.sql[start..];
        rest.char_indices().nth(column.saturating_sub(1) as usize).map(|(b, _)| start + b).unwrap_or(self.sql.len())
    }

    fn offset_of(&self, idx: usize) -> usize {
        match self.tokens.get(idx) {
            Some(t) if t.token != Token::EOF => self.byte_offset(t.span.start.line, t.span.start.column),
            _ => self.sql.len(),
        }
    }

    fn end_offset_of(&self, idx: usize) -> usize {
        match self.tokens.get(idx) {
            Some(t) => self.byte_offset(t.span.end.line, t.span.end.column),
            None => self.sql.len(),
        }
    }

    /// The text of the statement starting at token `first`, up to its `;`.
    fn statement_text(&self, first: usize) -> String {
        let end = (first..self.tokens.len()).find(|&i| self.tokens[i].token == Token::SemiColon).map(|i| self.end_offset_of(i)).unwrap_or(self.sql.len());
        self.sql.get(self.offset_of(first)..end).unwrap_or(self.sql).trim().to_string()
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.i).map(|t| &t.token).unwrap_or(&Token::EOF)
    }

    fn peek_at(&self, n: usize) -> &Token {
        self.tokens.get(self.i + n).map(|t| &t.token).unwrap_or(&Token::EOF)
    }

    fn pos(&self) -> Pos {
        self.tokens.get(self.i).map(pos_of).unwrap_or_default()
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek(), Token::EOF)
    }

    fn error_here(&self, message: &str, hint: Option<&str>) -> ParseError {
        ParseError {
            syntax: true,
            message: format!("{message}, found {}", describe(self.peek())),
            pos: self.pos(),
            hint: hint.map(str::to_string),
            statement: None,
        }
    }

    /// Enters one more level of nesting (an expression, a NOT, a sign, a type), refusing to
    /// go deeper than [`MAX_EXPRESSION_DEPTH`]; pair with [`Parser::ascend`].
    fn descend(&mut self) -> PResult<()> {
        if self.nesting >= MAX_EXPRESSION_DEPTH {
            return Err(self.too_deep(self.pos()));
        }
        self.nesting += 1;
        Ok(())
    }

    fn ascend(&mut self) {
        self.nesting -= 1;
    }

    fn too_deep(&self, pos: Pos) -> ParseError {
        ParseError {
            syntax: true,
            message: format!("the statement nests too deeply: more than {MAX_EXPRESSION_DEPTH} levels of expressions or types (stack depth limit exceeded)"),
            pos,
            hint: Some(
                "simplify it: use IN (...) instead of long chains of OR, fewer nested parentheses or functions, or split the work over several queries".into(),
            ),
            statement: None,
        }
    }

    /// An expression node, refused when its tree would be deeper than the limit (long
    /// chains such as `a + b + c ...` nest without recursion in the parser).
    fn node(&self, kind: ExprKind, pos: Pos) -> PResult<Expr> {
        let e = Expr::new(kind, pos);
        if e.depth > MAX_EXPRESSION_DEPTH {
            return Err(self.too_deep(pos));
        }
        Ok(e)
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == t {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token) -> PResult<()> {
        if self.eat(t) { Ok(()) } else { Err(self.error_here(&format!("expected '{t}'"), None)) }
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, k)| self.is_kw_at(n, k)) {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.error_here(&format!("expected {kw}"), None)) }
    }

    /// An identifier: unquoted names are upper-cased.
    fn ident(&mut self) -> PResult<Ident> {
        let pos = self.pos();
        match self.peek().clone() {
            Token::Word(w) => {
                self.i += 1;
                let value = if w.quote_style.is_some() { w.value } else { w.value.to_uppercase() };
                Ok(Ident { value, pos })
            }
            _ => Err(self.error_here("expected a name", Some("quote names that are keywords or contain special characters with back-quotes, e.g. `my-name`"))),
        }
    }

    fn is_reserved_word(&self) -> bool {
        matches!(self.peek(), Token::Word(w) if w.quote_style.is_none() && RESERVED.iter().any(|r| w.value.eq_ignore_ascii_case(r)))
    }

    fn string_literal(&mut self) -> PResult<String> {
        match self.peek().clone() {
            Token::SingleQuotedString(s) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.error_here("expected a string in single quotes", None)),
        }
    }

    fn unsigned_integer(&mut self) -> PResult<u64> {
        match self.peek().clone() {
            Token::Number(n, _) => match n.parse::<u64>() {
                Ok(v) => {
                    self.i += 1;
                    Ok(v)
                }
                Err(_) => Err(self.error_here("expected a whole number", None)),
            },
            _ => Err(self.error_here("expected a whole number", None)),
        }
    }
}

const TYPE_HINT: &str =
    "types are BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), STRING, BYTES, DATE, TIME, TIMESTAMP, ARRAY<T>, MAP<K, V> and STRUCT<name T, ...>";

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut v = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(v.len(), 1);
        v.remove(0).statement
    }

    #[test]
    fn create_stream_with_key_and_properties() {
        let s = one(
            "CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, `dwell` BIGINT)\n  WITH (kafka_topic='pageviews', value_format='JSON', partitions=3);",
        );
        let Statement::CreateSource { kind, name, columns, props, .. } = s else { panic!() };
        assert_eq!(kind, SourceKind::Stream);
        assert_eq!(name.value, "PAGEVIEWS");
        assert_eq!(columns[0].name.value, "USER_ID");
        assert_eq!(columns[0].constraint, ColumnConstraint::Key);
        assert_eq!(columns[2].name.value, "dwell");
        assert_eq!(props.get("PARTITIONS"), Some(&PropValue::Number("3".into())));
        assert_eq!(props.get("KAFKA_TOPIC"), Some(&PropValue::String("pageviews".into())));
    }

    #[test]
    fn csas_with_expressions() {
        let s = one(
            "CREATE STREAM long_views AS SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s FROM pageviews WHERE dwell_ms > 1000 EMIT CHANGES;",
        );
        let Statement::CreateAsSelect { query, .. } = s else { panic!() };
        assert_eq!(query.select.len(), 3);
        assert_eq!(query.emit, Some(Emit::Changes));
        let SelectItem::Expr { expr, alias } = &query.select[2] else { panic!() };
        assert_eq!(alias.as_ref().unwrap().value, "DWELL_S");
        let ExprKind::Binary { op: BinaryOp::Divide, right, .. } = &expr.kind else { panic!("not a division: {expr:?}") };
        assert!(matches!(&right.kind, ExprKind::Literal(Literal::Decimal(d)) if d == "1000.0"));
    }

    #[test]
    fn nested_types_with_shift_right() {
        let s = one("CREATE STREAM s (m MAP<STRING, ARRAY<INT>>, st STRUCT<a STRUCT<b INT>>) WITH (kafka_topic='t', value_format='JSON');");
        let Statement::CreateSource { columns, .. } = s else { panic!() };
        assert_eq!(columns[0].ty.to_string(), "MAP<STRING, ARRAY<INTEGER>>");
        assert_eq!(columns[1].ty.to_string(), "STRUCT<`A` STRUCT<`B` INTEGER>>");
    }

    #[test]
    fn expression_forms() {
        for sql in [
            "a->b->c",
            "arr[1][2]",
            "m['k']",
            "CASE WHEN x > 1 THEN 'a' ELSE 'b' END",
            "CAST(x AS DECIMAL(4, 2))",
            "x NOT LIKE 'a%' ESCAPE '\\'",
            "x NOT BETWEEN 1 AND 2 AND y IN (1, 2, 3)",
            "x IS NOT NULL OR NOT y",
            "TRANSFORM(arr, x => x + 1)",
            "REDUCE(arr, 0, (s, x) => s + x)",
            "MAP('a' := 1, 'b' := 2)",
            "STRUCT(a := 1)",
            "ARRAY[1, 2]",
            "COUNT(*)",
            "-5 * +3 % 2",
            "s.col",
        ] {
            parse_expression(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let e = parse_expression("1 + 2 * 3").unwrap();
        assert!(matches!(e.kind, ExprKind::Binary { op: BinaryOp::Plus, .. }));
        let e = parse_expression("a OR b AND c").unwrap();
        assert!(matches!(e.kind, ExprKind::Binary { op: BinaryOp::Or, .. }));
    }

    #[test]
    fn errors_name_line_column_and_hint() {
        let e = parse("SELECT *\nFRM pageviews;").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 1 });
        let msg = e.to_string();
        assert!(msg.contains("line 2:1"), "{msg}");
        assert!(msg.contains("expected FROM"), "{msg}");
        let e = parse("SELEC 1;").unwrap_err();
        assert!(e.to_string().contains("statements start with"), "{e}");
    }

    #[test]
    fn statement_texts_are_split() {
        let v = parse("SHOW STREAMS; SHOW QUERIES;\nDESCRIBE x EXTENDED;").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].text, "SHOW STREAMS;");
        assert_eq!(v[2].text, "DESCRIBE x EXTENDED;");
        assert_eq!(v[2].statement, Statement::Describe { name: Ident { value: "X".into(), pos: Pos { line: 2, column: 10 } }, extended: true });
    }

    #[test]
    fn misc_statements() {
        assert!(matches!(one("PRINT 'pageviews' FROM BEGINNING LIMIT 5;"), Statement::Print { from_beginning: true, limit: Some(5), .. }));
        assert!(matches!(one("TERMINATE CSAS_LONG_VIEWS_1;"), Statement::Terminate { query_id: Some(_) }));
        assert!(matches!(one("DROP STREAM long_views DELETE TOPIC;"), Statement::Drop { delete_topic: true, .. }));
        assert!(matches!(one("SET 'auto.offset.reset'='earliest';"), Statement::Set { .. }));
        assert!(matches!(one("INSERT INTO s (a, b) VALUES ('x', 1);"), Statement::InsertValues { .. }));
        assert!(matches!(one("SELECT * FROM t WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) GROUP BY page EMIT FINAL;"), Statement::Select(_)));
        assert!(matches!(one("SELECT * FROM a JOIN b WITHIN 1 HOUR ON a.id = b.id EMIT CHANGES;"), Statement::Select(_)));
        assert!(matches!(one("show streams extended"), Statement::Show { kind: ShowKind::Streams, extended: true }));
    }

    #[test]
    fn custom_types_apply_to_the_statements_after_create_type() {
        let parsed = parse("CREATE TYPE addr AS STRUCT<city STRING>; CREATE STREAM s (a ADDR) WITH (kafka_topic='s');").unwrap();
        let Statement::CreateSource { columns, .. } = &parsed[1].statement else { panic!("{:?}", parsed[1].statement) };
        assert_eq!(columns[0].ty, SqlType::Struct(vec![("CITY".into(), SqlType::String)]));
        assert!(parse("DROP TYPE addr; CREATE STREAM s (a ADDR) WITH (kafka_topic='s');").is_err());
        let known = BTreeMap::from([("ADDR".to_string(), SqlType::Int)]);
        assert!(parse_with_types("CREATE STREAM s (a addr) WITH (kafka_topic='s');", &known).is_ok());
        assert!(parse_with_types("DROP TYPE ADDR; CREATE STREAM s (a addr) WITH (kafka_topic='s');", &known).is_err());
    }
}
