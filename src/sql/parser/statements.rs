//! Statements other than SELECT: CREATE, INSERT, SHOW, DESCRIBE, DROP, ALTER, PRINT, and
//! their parts (column definitions, WITH properties).

use super::*;

impl Parser<'_> {
    pub(super) fn statement(&mut self) -> PResult<Statement> {
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
        if let Some(control) = self.control_statement()? {
            return Ok(control);
        }
        Err(self.error_here(
            "expected a statement",
            Some(
                "statements start with CREATE, INSERT, SELECT, SHOW, LIST, DESCRIBE, EXPLAIN, TERMINATE, PAUSE, RESUME, DROP, ALTER, ASSERT, PRINT, SET, \
                 UNSET, DEFINE or UNDEFINE",
            ),
        ))
    }

    /// A word as written (for variable names).
    pub(super) fn raw_word(&mut self) -> PResult<String> {
        match self.peek().clone() {
            Token::Word(w) => {
                self.i += 1;
                Ok(w.value)
            }
            _ => Err(self.error_here("expected a name", None)),
        }
    }

    /// Query ids are identifiers like CSAS_OUT_1, kept upper-cased; transient ids keep case.
    pub(super) fn query_id(&mut self) -> PResult<Ident> {
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

    pub(super) fn source_kind(&mut self) -> PResult<SourceKind> {
        if self.eat_kw("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_kw("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.error_here("expected STREAM or TABLE", None))
        }
    }

    pub(super) fn create(&mut self) -> PResult<Statement> {
        if (self.is_kw("SOURCE") || self.is_kw("SINK")) && self.is_kw_at(1, "CONNECTOR") {
            return Ok(self.connector("CREATE CONNECTOR"));
        }
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
                return Err(self
                    .error_here("a CREATE ... AS SELECT statement cannot declare columns", Some("remove the column list; the columns come from the SELECT")));
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

    pub(super) fn column_defs(&mut self) -> PResult<Vec<ColumnDef>> {
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
            return Err(ParseError {
                syntax: true,
                message: "Expecting {',', ')'}".into(),
                pos: self.pos(),
                hint: Some("separate column definitions with ',' and close the list with ')'".into()),
                statement: None,
            });
        }
        self.expect(&Token::RParen)?;
        Ok(cols)
    }

    pub(super) fn with_props(&mut self) -> PResult<Props> {
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

    pub(super) fn insert(&mut self) -> PResult<Statement> {
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

    pub(super) fn show(&mut self) -> PResult<Statement> {
        if self.is_kw("CONNECTORS") || self.is_kw_at(1, "CONNECTORS") {
            return Ok(self.connector("SHOW CONNECTORS"));
        }
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
            return Err(self.error_here("expected STREAMS, TABLES, QUERIES, TOPICS, PROPERTIES, FUNCTIONS, TYPES or VARIABLES", None));
        };
        let extended = self.eat_kw("EXTENDED");
        Ok(Statement::Show { kind, extended })
    }

    pub(super) fn describe(&mut self) -> PResult<Statement> {
        if self.is_kw("CONNECTOR") {
            return Ok(self.connector("DESCRIBE CONNECTOR"));
        }
        if self.eat_kw("FUNCTION") {
            return Ok(Statement::DescribeFunction { name: self.ident()? });
        }
        if (self.is_kw("STREAMS") || self.is_kw("TABLES")) && matches!(self.peek_at(1), Token::SemiColon | Token::EOF)
            || (self.is_kw("STREAMS") || self.is_kw("TABLES")) && self.is_kw_at(1, "EXTENDED")
        {
            let kind = if self.eat_kw("STREAMS") {
                SourceKind::Stream
            } else {
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

    pub(super) fn drop(&mut self) -> PResult<Statement> {
        if self.is_kw("CONNECTOR") {
            return Ok(self.connector("DROP CONNECTOR"));
        }
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

    pub(super) fn alter(&mut self) -> PResult<Statement> {
        if self.eat_kw("SYSTEM") {
            let name = self.string_literal()?;
            self.expect(&Token::Eq)?;
            let value = self.string_literal()?;
            return Ok(Statement::AlterSystem { name, value });
        }
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

    /// A topic name, quoted or not; unquoted names keep their case too, as Kafka topic
    /// names are case-sensitive.
    pub(super) fn topic_name(&mut self, hint: &str) -> PResult<Ident> {
        let pos = self.pos();
        let value = match self.peek().clone() {
            Token::SingleQuotedString(s) => s,
            Token::Word(w) => w.value,
            _ => return Err(self.error_here("expected a topic name", Some(hint))),
        };
        self.i += 1;
        Ok(Ident { value, pos })
    }

    pub(super) fn print(&mut self) -> PResult<Statement> {
        let topic = self.topic_name("PRINT 'topic' FROM BEGINNING LIMIT 10")?;
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
}
