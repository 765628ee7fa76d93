//! Emits `models.rs`: one serde type per named schema, the static regex of
//! every pattern, and the string and number rules constraints become.

use super::constraints::pattern_static;
use super::naming::snake;
use super::schema::{Field, Model, Models};
use std::fmt::Write;

/// The custom validator of a string array field's items.
fn items_fn(model: &str, field: &Field) -> String {
    format!("{}_{}_items", snake(model), field.rust_name.trim_start_matches("r#"))
}

/// Rust doc comment lines for free text.
pub fn doc_lines(out: &mut String, doc: Option<&str>) {
    if let Some(doc) = doc {
        for line in doc.trim().lines() {
            let _ = writeln!(out, "/// {}", line.trim_end());
        }
    }
}

/// The checks behind parameter constraints and string-array items: one
/// implementation, shared by the dispatcher and the models' custom validators.
const RUNTIME: &str = r#"
/// What the spec states about a string: length (in characters, as JSON Schema counts), pattern, allowed values.
#[derive(Debug)]
pub struct StringRule {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub length_message: &'static str,
    pub pattern: Option<&'static LazyLock<Regex>>,
    pub pattern_message: &'static str,
    pub one_of: &'static [&'static str],
    /// The errcode of a violation, when the spec names one (`x-errcode`).
    pub errcode: Option<&'static str>,
}

impl StringRule {
    /// What is wrong with `value`, in words that complete "X ...".
    pub fn check(&self, value: &str) -> Result<(), String> {
        if self.min_length.is_some() || self.max_length.is_some() {
            let n = value.chars().count();
            if self.min_length.is_some_and(|m| n < m) || self.max_length.is_some_and(|m| n > m) {
                return Err(self.length_message.to_string());
            }
        }
        if !self.one_of.is_empty() && !self.one_of.contains(&value) {
            return Err(format!("must be one of: {}", self.one_of.join(", ")));
        }
        if let Some(p) = self.pattern {
            if !p.is_match(value) {
                return Err(self.pattern_message.to_string());
            }
        }
        Ok(())
    }
}

/// What the spec states about a number: its range.
#[derive(Debug)]
pub struct NumberRule {
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub message: &'static str,
    /// The errcode of a violation, when the spec names one (`x-errcode`).
    pub errcode: Option<&'static str>,
}

impl NumberRule {
    /// What is wrong with `value`, in words that complete "X ...".
    pub fn check(&self, value: f64) -> Result<(), String> {
        if self.minimum.is_some_and(|m| value < m) || self.maximum.is_some_and(|m| value > m) {
            return Err(self.message.to_string());
        }
        Ok(())
    }
}

/// Checks every item of a string array, for the models' custom validators.
fn check_items(items: &[String], rule: &StringRule) -> Result<(), validator::ValidationError> {
    for (i, item) in items.iter().enumerate() {
        if let Err(why) = rule.check(item) {
            return Err(validator::ValidationError::new(rule.errcode.unwrap_or("items"))
                .with_message(format!("item {i} {why}").into()));
        }
    }
    Ok(())
}
"#;

pub fn emit(models: &Models) -> String {
    let mut out = String::new();
    out.push_str(
        "use regex::Regex;\nuse serde::{Deserialize, Serialize};\nuse std::sync::LazyLock;\nuse validator::Validate;\n\n\
         /// A JSON object whose fields the spec leaves open.\n\
         pub type JsonObject = serde_json::Map<String, serde_json::Value>;\n",
    );
    out.push_str(RUNTIME);
    out.push('\n');
    for pattern in &models.patterns {
        let _ = writeln!(
            out,
            "/// `{pattern}`\npub static {}: LazyLock<Regex> = LazyLock::new(|| Regex::new({pattern:?}).expect(\"the generator compiled this pattern\"));\n",
            pattern_static(pattern)
        );
    }
    for (name, model) in &models.items {
        match model {
            Model::Struct {
                doc,
                fields,
                deny_unknown,
            } => {
                doc_lines(&mut out, doc.as_deref());
                // All-optional bodies get `Default`, so a caller fills in one form of them.
                if fields.iter().all(|f| !f.required) {
                    out.push_str("#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate)]\n");
                } else {
                    out.push_str("#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]\n");
                }
                if *deny_unknown {
                    out.push_str("#[serde(deny_unknown_fields)]\n");
                }
                let _ = writeln!(out, "pub struct {name} {{");
                for f in fields {
                    doc_lines(&mut out, f.doc.as_deref());
                    let bare = f.rust_name.trim_start_matches("r#");
                    if bare != f.json_name {
                        let _ = writeln!(out, "#[serde(rename = {:?})]", f.json_name);
                    }
                    if !f.required {
                        out.push_str("#[serde(default, skip_serializing_if = \"Option::is_none\")]\n");
                    }
                    for v in &f.validations {
                        let _ = writeln!(out, "#[validate({v})]");
                    }
                    if f.item_rule.is_some() {
                        let _ = writeln!(out, "#[validate(custom(function = \"{}\"))]", items_fn(name, f));
                    }
                    let ty = if f.required {
                        f.ty.clone()
                    } else {
                        format!("Option<{}>", f.ty)
                    };
                    let _ = writeln!(out, "pub {}: {ty},", f.rust_name);
                }
                out.push_str("}\n\n");
                for f in fields {
                    if let Some(rule) = &f.item_rule {
                        let _ = writeln!(
                            out,
                            "fn {}(items: &[String]) -> Result<(), validator::ValidationError> {{\ncheck_items(items, &{})\n}}\n",
                            items_fn(name, f),
                            rule.string_rule("")
                        );
                    }
                }
            }
            Model::StringEnum { doc, values } => {
                doc_lines(&mut out, doc.as_deref());
                out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]\n");
                let _ = writeln!(out, "pub enum {name} {{");
                for v in values {
                    let _ = writeln!(out, "#[serde(rename = {v:?})]\n{},", super::naming::pascal(v));
                }
                out.push_str("}\n\n");
                let _ = writeln!(out, "impl {name} {{\n/// The value as the spec spells it.\npub fn as_str(&self) -> &'static str {{\nmatch self {{");
                for v in values {
                    let _ = writeln!(out, "Self::{} => {v:?},", super::naming::pascal(v));
                }
                out.push_str("}\n}\n}\n\n");
            }
        }
    }
    out
}
