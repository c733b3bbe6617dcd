//! Compiles bound DataFusion expressions once into physical expressions, typed with
//! ksqlDB's types and cast to their canonical Arrow representation.

use std::sync::Arc;

use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Cast, Expr as DfExpr};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

use super::SqlError;
use super::binder::Scope;
use crate::catalog::types::SqlType;

/// An expression ready to run on Arrow batches of its scope's schema.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    physical: Arc<dyn PhysicalExpr>,
    pub ty: SqlType,
    /// The expression as DataFusion prints it (for EXPLAIN).
    pub text: String,
}

impl CompiledExpr {
    /// Describes the expression (in EXPLAIN) as the statement wrote it, not as DataFusion
    /// prints its coerced form.
    pub fn written_as(mut self, e: &super::ast::Expr) -> Self {
        self.text = e.to_string();
        self
    }

    /// The physical expression; only `exec::expr` evaluates it.
    pub fn physical(&self) -> &Arc<dyn PhysicalExpr> {
        &self.physical
    }
}

/// Type-checks, coerces and compiles `e` for batches of `scope`.
pub fn compile(e: DfExpr, scope: &Scope) -> Result<CompiledExpr, SqlError> {
    let schema = &scope.df_schema;
    let (coerced, dt) = super::expr_types::coerce_typed(e, schema)?;
    let ty = SqlType::from_arrow(&dt).ok_or_else(|| SqlError::invalid(format!("expression has type {dt}, which ksqlDB types cannot represent"), None))?;
    let canonical = ty.to_arrow();
    let expr = if canonical != dt { DfExpr::Cast(Cast::new(Box::new(coerced), canonical)) } else { coerced };
    let text = expr.to_string();
    let props = ExecutionProps::new();
    let physical = create_physical_expr(&expr, schema, &props, &PhysicalPlanningContext::default()).map_err(SqlError::internal)?;
    Ok(CompiledExpr { physical, ty, text })
}
