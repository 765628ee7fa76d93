//! JSON Schema (the Swagger 2.0 subset) to Rust types.
//!
//! Supported: `type` string, integer, number, boolean, array (with `items`),
//! object (with `properties`, `required`, `additionalProperties`), string
//! `enum`, `$ref`, and the constraints of [`super::constraints`] (pattern,
//! minLength, maxLength, minItems, maxItems, minimum, maximum, format) as
//! `validator` derives. Anything else that would change the shape (`allOf`,
//! `oneOf`, `x-nullable`, ...) fails the build, so a spec never silently
//! means more than the code does.
//!
//! Each type also gets a [`Shape`]: the JSON type the schema states, which the
//! generated dispatcher checks before decoding, because serde's derived
//! structs also accept a JSON array and `Option` also accepts `null`.
//!
//! Unknown fields: ignored when reading, as the Matrix spec asks of servers
//! for forward compatibility, unless the schema says
//! `additionalProperties: false`, which becomes `deny_unknown_fields`.

use super::constraints::{self, Constraints};
use super::naming::{pascal, snake};
use super::spec::resolve_ref;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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
    "pattern",
    "default",
];

/// The JSON type a schema states for a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// No `type`: any JSON value, `null` included.
    Any,
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<Shape>),
    /// An object whose values all have one shape (`additionalProperties: {schema}`).
    Map(Box<Shape>),
    /// An object the spec leaves open.
    Object,
    /// A generated struct, by model name.
    Model(String),
}

/// A field of a generated struct.
pub struct Field {
    pub json_name: String,
    pub rust_name: String,
    pub ty: String,
    pub required: bool,
    pub doc: Option<String>,
    pub validations: Vec<String>,
    pub shape: Shape,
    /// Constraints on each item of a string array, checked by a generated function.
    pub item_rule: Option<Constraints>,
    /// The errcode the spec gives a violation of this field's constraints (`x-errcode`).
    pub errcode: Option<String>,
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
    /// Every `pattern` of a property or a parameter; each becomes one static regex.
    pub patterns: BTreeSet<String>,
}

/// A resolved Rust type, whether it is a generated struct (for nested
/// validation), and the JSON shape the schema states.
pub struct RustType {
    pub ty: String,
    pub is_struct: bool,
    pub shape: Shape,
}

impl RustType {
    fn plain(ty: &str, shape: Shape) -> Self {
        RustType {
            ty: ty.to_string(),
            is_struct: false,
            shape,
        }
    }
}

/// Fails for constraints in a place the generator cannot check them, so none is silently dropped.
fn refuse_constraints(schema: &Value, what: &str) -> Result<(), String> {
    let ty = schema.get("type").and_then(Value::as_str);
    let c = constraints::read(schema, ty, true, what)?;
    if c.checks_strings() || c.checks_numbers() || c.min_items.is_some() || c.max_items.is_some() {
        return Err(format!(
            "{what}: constraints here (inside a nested array or a map value) are not supported by the generator"
        ));
    }
    Ok(())
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
            None => Ok(RustType::plain("serde_json::Value", Shape::Any)),
            Some("string") if obj.contains_key("enum") => self.named(hint, &origin, schema, file, inputs),
            Some("string") => Ok(RustType::plain("String", Shape::String)),
            Some("integer") => Ok(RustType::plain("i64", Shape::Integer)),
            Some("number") => Ok(RustType::plain("f64", Shape::Number)),
            Some("boolean") => Ok(RustType::plain("bool", Shape::Boolean)),
            Some("array") => {
                let items = obj.get("items").ok_or_else(|| format!("{hint}: array without items"))?;
                if items.get("type").and_then(Value::as_str) == Some("array") {
                    if let Some(inner) = items.get("items") {
                        refuse_constraints(inner, &format!("{hint}: items of items ({})", file.display()))?;
                    }
                }
                let inner = self.type_of(items, file, &format!("{hint}Item"), inputs)?;
                Ok(RustType {
                    ty: format!("Vec<{}>", inner.ty),
                    is_struct: false,
                    shape: Shape::Array(Box::new(inner.shape)),
                })
            }
            Some("object") if obj.contains_key("properties") => self.named(hint, &origin, schema, file, inputs),
            Some("object") => match obj.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => {
                    refuse_constraints(extra, &format!("{hint}: additionalProperties ({})", file.display()))?;
                    let inner = self.type_of(extra, file, &format!("{hint}Value"), inputs)?;
                    Ok(RustType::plain(
                        &format!("std::collections::BTreeMap<String, {}>", inner.ty),
                        Shape::Map(Box::new(inner.shape)),
                    ))
                }
                _ => Ok(RustType::plain("JsonObject", Shape::Object)),
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
        let shape = if is_struct {
            Shape::Model(name.to_string())
        } else {
            Shape::String
        };
        if self.in_progress.iter().any(|n| n == name) {
            return Ok(RustType {
                ty: format!("Box<{name}>"),
                is_struct,
                shape,
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
                shape,
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
            shape,
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
        let mut required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for r in &required {
            if !props.contains_key(*r) {
                return Err(format!("{name}: required field {r:?} is not among its properties"));
            }
        }
        // A body that comes in alternative forms (an overlay can only add,
        // so it cannot take a seed's `required` back): every field of a form
        // is optional in the model, and the service checks that exactly one
        // form is complete.
        let in_a_form = fields_of_forms(schema, props, name)?;
        required.retain(|r| !in_a_form.contains(*r));
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
            let what = format!("{name}.{json_name} ({})", file.display());
            let t = self.type_of(prop, file, &hint, inputs)?;
            let ty = prop.get("type").and_then(Value::as_str);
            let own = constraints::read(prop, ty, true, &what)?;
            self.patterns.extend(own.pattern.clone());
            let mut validations = own.validator_attrs();
            let mut item_rule = None;
            let items_are_structs = matches!(&t.shape, Shape::Array(inner) if matches!(**inner, Shape::Model(_)));
            if t.is_struct || items_are_structs {
                validations.push("nested".to_string());
            }
            if let (Shape::Array(inner), Some(items)) = (&t.shape, prop.get("items")) {
                if **inner == Shape::String {
                    let mut rule = constraints::read(items, Some("string"), true, &format!("{what}: items"))?;
                    rule.errcode = rule.errcode.or(own.errcode.clone());
                    if rule.checks_strings() {
                        self.patterns.extend(rule.pattern.clone());
                        item_rule = Some(rule);
                    }
                }
            }
            fields.push(Field {
                json_name: json_name.clone(),
                rust_name: snake(json_name),
                ty: t.ty,
                required: required.contains(&json_name.as_str()),
                doc: doc_of(prop),
                validations,
                shape: t.shape,
                errcode: own
                    .errcode
                    .clone()
                    .or(item_rule.as_ref().and_then(|r| r.errcode.clone())),
                item_rule,
            });
        }
        Ok(Model::Struct {
            doc: doc_of(schema),
            fields,
            deny_unknown,
        })
    }
}

/// Every property named by `x-forms` (a list of lists of property names).
fn fields_of_forms(
    schema: &Value,
    props: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<BTreeSet<String>, String> {
    let Some(forms) = schema.get("x-forms") else {
        return Ok(BTreeSet::new());
    };
    let bad = || format!("{name}: x-forms must be a list of lists of property names");
    let mut out = BTreeSet::new();
    for form in forms.as_array().ok_or_else(bad)? {
        for field in form.as_array().ok_or_else(bad)? {
            let field = field.as_str().ok_or_else(bad)?;
            if !props.contains_key(field) {
                return Err(format!(
                    "{name}: x-forms names {field:?}, which is not among its properties"
                ));
            }
            out.insert(field.to_string());
        }
    }
    Ok(out)
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
        // x-nullable would tell clients and contract tools that null is
        // accepted, but the edge refuses null wherever the schema states a type.
        if (!KNOWN_KEYS.contains(&key.as_str()) && !key.starts_with("x-")) || key == "x-nullable" {
            return Err(format!(
                "{hint}: schema keyword {key:?} is not supported by the generator ({})",
                file.display()
            ));
        }
    }
    Ok(obj)
}
