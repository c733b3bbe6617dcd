//! Binds TRANSFORM, FILTER and REDUCE calls: checks the collection and lambda shapes,
//! types each lambda parameter from the collection (and REDUCE's initial state), binds
//! and compiles each body once in a scope of its parameters plus the enclosing query's
//! columns, and passes the enclosing columns a body uses as extra arguments.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr as DfExpr;

use super::SqlError;
use super::ast::{Expr, ExprKind, Pos};
use super::binder::{Binder, Scope, ScopeColumn};
use super::compile::compile;
use super::udf::{LambdaBody, LambdaKind, body_schema, lambda_call};
use crate::catalog::types::SqlType;

/// One lambda argument: its parameter names and body.
fn lambda_arg(e: &Expr, want: usize, name: &str) -> Result<(Vec<String>, Expr), SqlError> {
    match &e.kind {
        ExprKind::Lambda { params, body } if params.len() == want => Ok((params.clone(), (**body).clone())),
        ExprKind::Lambda { params, .. } => Err(SqlError::at(e.pos, format!("{name} expects a lambda with {want} parameter(s), found {}", params.len()), None)),
        _ => Err(SqlError::at(e.pos, format!("{name} expects a lambda expression here, e.g. x => x + 1"), None)),
    }
}

impl Binder<'_> {
    /// A lambda function call.
    pub(super) fn lambda_function(&self, name: &str, args: &[Expr], pos: Pos) -> Result<DfExpr, SqlError> {
        let usage = || {
            Some(
                "TRANSFORM(array, x => ...), TRANSFORM(map, (k, v) => key, (k, v) => value), FILTER(array, x => ...), \
                 FILTER(map, (k, v) => ...), REDUCE(array, initial, (s, x) => ...), REDUCE(map, initial, (s, k, v) => ...)"
                    .to_string(),
            )
        };
        let Some(first) = args.first() else {
            return Err(SqlError::at(pos, format!("{name} needs a collection and a lambda"), usage()));
        };
        let coll = self.bind(first)?;
        let coll_ty = self.type_of(&coll)?;
        type Lambdas = Vec<(Vec<String>, Expr)>;
        let (kind, lambdas, mut call_args, param_types): (LambdaKind, Lambdas, Vec<DfExpr>, Vec<SqlType>) = match (name, &coll_ty, args.len()) {
            ("TRANSFORM", SqlType::Array(e), 2) => (LambdaKind::TransformArray, vec![lambda_arg(&args[1], 1, name)?], vec![coll], vec![(**e).clone()]),
            ("FILTER", SqlType::Array(e), 2) => (LambdaKind::FilterArray, vec![lambda_arg(&args[1], 1, name)?], vec![coll], vec![(**e).clone()]),
            ("TRANSFORM", SqlType::Map(k, v), 3) => {
                (LambdaKind::TransformMap, vec![lambda_arg(&args[1], 2, name)?, lambda_arg(&args[2], 2, name)?], vec![coll], vec![(**k).clone(), (**v).clone()])
            }
            ("FILTER", SqlType::Map(k, v), 2) => (LambdaKind::FilterMap, vec![lambda_arg(&args[1], 2, name)?], vec![coll], vec![(**k).clone(), (**v).clone()]),
            ("REDUCE", SqlType::Array(e), 3) | ("REDUCE", SqlType::Map(e, _), 3) => {
                let init = self.bind(&args[1])?;
                let init_ty = self.type_of(&init)?;
                let (kind, mut types, n) = match &coll_ty {
                    SqlType::Map(_, v) => (LambdaKind::ReduceMap, vec![init_ty, (**e).clone(), (**v).clone()], 3),
                    _ => (LambdaKind::ReduceArray, vec![init_ty, (**e).clone()], 2),
                };
                let lambda = lambda_arg(&args[2], n, name)?;
                // The state takes the type the body gives it (`0` and `s + bigint` is BIGINT).
                let (_, body_ty) = self.lambda_body(&lambda, &types, None)?;
                if body_ty != types[0] {
                    types[0] = body_ty;
                }
                (kind, vec![lambda], vec![coll, init], types)
            }
            _ => {
                let sig: Vec<String> = args
                    .iter()
                    .map(|a| match &a.kind {
                        ExprKind::Lambda { .. } => "LAMBDA".to_string(),
                        _ => self.bind(a).and_then(|x| self.type_of(&x)).map(|t| t.to_string()).unwrap_or_else(|_| "?".into()),
                    })
                    .collect();
                return Err(SqlError::at(pos, format!("Function '{}' does not accept parameters ({}).", name.to_ascii_lowercase(), sig.join(", ")), usage()));
            }
        };

        // The enclosing columns any body uses, in schema order.
        let mut outer = BTreeSet::new();
        for l in &lambdas {
            let (bound, _) = self.lambda_body(l, &param_types, None)?;
            for c in bound.column_refs() {
                if !l.0.contains(&c.name) {
                    outer.insert(c.name.clone());
                }
            }
        }
        let outer_fields: Vec<Field> = self.scope.arrow_schema.fields().iter().filter(|f| outer.contains(f.name())).map(|f| f.as_ref().clone()).collect();

        let mut bodies = Vec::new();
        let mut body_types = Vec::new();
        for l in &lambdas {
            let (bound, _) = self.lambda_body(l, &param_types, None)?;
            let scope = self.lambda_scope(&l.0, &param_types, Some(&outer_fields))?;
            let compiled = compile(bound, &scope)?;
            body_types.push(compiled.ty.clone());
            bodies.push(LambdaBody { expr: compiled.physical().clone(), schema: scope.arrow_schema.clone(), params: l.0.len(), text: compiled.text.clone() });
        }
        let ret = match kind {
            LambdaKind::TransformArray => SqlType::Array(Box::new(body_types[0].clone())),
            LambdaKind::FilterArray | LambdaKind::FilterMap => {
                if body_types[0] != SqlType::Boolean {
                    return Err(SqlError::at(pos, format!("FILTER's lambda must return a BOOLEAN, found {}", body_types[0]), None));
                }
                coll_ty.clone()
            }
            LambdaKind::TransformMap => SqlType::Map(Box::new(body_types[0].clone()), Box::new(body_types[1].clone())),
            LambdaKind::ReduceArray | LambdaKind::ReduceMap => body_types[0].clone(),
        };
        call_args.extend(outer_fields.iter().map(|f| DfExpr::Column(Column::new_unqualified(f.name().clone()))));
        Ok(lambda_call(name, kind, call_args, bodies, ret.to_arrow()))
    }

    /// A scope of the lambda's parameters followed by the enclosing columns (all of
    /// them, or only `outer` when given); parameters hide enclosing columns of the same
    /// name.
    fn lambda_scope(&self, params: &[String], types: &[SqlType], outer: Option<&[Field]>) -> Result<Scope, SqlError> {
        let typed: Vec<(String, DataType)> = params.iter().zip(types).map(|(p, t)| (p.clone(), t.to_arrow())).collect();
        let outer_fields: Vec<Field> = match outer {
            Some(f) => f.to_vec(),
            None => self.scope.arrow_schema.fields().iter().filter(|f| !params.contains(f.name())).map(|f| f.as_ref().clone()).collect(),
        };
        let schema = body_schema(&typed, &outer_fields);
        let df_schema = Arc::new(DFSchema::try_from(schema.as_ref().clone()).map_err(SqlError::internal)?);
        let mut columns: Vec<ScopeColumn> =
            params.iter().zip(types).map(|(p, t)| ScopeColumn { qualifier: None, name: p.clone(), field: p.clone(), ty: t.clone() }).collect();
        columns.extend(self.scope.columns.iter().filter(|c| !params.contains(&c.name) && outer_fields.iter().any(|f| f.name() == &c.field)).cloned());
        Ok(Scope { columns, df_schema, arrow_schema: schema })
    }

    /// Binds a lambda body with its parameters typed; returns it and its type.
    fn lambda_body(&self, l: &(Vec<String>, Expr), types: &[SqlType], outer: Option<&[Field]>) -> Result<(DfExpr, SqlType), SqlError> {
        let scope = self.lambda_scope(&l.0, types, outer)?;
        let b = Binder { scope: &scope };
        let bound = b.bind(&l.1)?;
        let ty = b.type_of(&bound)?;
        Ok((bound, ty))
    }
}
