//! Emits `swagger.json`: every document merged into one Swagger 2.0 document
//! with all `$ref`s pointing into its own `definitions`, for contract tools
//! and client generators that want a single file.

use super::ir::Api;
use super::naming::operation_name;
use super::spec::resolve_ref;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rewrites every `$ref` under `v` into `#/definitions/Name`, collecting the definitions.
fn inline_refs(
    v: &mut Value,
    file: &Path,
    defs: &mut BTreeMap<String, Value>,
    inputs: &mut Vec<PathBuf>,
) -> Result<(), String> {
    match v {
        Value::Object(obj) => {
            if let Some(r) = obj.get("$ref").and_then(Value::as_str).map(str::to_string) {
                if !r.starts_with("#/definitions/") || file.extension().is_some() {
                    let resolved = resolve_ref(&r, file, inputs)?;
                    if !defs.contains_key(&resolved.name) {
                        defs.insert(resolved.name.clone(), Value::Null);
                        let mut schema = resolved.schema;
                        inline_refs(&mut schema, &resolved.file, defs, inputs)?;
                        defs.insert(resolved.name.clone(), schema);
                    }
                    obj.insert("$ref".into(), Value::String(format!("#/definitions/{}", resolved.name)));
                }
                return Ok(());
            }
            for (_, child) in obj.iter_mut() {
                inline_refs(child, file, defs, inputs)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|c| inline_refs(c, file, defs, inputs)),
        _ => Ok(()),
    }
}

/// The basePath most operations share: the merged document can only have one.
pub fn main_base_path(api: &Api) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &api.operations {
        *counts.entry(op.base_path.as_str()).or_default() += 1;
    }
    let best = counts.values().copied().max().unwrap_or(0);
    api.operations
        .iter()
        .map(|o| o.base_path.as_str())
        .find(|b| counts[b] == best)
        .unwrap_or("")
        .to_string()
}

pub fn emit(api: &Api, docs: &[(PathBuf, Value)]) -> Result<String, String> {
    let base_path = main_base_path(api);
    let mut defs = BTreeMap::new();
    let mut inputs = Vec::new();
    let mut paths: Map<String, Value> = Map::new();
    let mut omitted = Vec::new();
    let doc_file = |name: &str| -> &Path {
        docs.iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(p, _)| p.as_path())
            .unwrap_or(Path::new("."))
    };
    let mut security_definitions = Map::new();
    for (path, doc) in docs {
        if let Some(sd) = doc.get("securityDefinitions").and_then(Value::as_object) {
            for (k, v) in sd {
                security_definitions.insert(k.clone(), v.clone());
            }
        }
        let _ = path;
    }
    for op in &api.operations {
        if op.base_path != base_path {
            omitted.push(format!("{} {}{}", op.method, op.base_path, op.path));
            continue;
        }
        let file = doc_file(&op.doc_name);
        let mut raw = op.raw.clone();
        if let Some(responses) = raw.get_mut("responses").and_then(Value::as_object_mut) {
            for (code, resp) in responses.iter_mut() {
                let is_error = code.parse::<u16>().is_ok_and(|s| s >= 400);
                if is_error && resp.get("schema").is_none() {
                    resp["schema"] = json!({"$ref": "definitions/error.yaml"});
                }
            }
        }
        if op.requires_auth && raw.get("security").is_none() {
            if let Some(global) = docs
                .iter()
                .find(|(p, _)| p.as_path() == file)
                .and_then(|(_, d)| d.get("security"))
            {
                raw["security"] = global.clone();
            }
        }
        inline_refs(&mut raw, file, &mut defs, &mut inputs)?;
        let mut templates = vec![(op.path.clone(), op.name.clone())];
        templates.extend(
            op.aliases
                .iter()
                .map(|a| (a.clone(), operation_name(None, &op.method, a))),
        );
        for (template, id) in templates {
            let mut entry = raw.clone();
            entry["operationId"] = Value::String(id);
            let item = paths.entry(template).or_insert_with(|| json!({}));
            item[op.method.to_lowercase()] = entry;
        }
    }
    let mut description =
        String::from("All of api-spec/ merged into one document by build.rs. Generated: do not edit.");
    if !omitted.is_empty() {
        // Sorted: the operations' order follows map order, which differs between build and tests.
        omitted.sort();
        description.push_str(&format!(
            " Operations outside the basePath {base_path} are served but cannot be written here: {}.",
            omitted.join(", ")
        ));
    }
    let doc = json!({
        "swagger": "2.0",
        "info": {
            "title": "Matrix Client-Server Room Membership API (merged)",
            "version": "1.0.0",
            "description": description,
        },
        "host": "localhost:8008",
        "schemes": ["http", "https"],
        "basePath": base_path,
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": security_definitions,
        "paths": paths,
        "definitions": defs,
    });
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}
