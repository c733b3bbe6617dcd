//! Reusing pull-query plans across statements that differ only in their key literals.
//!
//! A feature-serving client sends `SELECT * FROM t WHERE id = 'k1'`, then `'k2'`, and so on:
//! same plan, different key. [`SqlShape`] scans a statement once (no parser) into its
//! shape — the text with every literal replaced by a placeholder — and its literals.
//! A [`PullTemplate`] remembers which literals of the statement it was planned from are
//! the looked-up key values; every other literal must be equal for the plan to apply.
//! [`PullPlanCache`] maps shapes to templates.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::ast::{Literal, Pos};
use super::pull::{PullAccess, PullPlan, key_product, key_value};

/// One literal of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeLiteral<'a> {
    /// Where it starts (line and column as the parser reports them, 1-based).
    pub pos: Pos,
    /// Its text as written, quotes included.
    pub raw: &'a str,
    pub value: Literal,
}

/// A statement as shape text plus its literals, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlShape<'a> {
    pub shape: String,
    pub literals: Vec<ShapeLiteral<'a>>,
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '@'
}

/// A position in the statement being scanned (a byte offset), counted in lines and
/// characters the way the parser counts.
struct Cursor<'a> {
    text: &'a str,
    i: usize,
    line: u64,
    column: u64,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.i..].chars().next()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.text[self.i..].chars().nth(ahead)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn text(&self, from: usize) -> &'a str {
        &self.text[from..self.i]
    }
}

impl<'a> SqlShape<'a> {
    /// Scans `text`. `None` when it has something the scanner does not handle exactly as the
    /// parser would (comments, escapes, unterminated quotes, carriage returns): such a
    /// statement is simply planned every time.
    pub fn scan(text: &'a str) -> Option<SqlShape<'a>> {
        let mut cur = Cursor { text, i: 0, line: 1, column: 1 };
        let mut shape = String::with_capacity(text.len());
        let mut literals = Vec::new();
        let mut pending_space = false;
        while let Some(c) = cur.peek() {
            if c == '\r' || c == '\\' {
                return None;
            }
            if c.is_whitespace() {
                pending_space = !shape.is_empty();
                cur.bump();
                continue;
            }
            if pending_space {
                shape.push(' ');
                pending_space = false;
            }
            let next = cur.peek_at(1);
            if (c == '-' && next == Some('-')) || (c == '/' && next == Some('*')) {
                return None;
            }
            let pos = cur.pos();
            let start = cur.i;
            if c == '\'' {
                cur.bump();
                // The value is the text between the quotes unless a doubled quote must be
                // undoubled.
                let mut doubled = false;
                loop {
                    let ch = cur.bump()?;
                    if ch == '\\' || ch == '\r' {
                        return None;
                    }
                    if ch == '\'' {
                        if cur.peek() == Some('\'') {
                            cur.bump();
                            doubled = true;
                            continue;
                        }
                        break;
                    }
                }
                let raw = cur.text(start);
                let inner = &raw[1..raw.len() - 1];
                let value = if doubled { inner.replace("''", "'") } else { inner.to_string() };
                shape.push_str("?s");
                literals.push(ShapeLiteral { pos, raw, value: Literal::String(value) });
            } else if c == '"' || c == '`' {
                // A quoted identifier: part of the shape as written.
                cur.bump();
                loop {
                    let ch = cur.bump()?;
                    if ch == '\r' {
                        return None;
                    }
                    if ch == c {
                        break;
                    }
                }
                shape.push_str(cur.text(start));
            } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit()) && !shape.ends_with(ident_char)) {
                while cur.peek().is_some_and(|d| d.is_ascii_digit() || d == '.') {
                    cur.bump();
                }
                if matches!(cur.peek(), Some('e' | 'E')) {
                    cur.bump();
                    if matches!(cur.peek(), Some('+' | '-')) {
                        cur.bump();
                    }
                    while cur.peek().is_some_and(|d| d.is_ascii_digit()) {
                        cur.bump();
                    }
                }
                if cur.peek().is_some_and(ident_char) {
                    return None;
                }
                let raw = cur.text(start);
                let value = if raw.contains(['e', 'E']) {
                    Literal::Double(raw.parse().ok()?)
                } else if raw.contains('.') {
                    Literal::Decimal(raw.to_string())
                } else {
                    Literal::Integer(raw.parse().ok()?)
                };
                shape.push_str("?n");
                literals.push(ShapeLiteral { pos, raw, value });
            } else if ident_char(c) {
                while cur.peek().is_some_and(ident_char) {
                    cur.bump();
                }
                shape.push_str(cur.text(start));
            } else {
                cur.bump();
                shape.push(c);
            }
        }
        Some(SqlShape { shape, literals })
    }
}

/// A plan plus which literals of its statement are key values.
#[derive(Debug)]
pub struct PullTemplate {
    pub plan: Arc<PullPlan>,
    /// Per key column, the indexes (into the statement's literals) of its values; empty
    /// when the plan does not look keys up (then every literal is fixed).
    slots: Vec<Vec<usize>>,
    /// Literals the plan depends on: their index and text must match.
    fixed: Vec<(usize, String)>,
    literal_count: usize,
}

impl PullTemplate {
    /// The template of `plan`, planned from the statement `shape` was scanned from.
    pub fn new(plan: Arc<PullPlan>, shape: &SqlShape) -> PullTemplate {
        let mut slots: Vec<Vec<usize>> = Vec::new();
        if matches!(plan.access, PullAccess::KeyLookup(_)) && !plan.key_literals.is_empty() {
            let found: Option<Vec<Vec<usize>>> =
                plan.key_literals.iter().map(|col| col.iter().map(|p| shape.literals.iter().position(|l| l.pos == *p)).collect()).collect();
            if let Some(found) = found {
                let mut used: Vec<usize> = found.iter().flatten().copied().collect();
                let n = used.len();
                used.sort_unstable();
                used.dedup();
                if used.len() == n {
                    slots = found;
                }
            }
        }
        let fixed = shape.literals.iter().enumerate().filter(|(i, _)| !slots.iter().any(|s| s.contains(i))).map(|(i, l)| (i, l.raw.to_string())).collect();
        PullTemplate { plan, slots, fixed, literal_count: shape.literals.len() }
    }

    /// How the plan reads rows for the statement `shape` was scanned from, if it applies.
    pub fn bind(&self, shape: &SqlShape) -> Option<PullAccess> {
        if shape.literals.len() != self.literal_count || self.fixed.iter().any(|(i, raw)| shape.literals[*i].raw != raw.as_str()) {
            return None;
        }
        if self.slots.is_empty() {
            return Some(self.plan.access.clone());
        }
        let mut per_column = Vec::with_capacity(self.slots.len());
        for (slots, col) in self.slots.iter().zip(self.plan.table.schema.key_columns()) {
            let mut vals = Vec::with_capacity(slots.len());
            for &i in slots {
                let l = &shape.literals[i];
                vals.push(key_value(&l.value, &col.ty, &col.name, l.pos).ok()?);
            }
            per_column.push(vals);
        }
        Some(PullAccess::KeyLookup(key_product(&per_column)))
    }
}

/// Templates kept at most; the cache is emptied when full.
const MAX_TEMPLATES: usize = 1024;

/// Pull-query templates by statement shape; emptied whenever the catalog changes.
#[derive(Default)]
pub struct PullPlanCache {
    /// Read by every pull query, written only when a new shape is planned.
    by_shape: RwLock<Templates>,
}

#[derive(Default)]
struct Templates {
    count: usize,
    /// Bumped by every `clear`, so a plan made before a catalog change is not cached after it.
    generation: u64,
    map: HashMap<String, Vec<Arc<PullTemplate>>, foldhash::fast::RandomState>,
}

impl PullPlanCache {
    /// The plan and access path for a statement, if a cached template applies.
    pub fn lookup(&self, shape: &SqlShape) -> Option<(Arc<PullPlan>, PullAccess)> {
        let templates = self.by_shape.read();
        templates.map.get(&shape.shape)?.iter().find_map(|t| t.bind(shape).map(|a| (t.plan.clone(), a)))
    }

    /// The current generation; pass it to `insert` for a plan made after this call.
    pub fn generation(&self) -> u64 {
        self.by_shape.read().generation
    }

    /// Caches a template planned at `generation` (dropped if the catalog changed since).
    pub fn insert(&self, shape: &SqlShape, template: PullTemplate, generation: u64) {
        let mut t = self.by_shape.write();
        if t.generation != generation {
            return;
        }
        if t.count >= MAX_TEMPLATES {
            t.map.clear();
            t.count = 0;
        }
        t.count += 1;
        t.map.entry(shape.shape.clone()).or_default().push(Arc::new(template));
    }

    pub fn clear(&self) {
        let mut t = self.by_shape.write();
        t.count = 0;
        t.generation += 1;
        t.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_replaces_literals_and_keeps_the_rest() {
        let s = SqlShape::scan("SELECT * FROM t  WHERE id = 'k''1' AND n IN (1, 2.5, 3e2) LIMIT 5;").unwrap();
        assert_eq!(s.shape, "SELECT * FROM t WHERE id = ?s AND n IN (?n, ?n, ?n) LIMIT ?n;");
        let values: Vec<Literal> = s.literals.iter().map(|l| l.value.clone()).collect();
        assert_eq!(
            values,
            vec![Literal::String("k'1".into()), Literal::Integer(1), Literal::Decimal("2.5".into()), Literal::Double(300.0), Literal::Integer(5)]
        );
        assert_eq!(s.literals[0].pos, Pos { line: 1, column: 29 });
        assert_eq!(s.literals[0].raw, "'k''1'");
    }

    #[test]
    fn identifiers_with_digits_and_quoted_names_are_not_literals() {
        let s = SqlShape::scan("SELECT t2.c1, \"a 'b'\" FROM t2 WHERE x1 = 7").unwrap();
        assert_eq!(s.shape, "SELECT t2.c1, \"a 'b'\" FROM t2 WHERE x1 = ?n");
        assert_eq!(s.literals.len(), 1);
    }

    #[test]
    fn positions_follow_lines() {
        let s = SqlShape::scan("SELECT *\n  FROM t WHERE id =\n 'x';").unwrap();
        assert_eq!(s.literals[0].pos, Pos { line: 3, column: 2 });
        // Columns count characters, not bytes.
        let s = SqlShape::scan("SELECT * FROM tébé WHERE id = 'ü''x'").unwrap();
        assert_eq!(s.literals[0].pos, Pos { line: 1, column: 31 });
        assert_eq!(s.literals[0].raw, "'ü''x'");
        assert_eq!(s.literals[0].value, Literal::String("ü'x".into()));
        assert_eq!(s.shape, "SELECT * FROM tébé WHERE id = ?s");
    }

    fn catalog() -> crate::catalog::Catalog {
        use crate::catalog::types::{Column, ColumnKind, LogicalSchema, SqlType};
        use crate::catalog::{Catalog, DataSource, SourceKind};
        use crate::format::{FormatKind, FormatSpec};
        let fmt = FormatSpec::new(FormatKind::Json);
        let c = Catalog::default();
        let schema = LogicalSchema::new(vec![
            Column::new("ID", SqlType::String, ColumnKind::Key),
            Column::new("N", SqlType::Bigint, ColumnKind::Key),
            Column::new("V", SqlType::Bigint, ColumnKind::Value),
        ]);
        let t = DataSource {
            name: "T".into(),
            kind: SourceKind::Table,
            schema,
            topic: "t".into(),
            key_format: fmt.clone(),
            value_format: fmt,
            timestamp: None,
            sql: String::new(),
            read_only: false,
            window: None,
            window_size_ms: None,
        };
        c.add_source(t, false).unwrap();
        c
    }

    fn plan<'a>(sql: &'a str, catalog: &crate::catalog::Catalog) -> (SqlShape<'a>, PullTemplate) {
        let parsed = crate::sql::parser::parse(sql).unwrap().remove(0);
        let crate::sql::ast::Statement::Select(q) = parsed.statement else { panic!("not a select") };
        let plan = Arc::new(crate::sql::pull::plan_pull(&q, catalog).unwrap());
        let shape = SqlShape::scan(sql).unwrap();
        let t = PullTemplate::new(plan, &shape);
        (shape, t)
    }

    fn fresh_access(sql: &str, catalog: &crate::catalog::Catalog) -> PullAccess {
        plan(sql, catalog).1.plan.access.clone()
    }

    #[test]
    fn a_template_binds_other_key_literals_like_a_fresh_plan() {
        let c = catalog();
        let (_, t) = plan("SELECT * FROM t WHERE id IN ('a', 'b') AND n = 1 AND v > 10;", &c);
        assert_eq!(t.slots.len(), 2, "both key columns come from literals");
        for other in ["SELECT * FROM t WHERE id IN ('x', 'y') AND n = 7 AND v > 10;", "SELECT * FROM t WHERE id IN ('it''s', 'y')\n AND n = 42 AND v > 10;"] {
            let shape = SqlShape::scan(other).unwrap();
            assert_eq!(t.bind(&shape), Some(fresh_access(other, &c)), "{other}");
        }
        // A different non-key literal, a key literal of the wrong type: not this template.
        assert_eq!(t.bind(&SqlShape::scan("SELECT * FROM t WHERE id IN ('x', 'y') AND n = 7 AND v > 11;").unwrap()), None);
        assert_eq!(t.bind(&SqlShape::scan("SELECT * FROM t WHERE id IN ('x', 'y') AND n = 'z' AND v > 10;").unwrap()), None);
    }

    #[test]
    fn scans_cache_with_every_literal_fixed() {
        let c = catalog();
        let (shape, t) = plan("SELECT * FROM t WHERE v > 10 LIMIT 3;", &c);
        assert_eq!(t.bind(&shape), Some(PullAccess::Scan));
        assert_eq!(t.bind(&SqlShape::scan("SELECT * FROM t WHERE v > 10 LIMIT 4;").unwrap()), None);
        let cache = PullPlanCache::default();
        let generation = cache.generation();
        cache.insert(&shape, t, generation);
        assert!(cache.lookup(&shape).is_some());
        cache.clear();
        assert!(cache.lookup(&shape).is_none());
        let (_, stale) = plan("SELECT * FROM t WHERE v > 10 LIMIT 3;", &c);
        cache.insert(&shape, stale, generation);
        assert!(cache.lookup(&shape).is_none(), "a plan made before a catalog change is not cached");
    }

    #[test]
    fn comments_escapes_and_unterminated_strings_are_not_scanned() {
        assert!(SqlShape::scan("SELECT * FROM t -- c\nWHERE id = 'a'").is_none());
        assert!(SqlShape::scan("SELECT * FROM t /* c */").is_none());
        assert!(SqlShape::scan("SELECT * FROM t WHERE id = 'a\\'").is_none());
        assert!(SqlShape::scan("SELECT * FROM t WHERE id = 'a").is_none());
        assert!(SqlShape::scan("SELECT * FROM t WHERE id = 12abc").is_none());
    }
}
