//! The JSON Schema of the pipeline format (`flowctl schema`), generated from the same
//! table (`fields.rs`) the shape check uses, so editor completion and validation agree.

use super::fields::{Field, Ty, PIPELINE, STEP_COMMON, WINDOW_KINDS};
use serde_json::{json, Map, Value};

pub fn json_schema() -> Value {
    let mut root = object(PIPELINE);
    if let Value::Object(m) = &mut root {
        m.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
        m.insert("title".into(), json!("flowctl pipeline"));
    }
    root
}

fn object(fields: &[Field]) -> Value {
    object_of(fields.iter())
}

/// A closed object schema: these properties (with their docs), required as the table says.
fn object_of<'a>(fields: impl Iterator<Item = &'a Field> + Clone) -> Value {
    let mut props = Map::new();
    for field in fields.clone() {
        let mut schema = ty(&field.ty);
        if let Value::Object(m) = &mut schema {
            m.insert("description".into(), json!(field.doc));
        }
        props.insert(field.name.into(), schema);
    }
    let required: Vec<&str> = fields.filter(|f| f.required).map(|f| f.name).collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

fn ty(t: &Ty) -> Value {
    match t {
        Ty::Str | Ty::Expr | Ty::Aggregate => json!({"type": ["string", "number", "boolean"]}),
        Ty::Id => json!({"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}),
        Ty::IdList => json!({"anyOf": [ty(&Ty::Id), {"type": "array", "items": ty(&Ty::Id)}]}),
        Ty::NameList => json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
        Ty::Int => json!({"type": "integer"}),
        Ty::PosInt => json!({"type": "integer", "minimum": 1}),
        Ty::Parallelism => json!({"type": "integer", "minimum": 1, "maximum": super::fields::MAX_PARALLELISM}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Duration => json!({"type": "string", "pattern": DURATION_PATTERN}),
        Ty::Size => {
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+ ?(B|KB|MB|GB|KiB|MiB|GiB)?$"}]})
        }
        Ty::Enum(options) => json!({"enum": options}),
        Ty::Any => json!({}),
        Ty::List(item) => json!({"type": "array", "items": ty(item)}),
        Ty::Map(value) => json!({"type": "object", "additionalProperties": ty(value)}),
        Ty::Object(fields) => object(fields),
        Ty::AnyOf(alts) => json!({"anyOf": alts.iter().map(ty).collect::<Vec<_>>()}),
        Ty::Tagged { tag, variants } => json!({
            "type": "object",
            "oneOf": variants.iter().map(|v| {
                let mut s = object(v.fields);
                if let Value::Object(m) = &mut s {
                    if let Some(Value::Object(props)) = m.get_mut("properties") {
                        props.insert((*tag).into(), json!({"const": v.name, "description": v.doc}));
                    }
                }
                s
            }).collect::<Vec<_>>(),
        }),
        Ty::Steps => {
            let variants: Vec<Value> = super::fields::step_kinds()
                .map(|kind| {
                    // A step item: the common keys plus its one (required) kind key.
                    let mut schema = object_of(STEP_COMMON.iter().chain(std::iter::once(kind)));
                    schema["required"] = json!([kind.name]);
                    schema
                })
                .collect();
            json!({"type": "array", "items": {"oneOf": variants}, "description": format!("Window kinds: {}", WINDOW_KINDS.join(", "))})
        }
    }
}
