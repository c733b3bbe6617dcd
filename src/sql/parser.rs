//! Parser for ksqlDB's SQL dialect, on `sqlparser`'s tokenizer.
//!
//! Unquoted identifiers are upper-cased (ksqlDB's rule); back-quoted or double-quoted ones
//! keep their case. Errors carry the line and column of the offending token and a hint.

use std::collections::BTreeMap;
use std::fmt;

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use super::ast::*;
use crate::catalog::types::SqlType;

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
    pub message: String,
    pub pos: Pos,
    pub hint: Option<String>,
    /// The text of the statement the error is in, when known.
    pub statement: Option<String>,
}

/// Laid out as ksqlDB's parser reports errors: the position, `Syntax Error`, the problem
/// and the statement, each on its own line; then Eddy's hint.
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}: Syntax Error\n{}", self.pos.line, self.pos.column, self.message)?;
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
    "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "PARTITION", "EMIT", "LIMIT", "JOIN", "LEFT",
    "RIGHT", "FULL", "INNER", "OUTER", "ON", "WITHIN", "AS", "AND", "OR", "NOT", "BY", "IS", "IN", "LIKE",
    "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "WITH", "VALUES", "INTO", "GRACE", "CHANGES", "FINAL", "ORDER", "ASC", "DESC",
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
            return Err(p.error_here(
                "expected ';' at the end of the statement",
                Some("separate statements with ';'"),
            ));
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
        let _ = Whitespace::Space;
        Ok(Parser { sql, tokens, i: 0, line_starts, types: BTreeMap::new() })
    }

    fn byte_offset(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1) as usize) else { return self.sql.len() };
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
            message: format!("{message}, found {}", describe(self.peek())),
            pos: self.pos(),
            hint: hint.map(str::to_string),
            statement: None,
        }
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
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.error_here(&format!("expected '{t}'"), None))
        }
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
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error_here(&format!("expected {kw}"), None))
        }
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

    // -----------------------------------------------------------------------------------
    // Statements
    // -----------------------------------------------------------------------------------

    fn statement(&mut self) -> PResult<Statement> {
        if self.eat_kw("CREATE") {
            return self.create();
        }
        if self.eat_kw("INSERT") {
            return self.insert();
        }
        if self.is_kw("SELECT") {
            return Ok(Statement::Select(self.query()?));
        }
        if self.eat_kw("SHOW") || self.eat_kw("LIST") {
            return self.show();
        }
        if self.eat_kw("DESCRIBE") {
            return self.describe();
        }
        if self.eat_kw("EXPLAIN") {
            if self.is_kw("SELECT") || self.is_kw("CREATE") || self.is_kw("INSERT") {
                return Ok(Statement::ExplainStatement(Box::new(self.statement()?)));
            }
            return Ok(Statement::ExplainQueryId(self.query_id()?));
        }
        if self.eat_kw("TERMINATE") {
            if self.eat_kw("ALL") {
                return Ok(Statement::Terminate { query_id: None });
            }
            return Ok(Statement::Terminate { query_id: Some(self.query_id()?) });
        }
        if self.eat_kw("DROP") {
            return self.drop();
        }
        if self.eat_kw("ALTER") {
            return self.alter();
        }
        if self.eat_kw("PRINT") {
            return self.print();
        }
        if self.eat_kw("SET") {
            let name = self.string_literal()?;
            self.expect(&Token::Eq)?;
            let value = self.string_literal()?;
            return Ok(Statement::Set { name, value });
        }
        if self.eat_kw("UNSET") {
            return Ok(Statement::Unset { name: self.string_literal()? });
        }
        if self.eat_kw("DEFINE") {
            let name = self.raw_word()?;
            self.expect(&Token::Eq)?;
            let value = self.string_literal()?;
            return Ok(Statement::Define { name, value });
        }
        if self.eat_kw("UNDEFINE") {
            return Ok(Statement::Undefine { name: self.raw_word()? });
        }
        Err(self.error_here(
            "expected a statement",
            Some("statements start with CREATE, INSERT, SELECT, SHOW, LIST, DESCRIBE, EXPLAIN, TERMINATE, DROP, PRINT, SET, UNSET, DEFINE or UNDEFINE"),
        ))
    }

    /// A word as written (for variable names).
    fn raw_word(&mut self) -> PResult<String> {
        match self.peek().clone() {
            Token::Word(w) => {
                self.i += 1;
                Ok(w.value)
            }
            _ => Err(self.error_here("expected a name", None)),
        }
    }

    /// Query ids are identifiers like CSAS_OUT_1, kept upper-cased; transient ids keep case.
    fn query_id(&mut self) -> PResult<Ident> {
        let pos = self.pos();
        match self.peek().clone() {
            Token::Word(w) => {
                self.i += 1;
                let value = if w.quote_style.is_some() || w.value.starts_with("transient_") { w.value } else { w.value.to_uppercase() };
                Ok(Ident { value, pos })
            }
            Token::SingleQuotedString(s) => {
                self.i += 1;
                Ok(Ident { value: s, pos })
            }
            _ => Err(self.error_here("expected a query id", Some("SHOW QUERIES lists the ids of running queries"))),
        }
    }

    fn source_kind(&mut self) -> PResult<SourceKind> {
        if self.eat_kw("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_kw("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.error_here("expected STREAM or TABLE", None))
        }
    }

    fn create(&mut self) -> PResult<Statement> {
        let or_replace = self.eat_kws(&["OR", "REPLACE"]);
        let read_only = self.eat_kw("SOURCE");
        if !or_replace && !read_only && self.eat_kw("TYPE") {
            let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
            let name = self.ident()?;
            if !self.eat_kw("AS") {
                return Err(self.error_here("expected AS", Some("CREATE TYPE name AS type, e.g. CREATE TYPE ADDRESS AS STRUCT<street STRING, city STRING>")));
            }
            let ty = self.data_type()?;
            return Ok(Statement::CreateType { name, ty, if_not_exists });
        }
        let kind = self.source_kind()?;
        let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
        let name = self.ident()?;
        if self.peek() == &Token::LParen {
            let columns = self.column_defs()?;
            let props = self.with_props()?;
            if self.is_kw("AS") {
                return Err(self.error_here("a CREATE ... AS SELECT statement cannot declare columns", Some("remove the column list; the columns come from the SELECT")));
            }
            return Ok(Statement::CreateSource { kind, name, or_replace, if_not_exists, read_only, columns, props });
        }
        let props = self.with_props()?;
        if self.eat_kw("AS") {
            if read_only {
                return Err(self.error_here("CREATE SOURCE cannot be used with AS SELECT", None));
            }
            let query = self.query()?;
            return Ok(Statement::CreateAsSelect { kind, name, or_replace, if_not_exists, props, query });
        }
        Ok(Statement::CreateSource { kind, name, or_replace, if_not_exists, read_only, columns: Vec::new(), props })
    }

    fn column_defs(&mut self) -> PResult<Vec<ColumnDef>> {
        self.expect(&Token::LParen)?;
        let mut cols = Vec::new();
        loop {
            let name = self.ident()?;
            let ty = self.data_type()?;
            let mut header_key = None;
            let constraint = if self.eat_kws(&["PRIMARY", "KEY"]) {
                ColumnConstraint::PrimaryKey
            } else if self.eat_kw("KEY") {
                ColumnConstraint::Key
            } else if self.eat_kw("HEADERS") {
                ColumnConstraint::Headers
            } else if self.eat_kw("HEADER") {
                self.expect(&Token::LParen)?;
                header_key = Some(self.string_literal()?);
                self.expect(&Token::RParen)?;
                ColumnConstraint::Header
            } else {
                ColumnConstraint::None
            };
            cols.push(ColumnDef { name, ty, constraint, header_key });
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        if self.peek() != &Token::RParen {
            return Err(ParseError { message: "Expecting {',', ')'}".into(), pos: self.pos(), hint: Some("separate column definitions with ',' and close the list with ')'".into()), statement: None });
        }
        self.expect(&Token::RParen)?;
        Ok(cols)
    }

    fn with_props(&mut self) -> PResult<Props> {
        let mut props = Props::default();
        if !self.eat_kw("WITH") {
            return Ok(props);
        }
        self.expect(&Token::LParen)?;
        loop {
            let pos = self.pos();
            let name = match self.peek().clone() {
                Token::Word(w) => {
                    self.i += 1;
                    w.value.to_uppercase()
                }
                Token::SingleQuotedString(s) => {
                    self.i += 1;
                    s.to_uppercase()
                }
                _ => return Err(self.error_here("expected a property name", Some("properties are written WITH (name='value', ...)"))),
            };
            self.expect(&Token::Eq)?;
            let value = match self.peek().clone() {
                Token::SingleQuotedString(s) => PropValue::String(s),
                Token::Number(n, _) => PropValue::Number(n),
                Token::Minus => {
                    self.i += 1;
                    match self.peek().clone() {
                        Token::Number(n, _) => PropValue::Number(format!("-{n}")),
                        _ => return Err(self.error_here("expected a number", None)),
                    }
                }
                Token::Word(w) if w.value.eq_ignore_ascii_case("true") => PropValue::Boolean(true),
                Token::Word(w) if w.value.eq_ignore_ascii_case("false") => PropValue::Boolean(false),
                _ => return Err(self.error_here("expected a property value (a 'string', number or boolean)", None)),
            };
            self.i += 1;
            props.0.push((name, value, pos));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(props)
    }

    fn insert(&mut self) -> PResult<Statement> {
        self.expect_kw("INTO")?;
        let target = self.ident()?;
        let mut columns = None;
        if self.peek() == &Token::LParen {
            self.i += 1;
            let mut cols = Vec::new();
            loop {
                cols.push(self.ident()?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
            columns = Some(cols);
        }
        if self.eat_kw("VALUES") {
            self.expect(&Token::LParen)?;
            let mut values = Vec::new();
            if self.peek() != &Token::RParen {
                loop {
                    values.push(self.expr()?);
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
            }
            self.expect(&Token::RParen)?;
            return Ok(Statement::InsertValues { target, columns, values });
        }
        if columns.is_some() {
            return Err(self.error_here("expected VALUES after the column list", None));
        }
        let props = self.with_props()?;
        if self.is_kw("SELECT") {
            return Ok(Statement::InsertSelect { target, props, query: self.query()? });
        }
        Err(self.error_here("expected VALUES or SELECT", Some("INSERT INTO s (a, b) VALUES (1, 'x') or INSERT INTO s SELECT ...")))
    }

    fn show(&mut self) -> PResult<Statement> {
        self.eat_kw("ALL");
        let kind = if self.eat_kw("STREAMS") {
            ShowKind::Streams
        } else if self.eat_kw("TABLES") {
            ShowKind::Tables
        } else if self.eat_kw("QUERIES") {
            ShowKind::Queries
        } else if self.eat_kw("TOPICS") {
            ShowKind::Topics
        } else if self.eat_kw("PROPERTIES") {
            ShowKind::Properties
        } else if self.eat_kw("FUNCTIONS") {
            ShowKind::Functions
        } else if self.eat_kw("TYPES") {
            ShowKind::Types
        } else if self.eat_kw("VARIABLES") {
            ShowKind::Variables
        } else {
            return Err(self.error_here(
                "expected STREAMS, TABLES, QUERIES, TOPICS, PROPERTIES, FUNCTIONS, TYPES or VARIABLES",
                None,
            ));
        };
        let extended = self.eat_kw("EXTENDED");
        Ok(Statement::Show { kind, extended })
    }

    fn describe(&mut self) -> PResult<Statement> {
        if self.eat_kw("FUNCTION") {
            return Ok(Statement::DescribeFunction { name: self.ident()? });
        }
        if (self.is_kw("STREAMS") || self.is_kw("TABLES")) && matches!(self.peek_at(1), Token::SemiColon | Token::EOF) || (self.is_kw("STREAMS") || self.is_kw("TABLES")) && self.is_kw_at(1, "EXTENDED") {
            let kind = if self.eat_kw("STREAMS") { SourceKind::Stream } else {
                self.i += 1;
                SourceKind::Table
            };
            let extended = self.eat_kw("EXTENDED");
            return Ok(Statement::DescribeAll { kind, extended });
        }
        let extended = self.is_kw("EXTENDED") && !matches!(self.peek_at(1), Token::SemiColon | Token::EOF) && {
            self.i += 1;
            true
        };
        let name = self.ident()?;
        let extended = extended || self.eat_kw("EXTENDED");
        Ok(Statement::Describe { name, extended })
    }

    fn drop(&mut self) -> PResult<Statement> {
        if self.eat_kw("TYPE") {
            let if_exists = self.eat_kws(&["IF", "EXISTS"]);
            return Ok(Statement::DropType { name: self.ident()?, if_exists });
        }
        let kind = self.source_kind()?;
        let if_exists = self.eat_kws(&["IF", "EXISTS"]);
        let name = self.ident()?;
        let delete_topic = self.eat_kws(&["DELETE", "TOPIC"]);
        Ok(Statement::Drop { kind, name, if_exists, delete_topic })
    }

    fn alter(&mut self) -> PResult<Statement> {
        let kind = self.source_kind()?;
        let name = self.ident()?;
        let mut add_columns = Vec::new();
        loop {
            if !self.eat_kw("ADD") {
                return Err(self.error_here("expected ADD", Some("ALTER STREAM s ADD COLUMN c INT, ADD COLUMN d STRING")));
            }
            self.eat_kw("COLUMN");
            let column = self.ident()?;
            add_columns.push((column, self.data_type()?));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Alter { kind, name, add_columns })
    }

    fn print(&mut self) -> PResult<Statement> {
        let pos = self.pos();
        let topic = match self.peek().clone() {
            Token::SingleQuotedString(s) => {
                self.i += 1;
                Ident { value: s, pos }
            }
            Token::Word(w) => {
                self.i += 1;
                // Unquoted topic names keep their case, as Kafka topic names are case-sensitive.
                Ident { value: w.value, pos }
            }
            _ => return Err(self.error_here("expected a topic name", Some("PRINT 'topic' FROM BEGINNING LIMIT 10"))),
        };
        let mut from_beginning = false;
        let mut interval = None;
        let mut limit = None;
        loop {
            if self.eat_kws(&["FROM", "BEGINNING"]) {
                from_beginning = true;
            } else if self.eat_kw("INTERVAL") || self.eat_kw("SAMPLE") {
                interval = Some(self.unsigned_integer()?);
            } else if self.eat_kw("LIMIT") {
                limit = Some(self.unsigned_integer()?);
            } else {
                break;
            }
        }
        Ok(Statement::Print { topic, from_beginning, interval, limit })
    }

    // -----------------------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------------------

    fn query(&mut self) -> PResult<Query> {
        let pos = self.pos();
        self.expect_kw("SELECT")?;
        let mut select = Vec::new();
        loop {
            select.push(self.select_item()?);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        if !self.eat_kw("FROM") {
            return Err(self.error_here("expected FROM", Some("a query reads from a stream or table: SELECT ... FROM name")));
        }
        let from = self.relation()?;
        let mut q = Query::new(select, from, pos);
        if self.eat_kw("WINDOW") {
            q.window = Some(self.window()?);
        }
        if self.eat_kw("WHERE") {
            q.where_ = Some(self.expr()?);
        }
        loop {
            if self.eat_kws(&["GROUP", "BY"]) {
                q.group_by = self.expr_list()?;
            } else if self.eat_kws(&["PARTITION", "BY"]) {
                if matches!(self.peek(), Token::RParen | Token::SemiColon | Token::EOF) {
                    return Err(self.error_here("PARTITION BY requires at least one expression", Some("e.g. PARTITION BY user_id".into())));
                }
                q.partition_by = self.expr_list()?;
            } else if self.eat_kw("HAVING") {
                q.having = Some(self.expr()?);
            } else if self.eat_kws(&["ORDER", "BY"]) {
                loop {
                    let e = self.expr()?;
                    let asc = if self.eat_kw("DESC") {
                        false
                    } else {
                        self.eat_kw("ASC");
                        true
                    };
                    q.order_by.push((e, asc));
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if self.eat_kw("EMIT") {
            q.emit = Some(if self.eat_kw("CHANGES") {
                Emit::Changes
            } else if self.eat_kw("FINAL") {
                Emit::Final
            } else {
                return Err(self.error_here("expected CHANGES or FINAL after EMIT", None));
            });
        }
        if self.eat_kw("LIMIT") {
            if self.peek() == &Token::Minus && q.emit.is_none() {
                return Err(self.error_here("Pull queries don't support negative integers in the LIMIT clause. See https://cnfl.io/queries for more info.", None));
            }
            q.limit = Some(self.unsigned_integer()?);
        }
        Ok(q)
    }

    fn expr_list(&mut self) -> PResult<Vec<Expr>> {
        let mut out = Vec::new();
        loop {
            out.push(self.expr()?);
            if !self.eat(&Token::Comma) {
                return Ok(out);
            }
        }
    }

    fn select_item(&mut self) -> PResult<SelectItem> {
        let pos = self.pos();
        if self.eat(&Token::Mul) {
            return Ok(SelectItem::Wildcard { qualifier: None, pos });
        }
        if matches!(self.peek(), Token::Word(_)) && self.peek_at(1) == &Token::Period && self.peek_at(2) == &Token::Mul {
            let q = self.ident()?;
            self.i += 2;
            return Ok(SelectItem::Wildcard { qualifier: Some(q.value), pos });
        }
        let expr = self.expr()?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident()?)
        } else if matches!(self.peek(), Token::Word(_)) && !self.is_reserved_word() {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    fn aliased_source(&mut self) -> PResult<Relation> {
        let name = self.ident()?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident()?)
        } else if matches!(self.peek(), Token::Word(_)) && !self.is_reserved_word() {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Relation::Source { name, alias })
    }

    fn relation(&mut self) -> PResult<Relation> {
        let mut rel = self.aliased_source()?;
        loop {
            let kind = if self.eat_kw("JOIN") || self.eat_kws(&["INNER", "JOIN"]) {
                JoinKind::Inner
            } else if self.eat_kws(&["LEFT", "OUTER", "JOIN"]) || self.eat_kws(&["LEFT", "JOIN"]) {
                JoinKind::Left
            } else if self.eat_kws(&["RIGHT", "OUTER", "JOIN"]) || self.eat_kws(&["RIGHT", "JOIN"]) {
                JoinKind::Right
            } else if self.eat_kws(&["FULL", "OUTER", "JOIN"]) || self.eat_kws(&["FULL", "JOIN"]) {
                JoinKind::Full
            } else {
                return Ok(rel);
            };
            let right = self.aliased_source()?;
            let mut within = None;
            if self.eat_kw("WITHIN") {
                let (before, after) = if self.eat(&Token::LParen) {
                    let b = self.duration()?;
                    self.expect(&Token::Comma)?;
                    let a = self.duration()?;
                    self.expect(&Token::RParen)?;
                    (b, a)
                } else {
                    let d = self.duration()?;
                    (d, d)
                };
                let grace = if self.eat_kws(&["GRACE", "PERIOD"]) { Some(self.duration()?) } else { None };
                within = Some(JoinWithin { before, after, grace });
            }
            self.expect_kw("ON")?;
            let on = self.expr()?;
            rel = Relation::Join { left: Box::new(rel), right: Box::new(right), kind, on, within };
        }
    }

    fn duration(&mut self) -> PResult<Duration> {
        let n = self.unsigned_integer()? as i64;
        let unit = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => return Err(self.error_here("expected a time unit", Some("use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"))),
        };
        let ms = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => return Err(self.error_here("expected a time unit", Some("use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"))),
        };
        self.i += 1;
        Ok(Duration { millis: n.saturating_mul(ms) })
    }

    fn window(&mut self) -> PResult<WindowSpec> {
        let kind = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => String::new(),
        };
        if !matches!(kind.as_str(), "TUMBLING" | "HOPPING" | "SESSION") {
            return Err(self.error_here("expected TUMBLING, HOPPING or SESSION", None));
        }
        self.i += 1;
        self.expect(&Token::LParen)?;
        let mut size = None;
        let mut advance = None;
        let mut retention = None;
        let mut grace = None;
        if kind == "SESSION" {
            size = Some(self.duration()?);
        }
        loop {
            if kind == "SESSION" && size.is_some() && !self.eat(&Token::Comma) {
                break;
            }
            if self.eat_kw("SIZE") {
                size = Some(self.duration()?);
            } else if self.eat_kws(&["ADVANCE", "BY"]) {
                advance = Some(self.duration()?);
            } else if self.eat_kw("RETENTION") {
                retention = Some(self.duration()?);
            } else if self.eat_kws(&["GRACE", "PERIOD"]) {
                grace = Some(self.duration()?);
            } else {
                return Err(self.error_here("expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD", None));
            }
            if kind != "SESSION" && !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        let need_size = |s: Option<Duration>, p: &Self| s.ok_or_else(|| p.error_here("the window needs a SIZE", None));
        Ok(match kind.as_str() {
            "TUMBLING" => WindowSpec::Tumbling { size: need_size(size, self)?, retention, grace },
            "HOPPING" => WindowSpec::Hopping {
                size: need_size(size, self)?,
                advance: advance.ok_or_else(|| self.error_here("a HOPPING window needs ADVANCE BY", None))?,
                retention,
                grace,
            },
            _ => WindowSpec::Session { gap: need_size(size, self)?, retention, grace },
        })
    }

    // -----------------------------------------------------------------------------------
    // Types
    // -----------------------------------------------------------------------------------

    fn expect_gt(&mut self) -> PResult<()> {
        match self.peek() {
            Token::Gt => {
                self.i += 1;
                Ok(())
            }
            Token::ShiftRight => {
                // `>>` closing two nested types: consume one half.
                if let Some(t) = self.tokens.get_mut(self.i) {
                    t.token = Token::Gt;
                }
                Ok(())
            }
            _ => Err(self.error_here("expected '>'", None)),
        }
    }

    /// The custom type named by the word at token `i` (unquoted names are upper-cased).
    fn custom_type(&self, i: usize) -> Option<SqlType> {
        match &self.tokens.get(i)?.token {
            Token::Word(w) if w.quote_style.is_some() => self.types.get(&w.value).cloned(),
            Token::Word(w) => self.types.get(&w.value.to_uppercase()).cloned(),
            _ => None,
        }
    }

    fn data_type(&mut self) -> PResult<SqlType> {
        let name = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => return Err(self.error_here("expected a type", Some(TYPE_HINT))),
        };
        self.i += 1;
        let ty = match name.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "VARCHAR" | "STRING" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "TIMESTAMP" => SqlType::Timestamp,
            "DECIMAL" if self.peek() == &Token::LParen => {
                self.expect(&Token::LParen)?;
                let p = self.unsigned_integer()?;
                let s = if self.eat(&Token::Comma) { self.unsigned_integer()? } else { 0 };
                self.expect(&Token::RParen)?;
                if !(1..=38).contains(&p) || s > p {
                    return Err(ParseError {
                        message: format!("DECIMAL({p}, {s}) is out of range"),
                        pos: self.pos(),
                        hint: Some("precision must be 1..38 and scale at most the precision".into()),
                        statement: None,
                    });
                }
                SqlType::Decimal { precision: p as u8, scale: s as i8 }
            }
            "ARRAY" => {
                self.expect(&Token::Lt)?;
                let t = self.data_type()?;
                self.expect_gt()?;
                SqlType::Array(Box::new(t))
            }
            "MAP" => {
                self.expect(&Token::Lt)?;
                let k = self.data_type()?;
                self.expect(&Token::Comma)?;
                let v = self.data_type()?;
                self.expect_gt()?;
                SqlType::Map(Box::new(k), Box::new(v))
            }
            "STRUCT" => {
                self.expect(&Token::Lt)?;
                let mut fields = Vec::new();
                if !matches!(self.peek(), Token::Gt | Token::ShiftRight) {
                    loop {
                        let n = self.ident()?;
                        let t = self.data_type()?;
                        fields.push((n.value, t));
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                }
                self.expect_gt()?;
                SqlType::Struct(fields)
            }
            "DECIMAL" => return Err(self.error_here("expected '(' after DECIMAL", Some("write DECIMAL(precision, scale)"))),
            _ => {
                if let Some(ty) = self.custom_type(self.i - 1) {
                    return Ok(ty);
                }
                self.i -= 1;
                return Err(self.error_here("unknown type", Some(TYPE_HINT)));
            }
        };
        // ksqlDB's grammar lets any type name take parameters (`VARCHAR(STRING)`); only
        // DECIMAL's mean something.
        if !matches!(ty, SqlType::Decimal { .. } | SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) && self.eat(&Token::LParen) {
            loop {
                match self.peek() {
                    Token::Number(..) => self.i += 1,
                    Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("STRING") => self.i += 1,
                    _ => return Err(ParseError { message: "Expecting {'STRING', INTEGER_VALUE}".into(), pos: self.pos(), hint: Some(TYPE_HINT.into()), statement: None }),
                }
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
        }
        Ok(ty)
    }

    // -----------------------------------------------------------------------------------
    // Expressions
    // -----------------------------------------------------------------------------------

    fn expr(&mut self) -> PResult<Expr> {
        self.or()
    }

    fn or(&mut self) -> PResult<Expr> {
        let mut e = self.and()?;
        while self.is_kw("OR") {
            let pos = self.pos();
            self.i += 1;
            let r = self.and()?;
            e = Expr::new(ExprKind::Binary { op: BinaryOp::Or, left: Box::new(e), right: Box::new(r) }, pos);
        }
        Ok(e)
    }

    fn and(&mut self) -> PResult<Expr> {
        let mut e = self.not()?;
        while self.is_kw("AND") {
            let pos = self.pos();
            self.i += 1;
            let r = self.not()?;
            e = Expr::new(ExprKind::Binary { op: BinaryOp::And, left: Box::new(e), right: Box::new(r) }, pos);
        }
        Ok(e)
    }

    fn not(&mut self) -> PResult<Expr> {
        if self.is_kw("NOT") {
            let pos = self.pos();
            self.i += 1;
            let e = self.not()?;
            return Ok(Expr::new(ExprKind::Unary { op: UnaryOp::Not, expr: Box::new(e) }, pos));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> PResult<Expr> {
        let mut e = self.concat()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Token::Eq | Token::DoubleEq => Some(BinaryOp::Eq),
                Token::Neq => Some(BinaryOp::NotEq),
                Token::Lt => Some(BinaryOp::Lt),
                Token::LtEq => Some(BinaryOp::LtEq),
                Token::Gt => Some(BinaryOp::Gt),
                Token::GtEq => Some(BinaryOp::GtEq),
                _ => None,
            };
            if let Some(op) = op {
                self.i += 1;
                let r = self.concat()?;
                e = Expr::new(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos);
                continue;
            }
            if self.is_kw("IS") {
                self.i += 1;
                let negated = self.eat_kw("NOT");
                if self.eat_kw("NULL") {
                    e = Expr::new(ExprKind::IsNull { expr: Box::new(e), negated }, pos);
                    continue;
                }
                if self.eat_kws(&["DISTINCT", "FROM"]) {
                    let r = self.concat()?;
                    e = Expr::new(ExprKind::IsDistinctFrom { left: Box::new(e), right: Box::new(r), negated }, pos);
                    continue;
                }
                return Err(self.error_here("expected NULL or DISTINCT FROM after IS", None));
            }
            let negated = self.is_kw("NOT") && (self.is_kw_at(1, "LIKE") || self.is_kw_at(1, "BETWEEN") || self.is_kw_at(1, "IN"));
            if negated {
                self.i += 1;
            }
            if self.eat_kw("LIKE") {
                let pattern = self.concat()?;
                let escape = if self.eat_kw("ESCAPE") {
                    let s = self.string_literal()?;
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => return Err(ParseError { message: "ESCAPE must be a single character".into(), pos: self.pos(), hint: None, statement: None }),
                    }
                } else {
                    None
                };
                e = Expr::new(ExprKind::Like { expr: Box::new(e), pattern: Box::new(pattern), escape, negated }, pos);
                continue;
            }
            if self.eat_kw("BETWEEN") {
                let low = self.concat()?;
                self.expect_kw("AND")?;
                let high = self.concat()?;
                e = Expr::new(ExprKind::Between { expr: Box::new(e), low: Box::new(low), high: Box::new(high), negated }, pos);
                continue;
            }
            if self.eat_kw("IN") {
                self.expect(&Token::LParen)?;
                let list = if self.peek() == &Token::RParen { Vec::new() } else { self.expr_list()? };
                self.expect(&Token::RParen)?;
                e = Expr::new(ExprKind::InList { expr: Box::new(e), list, negated }, pos);
                continue;
            }
            return Ok(e);
        }
    }

    fn concat(&mut self) -> PResult<Expr> {
        let mut e = self.additive()?;
        while self.peek() == &Token::StringConcat {
            let pos = self.pos();
            self.i += 1;
            let r = self.additive()?;
            e = Expr::new(ExprKind::Binary { op: BinaryOp::Concat, left: Box::new(e), right: Box::new(r) }, pos);
        }
        Ok(e)
    }

    fn additive(&mut self) -> PResult<Expr> {
        let mut e = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Token::Plus => BinaryOp::Plus,
                Token::Minus => BinaryOp::Minus,
                _ => return Ok(e),
            };
            let pos = self.pos();
            self.i += 1;
            let r = self.multiplicative()?;
            e = Expr::new(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos);
        }
    }

    fn multiplicative(&mut self) -> PResult<Expr> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek() {
                Token::Mul => BinaryOp::Multiply,
                Token::Div => BinaryOp::Divide,
                Token::Mod => BinaryOp::Modulo,
                _ => return Ok(e),
            };
            let pos = self.pos();
            self.i += 1;
            let r = self.unary()?;
            e = Expr::new(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos);
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        match self.peek() {
            Token::Minus => {
                self.i += 1;
                let e = self.unary()?;
                // Fold negative numeric literals so -2147483648 stays an INT.
                if let ExprKind::Literal(l) = &e.kind {
                    match l {
                        Literal::Integer(v) => return Ok(Expr::new(ExprKind::Literal(Literal::Integer(-v)), pos)),
                        Literal::Decimal(s) => return Ok(Expr::new(ExprKind::Literal(Literal::Decimal(format!("-{s}"))), pos)),
                        Literal::Double(v) => return Ok(Expr::new(ExprKind::Literal(Literal::Double(-v)), pos)),
                        _ => {}
                    }
                }
                Ok(Expr::new(ExprKind::Unary { op: UnaryOp::Minus, expr: Box::new(e) }, pos))
            }
            Token::Plus => {
                self.i += 1;
                let e = self.unary()?;
                Ok(Expr::new(ExprKind::Unary { op: UnaryOp::Plus, expr: Box::new(e) }, pos))
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat(&Token::LBracket) {
                let index = self.expr()?;
                self.expect(&Token::RBracket)?;
                e = Expr::new(ExprKind::Subscript { expr: Box::new(e), index: Box::new(index) }, pos);
            } else if self.eat(&Token::Arrow) {
                let field = self.ident()?;
                e = Expr::new(ExprKind::Dereference { expr: Box::new(e), field: field.value }, pos);
            } else {
                return Ok(e);
            }
        }
    }

    /// `(a, b) =>` or `a =>` ahead?
    fn lambda_ahead(&self) -> bool {
        if matches!(self.peek(), Token::Word(_)) && self.peek_at(1) == &Token::RArrow {
            return true;
        }
        if self.peek() != &Token::LParen {
            return false;
        }
        let mut n = 1;
        loop {
            if !matches!(self.peek_at(n), Token::Word(_)) {
                return false;
            }
            n += 1;
            match self.peek_at(n) {
                Token::Comma => n += 1,
                Token::RParen => return self.peek_at(n + 1) == &Token::RArrow,
                _ => return false,
            }
        }
    }

    fn lambda(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        let mut params = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                params.push(self.ident()?.value);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
        } else {
            params.push(self.ident()?.value);
        }
        self.expect(&Token::RArrow)?;
        let body = self.expr()?;
        Ok(Expr::new(ExprKind::Lambda { params, body: Box::new(body) }, pos))
    }

    fn primary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        if self.lambda_ahead() {
            return self.lambda();
        }
        match self.peek().clone() {
            Token::Number(n, _) => {
                self.i += 1;
                let lit = if n.contains(['e', 'E']) {
                    Literal::Double(n.parse().map_err(|_| ParseError { message: format!("invalid number {n}"), pos, hint: None, statement: None })?)
                } else if n.contains('.') {
                    Literal::Decimal(n)
                } else {
                    match n.parse::<i64>() {
                        Ok(v) => Literal::Integer(v),
                        Err(_) => {
                            return Err(ParseError {
                                message: format!("number {n} is too large"),
                                pos,
                                hint: Some("BIGINT holds values up to 9223372036854775807; write larger numbers as decimals, e.g. 1e20".into()),
                                statement: None,
                            });
                        }
                    }
                };
                Ok(Expr::new(ExprKind::Literal(lit), pos))
            }
            Token::SingleQuotedString(s) => {
                self.i += 1;
                Ok(Expr::new(ExprKind::Literal(Literal::String(s)), pos))
            }
            Token::LParen => {
                self.i += 1;
                let e = self.expr()?;
                self.expect(&Token::RParen)?;
                Ok(e)
            }
            Token::Word(w) => {
                if w.quote_style.is_none() {
                    let upper = w.value.to_uppercase();
                    match upper.as_str() {
                        "NULL" => {
                            self.i += 1;
                            return Ok(Expr::new(ExprKind::Literal(Literal::Null), pos));
                        }
                        "TRUE" | "FALSE" => {
                            self.i += 1;
                            return Ok(Expr::new(ExprKind::Literal(Literal::Boolean(upper == "TRUE")), pos));
                        }
                        "CASE" => {
                            self.i += 1;
                            return self.case(pos);
                        }
                        "CAST" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let e = self.expr()?;
                            self.expect_kw("AS")?;
                            let ty = self.data_type()?;
                            self.expect(&Token::RParen)?;
                            return Ok(Expr::new(ExprKind::Cast { expr: Box::new(e), ty }, pos));
                        }
                        "ARRAY" if self.peek_at(1) == &Token::LBracket => {
                            self.i += 2;
                            let items = if self.peek() == &Token::RBracket { Vec::new() } else { self.expr_list()? };
                            self.expect(&Token::RBracket)?;
                            return Ok(Expr::new(ExprKind::Array(items), pos));
                        }
                        "MAP" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let mut entries = Vec::new();
                            if self.peek() != &Token::RParen {
                                loop {
                                    let k = self.expr()?;
                                    self.expect_assign()?;
                                    let v = self.expr()?;
                                    entries.push((k, v));
                                    if !self.eat(&Token::Comma) {
                                        break;
                                    }
                                }
                            }
                            self.expect(&Token::RParen)?;
                            return Ok(Expr::new(ExprKind::Map(entries), pos));
                        }
                        "STRUCT" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let mut fields = Vec::new();
                            if self.peek() != &Token::RParen {
                                loop {
                                    let n = self.ident()?;
                                    self.expect_assign()?;
                                    let v = self.expr()?;
                                    fields.push((n.value, v));
                                    if !self.eat(&Token::Comma) {
                                        break;
                                    }
                                }
                            }
                            self.expect(&Token::RParen)?;
                            return Ok(Expr::new(ExprKind::Struct(fields), pos));
                        }
                        _ => {}
                    }
                }
                if self.is_reserved_word() && self.peek_at(1) != &Token::LParen {
                    return Err(self.error_here("expected an expression", Some("quote column names that are keywords with back-quotes, e.g. `FROM`")));
                }
                let name = self.ident()?;
                if self.peek() == &Token::LParen {
                    self.i += 1;
                    return self.function_call(name, pos);
                }
                if self.peek() == &Token::Period && matches!(self.peek_at(1), Token::Word(_)) {
                    self.i += 1;
                    let col = self.ident()?;
                    return Ok(Expr::new(ExprKind::Column { qualifier: Some(name.value), name: col.value }, pos));
                }
                Ok(Expr::new(ExprKind::Column { qualifier: None, name: name.value }, pos))
            }
            _ => Err(self.error_here("expected an expression", None)),
        }
    }

    fn expect_assign(&mut self) -> PResult<()> {
        match self.peek() {
            Token::Assignment => {
                self.i += 1;
                Ok(())
            }
            Token::Colon if self.peek_at(1) == &Token::Eq => {
                self.i += 2;
                Ok(())
            }
            _ => Err(self.error_here("expected ':='", Some("write entries as MAP('k' := v) and fields as STRUCT(F := v)"))),
        }
    }

    fn function_call(&mut self, name: Ident, pos: Pos) -> PResult<Expr> {
        let mut args = Vec::new();
        let mut star = false;
        let distinct = self.eat_kw("DISTINCT");
        if self.eat(&Token::Mul) {
            star = true;
        } else if self.peek() != &Token::RParen {
            args = self.expr_list()?;
        }
        self.expect(&Token::RParen)?;
        Ok(Expr::new(ExprKind::Function { name: name.value.to_uppercase(), args, distinct, star }, pos))
    }

    fn case(&mut self, pos: Pos) -> PResult<Expr> {
        let operand = if self.is_kw("WHEN") { None } else { Some(Box::new(self.expr()?)) };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let c = self.expr()?;
            self.expect_kw("THEN")?;
            let r = self.expr()?;
            whens.push((c, r));
        }
        if whens.is_empty() {
            return Err(self.error_here("expected WHEN", Some("CASE WHEN condition THEN result [ELSE result] END")));
        }
        let else_ = if self.eat_kw("ELSE") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_kw("END")?;
        Ok(Expr::new(ExprKind::Case { operand, whens, else_ }, pos))
    }
}

const TYPE_HINT: &str = "types are BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), STRING, BYTES, DATE, TIME, TIMESTAMP, ARRAY<T>, MAP<K, V> and STRUCT<name T, ...>";

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
        let s = one("CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, `dwell` BIGINT)\n  WITH (kafka_topic='pageviews', value_format='JSON', partitions=3);");
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
        let s = one("CREATE STREAM long_views AS SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s FROM pageviews WHERE dwell_ms > 1000 EMIT CHANGES;");
        let Statement::CreateAsSelect { query, .. } = s else { panic!() };
        assert_eq!(query.select.len(), 3);
        assert_eq!(query.emit, Some(Emit::Changes));
        let SelectItem::Expr { expr, alias } = &query.select[2] else { panic!() };
        assert_eq!(alias.as_ref().unwrap().value, "DWELL_S");
        assert!(matches!(&expr.kind, ExprKind::Binary { op: BinaryOp::Divide, right, .. } if matches!(&right.kind, ExprKind::Literal(Literal::Decimal(d)) if d == "1000.0")));
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
