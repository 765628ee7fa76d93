//! JSON Schema (the Swagger 2.0 subset) to Rust types.
//!
//! Supported: `type` string, integer, number, boolean, array (with `items`),
//! object (with `properties`, `required`, `additionalProperties`), string
//! `enum`, `$ref`, and the constraints minLength, maxLength, minItems,
//! maxItems, minimum and maximum (as `validator` derives). Anything else
//! that would change the shape (`allOf`, `oneOf`, `pattern`, ...) fails the
//! build, so a spec never silently means more than the code does.
//!
//! Unknown fields: ignored when reading, as the Matrix spec asks of servers
//! for forward compatibility, unless the schema says
//! `additionalProperties: false`, which becomes `deny_unknown_fields`.

use super::naming::{pascal, snake};
use super::spec::resolve_ref;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const KNOWN_KEYS: &[&str] = &[
    "type",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "$ref",
    "description",
    "title",
    "example",
    "x-example",
    "format",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "default",
];

/// A field of a generated struct.
pub struct Field {
    pub json_name: String,
    pub rust_name: String,
    pub ty: String,
    pub required: bool,
    pub doc: Option<String>,
    pub validations: Vec<String>,
}

/// One generated model.
pub enum Model {
    Struct {
        doc: Option<String>,
        fields: Vec<Field>,
        deny_unknown: bool,
    },
    StringEnum {
        doc: Option<String>,
        values: Vec<String>,
    },
}

/// Every model found while resolving schemas, by name, plus its origin to catch clashes.
#[derive(Default)]
pub struct Models {
    pub items: BTreeMap<String, Model>,
    origins: BTreeMap<String, String>,
    in_progress: Vec<String>,
}

/// A resolved Rust type and whether it is a generated struct (for nested validation).
pub struct RustType {
    pub ty: String,
    pub is_struct: bool,
}

impl RustType {
    fn plain(ty: &str) -> Self {
        RustType {
            ty: ty.to_string(),
            is_struct: false,
        }
    }
}

fn doc_of(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .or(schema.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Models {
    /// The Rust type for `schema`; inline objects and enums become models named `hint`.
    pub fn type_of(
        &mut self,
        schema: &Value,
        file: &Path,
        hint: &str,
        inputs: &mut Vec<PathBuf>,
    ) -> Result<RustType, String> {
        let obj = check_keywords(schema, hint, file)?;
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let resolved = resolve_ref(r, file, inputs)?;
            let origin = format!("{}#{}", resolved.file.display(), r.split('#').nth(1).unwrap_or(""));
            return self.named(&resolved.name, &origin, &resolved.schema, &resolved.file, inputs);
        }
        let origin = format!("{}:{hint}", file.display());
        match obj.get("type").and_then(Value::as_str) {
            None => Ok(RustType::plain("serde_json::Value")),
            Some("string") if obj.contains_key("enum") => self.named(hint, &origin, schema, file, inputs),
            Some("string") => Ok(RustType::plain("String")),
            Some("integer") => Ok(RustType::plain("i64")),
            Some("number") => Ok(RustType::plain("f64")),
            Some("boolean") => Ok(RustType::plain("bool")),
            Some("array") => {
                let items = obj.get("items").ok_or_else(|| format!("{hint}: array without items"))?;
                let inner = self.type_of(items, file, &format!("{hint}Item"), inputs)?;
                Ok(RustType {
                    ty: format!("Vec<{}>", inner.ty),
                    is_struct: false,
                })
            }
            Some("object") if obj.contains_key("properties") => self.named(hint, &origin, schema, file, inputs),
            Some("object") => match obj.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => {
                    let inner = self.type_of(extra, file, &format!("{hint}Value"), inputs)?;
                    Ok(RustType::plain(&format!(
                        "std::collections::BTreeMap<String, {}>",
                        inner.ty
                    )))
                }
                _ => Ok(RustType::plain("JsonObject")),
            },
            Some(other) => Err(format!("{hint}: type {other:?} is not supported by the generator")),
        }
    }

    fn named(
        &mut self,
        name: &str,
        origin: &str,
        schema: &Value,
        file: &Path,
        inputs: &mut Vec<PathBuf>,
    ) -> Result<RustType, String> {
        let is_struct = schema.get("type").and_then(Value::as_str) != Some("string");
        if self.in_progress.iter().any(|n| n == name) {
            return Ok(RustType {
                ty: format!("Box<{name}>"),
                is_struct,
            });
        }
        if let Some(prev) = self.origins.get(name) {
            if prev != origin {
                return Err(format!(
                    "two different schemas want the model name {name}: {prev} and {origin}"
                ));
            }
            return Ok(RustType {
                ty: name.to_string(),
                is_struct,
            });
        }
        self.origins.insert(name.to_string(), origin.to_string());
        self.in_progress.push(name.to_string());
        let model = self.build(name, schema, file, inputs)?;
        self.in_progress.pop();
        self.items.insert(name.to_string(), model);
        Ok(RustType {
            ty: name.to_string(),
            is_struct,
        })
    }

    fn build(&mut self, name: &str, schema: &Value, file: &Path, inputs: &mut Vec<PathBuf>) -> Result<Model, String> {
        check_keywords(schema, name, file)?;
        if let Some(values) = schema.get("enum") {
            let values = values
                .as_array()
                .and_then(|v| {
                    v.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| format!("{name}: only enums of strings are supported"))?;
            return Ok(Model::StringEnum {
                doc: doc_of(schema),
                values,
            });
        }
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{name}: a named model needs properties (or a string enum)"))?;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for r in &required {
            if !props.contains_key(*r) {
                return Err(format!("{name}: required field {r:?} is not among its properties"));
            }
        }
        let deny_unknown = match schema.get("additionalProperties") {
            None | Some(Value::Bool(true)) => false,
            Some(Value::Bool(false)) => true,
            Some(_) => {
                return Err(format!(
                    "{name}: additionalProperties with a schema beside properties is not supported"
                ))
            }
        };
        let mut fields = Vec::new();
        for (json_name, prop) in props {
            let hint = format!("{name}{}", pascal(json_name));
            let t = self.type_of(prop, file, &hint, inputs)?;
            let mut validations = constraints(prop, &format!("{name}.{json_name}"))?;
            if t.is_struct {
                validations.push("nested".to_string());
            }
            fields.push(Field {
                json_name: json_name.clone(),
                rust_name: snake(json_name),
                ty: t.ty,
                required: required.contains(&json_name.as_str()),
                doc: doc_of(prop),
                validations,
            });
        }
        Ok(Model::Struct {
            doc: doc_of(schema),
            fields,
            deny_unknown,
        })
    }
}

/// The schema as an object, refusing keywords the generator cannot express.
fn check_keywords<'a>(
    schema: &'a Value,
    hint: &str,
    file: &Path,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    let obj = schema
        .as_object()
        .ok_or_else(|| format!("{hint}: a schema must be an object, found {schema}"))?;
    for key in obj.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
            return Err(format!(
                "{hint}: schema keyword {key:?} is not supported by the generator ({})",
                file.display()
            ));
        }
    }
    Ok(obj)
}

/// `validator` attributes for a property's constraints.
fn constraints(prop: &Value, what: &str) -> Result<Vec<String>, String> {
    if prop.get("pattern").is_some() {
        return Err(format!("{what}: pattern is not supported by the generator"));
    }
    let num = |k: &str| prop.get(k).and_then(Value::as_f64);
    let int = |k: &str| prop.get(k).and_then(Value::as_u64);
    let mut out = Vec::new();
    let length = |min: Option<u64>, max: Option<u64>| {
        let mut parts = Vec::new();
        if let Some(m) = min {
            parts.push(format!("min = {m}"));
        }
        if let Some(m) = max {
            parts.push(format!("max = {m}"));
        }
        (!parts.is_empty()).then(|| format!("length({})", parts.join(", ")))
    };
    out.extend(length(int("minLength"), int("maxLength")));
    out.extend(length(int("minItems"), int("maxItems")));
    let mut range = Vec::new();
    let is_int = prop.get("type").and_then(Value::as_str) == Some("integer");
    for (k, key) in [("min", "minimum"), ("max", "maximum")] {
        if let Some(v) = num(key) {
            range.push(if is_int {
                format!("{k} = {}", v as i64)
            } else {
                format!("{k} = {v:?}")
            });
        }
    }
    if !range.is_empty() {
        out.push(format!("range({})", range.join(", ")));
    }
    Ok(out)
}
