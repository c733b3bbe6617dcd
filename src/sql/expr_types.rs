//! The type of a bound expression (after DataFusion's type coercion), computed node by
//! node: each compound node is coerced and typed with its compound children stood in for
//! by columns of their types, then stands in for itself in its parent. Coercing and typing
//! a whole tree at once costs DataFusion a display name per node per visit (a string as long
//! as the subtree), so a statement nesting calls a few hundred deep took minutes; node by
//! node the cost is linear in the size of the tree. Literals stay literals (some
//! functions' types depend on literal arguments), and a stand-in column is, like any
//! compound argument, not a literal, so every node sees the arguments it would see in the
//! whole tree.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};

use super::SqlError;
use super::binder::coerce;

/// Prefix of the stand-in columns (a name no SQL column can have unquoted).
const STAND_IN: &str = "__eddy_typed_";

fn is_leaf(e: &DfExpr) -> bool {
    matches!(e, DfExpr::Column(_) | DfExpr::Literal(..) | DfExpr::ScalarVariable(..) | DfExpr::Placeholder(_))
}

/// The Arrow type `e` has over `schema` once coerced.
pub fn arrow_type_of(e: &DfExpr, schema: &DFSchema) -> Result<DataType, SqlError> {
    Ok(coerce_typed(e.clone(), schema)?.1)
}

/// `e` with DataFusion's type coercion applied (casts where operand types differ), and
/// its type.
pub fn coerce_typed(e: DfExpr, schema: &DFSchema) -> Result<(DfExpr, DataType), SqlError> {
    if is_leaf(&e) {
        let coerced = coerce(e, schema)?;
        let ty = coerced.get_type(schema).map_err(SqlError::internal)?;
        return Ok((coerced, ty));
    }
    // Each compound node, coerced alone, by stand-in name; it refers to its compound
    // children by their stand-ins.
    let mut done: Vec<(Field, Option<DfExpr>)> = Vec::new();
    let external = |e: SqlError| datafusion::error::DataFusionError::External(Box::new(e));
    let root = e
        .transform_up(|node| {
            if is_leaf(&node) {
                return Ok(Transformed::no(node));
            }
            let used: Vec<&Field> = stand_ins_of(&node).into_iter().filter_map(|i| done.get(i)).map(|(f, _)| f).collect();
            let node_schema = with_stand_ins(schema, &used).map_err(external)?;
            let coerced = coerce(node, &node_schema).map_err(external)?;
            let ty = coerced.get_type(&node_schema)?;
            let name = format!("{STAND_IN}{}", done.len());
            done.push((Field::new(&name, ty, true), Some(coerced)));
            Ok(Transformed::yes(DfExpr::Column(Column::new_unqualified(name))))
        })
        .map_err(SqlError::internal)?
        .data;
    let ty = done.last().map(|(f, _)| f.data_type().clone()).ok_or_else(|| SqlError::PlanInvariant("an expression without nodes"))?;
    // Put every node back in place of its stand-in, from the root down (each is moved,
    // not copied).
    let whole = root
        .transform_down(|node| match &node {
            DfExpr::Column(c) if c.relation.is_none() && c.name.starts_with(STAND_IN) => {
                let taken = c.name[STAND_IN.len()..].parse::<usize>().ok().and_then(|i| done.get_mut(i)).and_then(|(_, e)| e.take());
                match taken {
                    Some(e) => Ok(Transformed::yes(e)),
                    None => Ok(Transformed::no(node)),
                }
            }
            _ => Ok(Transformed::no(node)),
        })
        .map_err(SqlError::internal)?
        .data;
    Ok((whole, ty))
}

/// The stand-ins among `node`'s direct children, by number.
fn stand_ins_of(node: &DfExpr) -> Vec<usize> {
    let mut found = Vec::new();
    let _ = node.apply_children(|c| {
        if let DfExpr::Column(col) = c
            && col.relation.is_none()
            && let Some(n) = col.name.strip_prefix(STAND_IN).and_then(|n| n.parse().ok())
        {
            found.push(n);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

fn with_stand_ins(schema: &DFSchema, stand_ins: &[&Field]) -> Result<DFSchema, SqlError> {
    if stand_ins.is_empty() {
        return Ok(schema.clone());
    }
    let extra = DFSchema::from_unqualified_fields(stand_ins.iter().map(|f| Arc::new((*f).clone())).collect::<Vec<_>>().into(), Default::default())
        .map_err(SqlError::internal)?;
    let mut joined = schema.clone();
    joined.merge(&extra);
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use datafusion::logical_expr::lit;

    fn col(name: &str) -> DfExpr {
        DfExpr::Column(Column::new_unqualified(name))
    }

    fn schema() -> DFSchema {
        DFSchema::try_from(Schema::new(vec![Field::new("N", DataType::Int32, true), Field::new("S", DataType::Utf8, true)])).unwrap()
    }

    #[test]
    fn types_match_whole_tree_coercion() {
        let s = schema();
        let exprs = vec![
            col("N") + lit(1i64),
            (col("N") + lit(1i64)) * lit(2.5f64),
            datafusion::functions::math::expr_fn::abs(col("N") + lit(1i32)),
            datafusion::functions::string::expr_fn::concat(vec![col("S"), lit("x")]),
            (col("N") + lit(1i32)).gt(lit(3i64)).and(col("S").is_null()),
        ];
        for e in exprs {
            let whole = coerce(e.clone(), &s).unwrap();
            let (by_node, ty) = coerce_typed(e.clone(), &s).unwrap();
            assert_eq!(ty, whole.get_type(&s).unwrap(), "{e}");
            assert_eq!(by_node, whole, "coerced node by node as in one pass: {e}");
        }
    }

    #[test]
    fn a_tree_as_deep_as_the_parser_allows_is_typed() {
        let s = schema();
        // On a thread with the stack the server gives threads that plan statements.
        let typed = std::thread::Builder::new()
            .stack_size(crate::sql::ast::STATEMENT_THREAD_STACK_BYTES)
            .spawn(move || {
                let mut e = col("N");
                for _ in 0..crate::sql::ast::MAX_EXPRESSION_DEPTH {
                    e = datafusion::functions::math::expr_fn::abs(e);
                }
                arrow_type_of(&e, &s)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(typed.unwrap(), DataType::Int32);
    }
}
