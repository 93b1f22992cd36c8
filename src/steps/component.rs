//! Steps defined whole in one file (Vector's config + build pattern): a
//! [`StepType`] gives the step's YAML key, shape and doc and reads its configuration
//! ([`StepConfig`]); the configuration checks and compiles itself against what is
//! known of its input into a [`BuiltStep`], which makes the step's [`Operator`]. The
//! registry (`steps/registry.rs`) lists the types, one line each; the shape checker,
//! `flowctl schema`, docs/reference.md, validation, the planner, checkpoints and the
//! runtime reach a step only through these traits. The runtime sees the built step,
//! never the spanned YAML.

use super::Operator;
use crate::diag::Diagnostics;
use crate::expr::{self, Expr, Scope};
use crate::record::Schema;
use crate::spec::fields::Field;
use crate::spec::model::StepReader;
use crate::spec::node::Span;
use crate::spec::{ExprSpec, Spanned};
use std::sync::Arc;

/// A kind of step.
pub struct StepType {
    /// The step's key in a `steps:` item, its shape and doc (read by the shape
    /// checker, `flowctl schema` and docs/reference.md).
    pub field: Field,
    /// Reads the configuration from the step's body (already shape-checked); what it
    /// cannot take goes to `diags` at its line and column.
    pub parse: fn(&StepReader, &mut Diagnostics) -> Option<Arc<dyn StepConfig>>,
}

/// A step's configuration as the user wrote it (with positions for messages).
pub trait StepConfig: std::fmt::Debug + Send + Sync {
    /// The step's kind (its YAML key).
    fn kind(&self) -> &'static str;

    /// What it does, in one line, for `flowctl plan`.
    fn describe(&self) -> String;

    /// Whether it keeps state per key, so that a `key_by` may feed it (the steps after
    /// a `key_by` run on parallel instances that own the keys).
    fn keyed(&self) -> bool {
        false
    }

    /// Checks the configuration against its input and compiles its expressions; None
    /// when it added diagnostics.
    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled>;

    /// What it does in relational terms, for translations to other engines
    /// (`export/`); [`Relational::Opaque`] when it has no such form.
    fn relational(&self) -> Relational<'_> {
        Relational::Opaque
    }
}

/// A step as a relational operation over its input's columns (read by `export/`).
pub enum Relational<'a> {
    /// Keep the rows where the expression is true.
    Filter(&'a ExprSpec),
    /// Exactly these columns.
    Project(&'a [(Spanned<String>, ExprSpec)]),
    /// Overwrite or append these columns, keep the rest.
    Assign(&'a [(Spanned<String>, ExprSpec)]),
    /// Remove these columns.
    Remove(&'a [Spanned<String>]),
    /// One row per key: the first in arrival order, or (with `within`) per interval
    /// of event time; `keep_first` false keeps the interval's last.
    Dedup { key: &'a [ExprSpec], within: Option<&'a Spanned<std::time::Duration>>, keep_first: Spanned<bool> },
    /// One row per element of the list `each` gives: the input row with `as_field`
    /// set to the element.
    Unnest { each: &'a ExprSpec, as_field: &'a Spanned<String> },
    /// No relational form that a translation knows.
    Opaque,
}

impl PartialEq for dyn StepConfig {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.describe() == other.describe()
    }
}

/// A compiled step and the fields its records have.
pub struct Compiled {
    pub step: Arc<dyn BuiltStep>,
    pub output: Output,
}

/// The fields of a step's output records.
pub enum Output {
    /// Those of its input.
    Input,
    /// Exactly those of this layout, which the step's records carry (expressions
    /// downstream then resolve fields by index).
    Schema(Arc<Schema>),
    /// These (None: not known before the records come), in a layout of their own.
    Fields(Option<Vec<Arc<str>>>),
}

/// A step ready to run: makes its operator (one per thread that runs it).
pub trait BuiltStep: std::fmt::Debug + Send + Sync {
    fn operator(&self) -> Box<dyn Operator>;

    /// Every expression it evaluates on its input records (projection pushdown reads
    /// the fields they name).
    fn exprs(&self) -> Vec<&Expr>;

    /// What decides the meaning of its saved state: a checkpoint's state is restored
    /// only into a step with the same fingerprint. Stable across versions; not the
    /// text `flowctl plan` prints.
    fn fingerprint(&self) -> String;

    /// Whether it keeps nothing between records, so that it can run on the source
    /// lanes' threads at the head of the pipeline.
    fn stateless(&self) -> bool {
        false
    }

    /// Whether its output records are new ones carrying none of its input's other
    /// fields (then an output never sees the input whole).
    fn makes_new_records(&self) -> bool {
        false
    }

    /// How far behind the watermark that releases them its results can be, in
    /// milliseconds (the contract's hold-back, e.g. `dedup` with `keep: last`).
    fn holds_back(&self) -> Option<i64> {
        None
    }

    /// What it keeps between records, for `flowctl plan` (`none` when stateless).
    fn state(&self) -> &'static str {
        "none"
    }
}

/// What a step knows about its input when it compiles.
pub struct StepInput<'a> {
    /// The exact top-level fields, when known.
    pub fields: Option<&'a [Arc<str>]>,
    /// The layout records will usually have.
    pub schema: Option<Arc<Schema>>,
    /// The key of the `key_by` the input comes through: names and expressions.
    pub key_by: Option<(&'a [Arc<str>], &'a [Expr])>,
    /// Where the step's kind key is, for messages about the step as a whole.
    pub span: Span,
}

impl StepInput<'_> {
    /// Compiles an expression over the input's fields; errors at their positions.
    pub fn compile(&self, e: &ExprSpec, diags: &mut Diagnostics) -> Option<Expr> {
        match expr::compile(&e.text, &Scope { fields: self.fields, schema: self.schema.clone() }) {
            Ok(x) => Some(x),
            Err(errors) => {
                for err in errors {
                    diags.error(e.span_at(err.offset, 0), err.message, err.hint);
                }
                None
            }
        }
    }

    /// Compiles every expression of `list` (all errors reported).
    pub fn compile_all(&self, list: &[ExprSpec], diags: &mut Diagnostics) -> Option<Vec<Expr>> {
        let compiled: Vec<Option<Expr>> = list.iter().map(|e| self.compile(e, diags)).collect();
        compiled.into_iter().collect()
    }
}
