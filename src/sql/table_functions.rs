//! Table functions in a SELECT list: `EXPLODE(array)` (one output row per element) and
//! `CUBE_EXPLODE(array)` (one row per distinct combination of the elements and nulls).
//! Each call is planned as a column `KSQL_TF_i` of an exploded batch: its argument is
//! compiled over the source, and the SELECT list refers to the column instead.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};

use super::SqlError;
use super::ast::{Expr, ExprKind};
use super::binder::{Binder, Scope};
use super::compile::{CompiledExpr, compile};
use crate::catalog::types::SqlType;

/// Which table function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFunctionKind {
    Explode,
    CubeExplode,
}

/// A table function call: its argument over the source, and the type of its column.
#[derive(Debug, Clone)]
pub struct TableFunction {
    pub kind: TableFunctionKind,
    pub arg: CompiledExpr,
    pub ty: SqlType,
}

pub fn kind_of(name: &str) -> Option<TableFunctionKind> {
    match name {
        "EXPLODE" => Some(TableFunctionKind::Explode),
        "CUBE_EXPLODE" => Some(TableFunctionKind::CubeExplode),
        _ => None,
    }
}

/// Whether an expression calls a table function.
pub fn contains_table_function(e: &Expr) -> bool {
    e.find_map(&mut |x| matches!(&x.kind, ExprKind::Function { name, .. } if kind_of(name).is_some()).then_some(())).is_some()
}

pub fn column_name(i: usize) -> String {
    format!("KSQL_TF_{i}")
}

/// Replaces table function calls in `e` by their columns, planning each call.
pub fn rewrite(e: &Expr, binder: &Binder<'_>, scope: &Scope, out: &mut Vec<TableFunction>) -> Result<Expr, SqlError> {
    if let ExprKind::Function { name, args, .. } = &e.kind
        && let Some(kind) = kind_of(name)
    {
        let bound = args.iter().map(|a| binder.bind(a)).collect::<Result<Vec<_>, _>>()?;
        let types = bound.iter().map(|b| binder.type_of(b)).collect::<Result<Vec<_>, _>>()?;
        let elem = match (types.as_slice(), &bound[..]) {
            ([SqlType::Array(elem)], [_]) => (**elem).clone(),
            _ => return Err(SqlError::at(e.pos, super::udf::not_accepted(name, &types), Some(format!("{name} takes one ARRAY")))),
        };
        let arg = compile(bound.into_iter().next().expect("one argument"), scope)?;
        let ty = match kind {
            TableFunctionKind::Explode => elem,
            TableFunctionKind::CubeExplode => SqlType::Array(Box::new(elem)),
        };
        out.push(TableFunction { kind, arg, ty });
        return Ok(Expr::new(ExprKind::Column { qualifier: None, name: column_name(out.len() - 1) }, e.pos));
    }
    e.map_children(&mut |c| rewrite(c, binder, scope, out))
}

/// The schema of an exploded batch: the source's columns with the table function
/// columns inserted before the three pseudo columns (ROWTIME, ROWPARTITION, ROWOFFSET).
pub fn exploded_schema(input: &SchemaRef, tfs: &[TableFunction]) -> SchemaRef {
    let fields = input.fields();
    let split = fields.len().saturating_sub(3);
    let mut out: Vec<Field> = fields[..split].iter().map(|f| f.as_ref().clone()).collect();
    out.extend(tfs.iter().enumerate().map(|(i, t)| Field::new(column_name(i), t.ty.to_arrow(), true)));
    out.extend(fields[split..].iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(out))
}
