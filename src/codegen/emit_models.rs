//! Emits `models.rs`: one serde type per named schema.

use super::schema::{Model, Models};
use std::fmt::Write;

/// Rust doc comment lines for free text.
pub fn doc_lines(out: &mut String, doc: Option<&str>) {
    if let Some(doc) = doc {
        for line in doc.trim().lines() {
            let _ = writeln!(out, "/// {}", line.trim_end());
        }
    }
}

pub fn emit(models: &Models) -> String {
    let mut out = String::new();
    out.push_str(
        "use serde::{Deserialize, Serialize};\nuse validator::Validate;\n\n\
         /// A JSON object whose fields the spec leaves open.\n\
         pub type JsonObject = serde_json::Map<String, serde_json::Value>;\n\n",
    );
    for (name, model) in &models.items {
        match model {
            Model::Struct {
                doc,
                fields,
                deny_unknown,
            } => {
                doc_lines(&mut out, doc.as_deref());
                out.push_str("#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]\n");
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
                    let ty = if f.required {
                        f.ty.clone()
                    } else {
                        format!("Option<{}>", f.ty)
                    };
                    let _ = writeln!(out, "pub {}: {ty},", f.rust_name);
                }
                out.push_str("}\n\n");
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
