//! The steps defined whole in their own files (`steps/component.rs`): one line each.

use super::component::StepType;

pub const STEP_TYPES: &[StepType] = &[
    super::filter::TYPE,
    super::map::TYPE,
    super::set::TYPE,
    super::drop::TYPE,
    super::flat_map::TYPE,
    super::dedup::TYPE,
];

/// The step type whose YAML key is `name`.
pub fn find(name: &str) -> Option<&'static StepType> {
    STEP_TYPES.iter().find(|t| t.field.name == name)
}
