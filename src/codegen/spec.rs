//! Loading `api-spec/`: YAML to JSON values, overlay merging and `$ref` lookup.
//!
//! Every `*.yaml` directly in the spec folder is one Swagger 2.0 document.
//! A file `NAME.overlay.yaml` is not a document of its own: it is merged into
//! `NAME.yaml` (see [`merge_overlay`]), so the seed can stay byte-for-byte as
//! it was handed over while we document what it leaves out.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One Swagger document after its overlay (if any) was merged in.
pub struct Document {
    /// File name relative to the spec folder, e.g. `membership.yaml`.
    pub name: String,
    pub path: PathBuf,
    pub value: Value,
}

/// All documents of a spec folder, plus every file that was read.
pub struct SpecSet {
    pub documents: Vec<Document>,
    pub inputs: Vec<PathBuf>,
}

/// Reads a YAML file into a JSON value; integer keys (response codes) become strings.
pub fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: not valid YAML: {e}", path.display()))?;
    yaml_to_json(yaml).map_err(|e| format!("{}: {e}", path.display()))
}

fn yaml_to_json(v: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => return Err(format!("YAML tags are not supported (found !{})", t.tag)),
    })
}

/// Merges an overlay into a document. Objects merge key by key, arrays are
/// appended to, and a scalar may only be restated with the same value: an
/// overlay adds to the seed, it never changes what the seed says.
///
/// A `parameters` list is the exception among arrays: Swagger identifies a
/// parameter by `(in, name)`, so an overlay entry with the `in` and `name` of
/// a seed parameter is merged into it by the same add-only rule (that is how
/// an overlay adds a `pattern` to a seed parameter or a property to a seed
/// body schema); any other entry is appended.
pub fn merge_overlay(base: &mut Value, overlay: Value, at: &str) -> Result<(), String> {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                let here = format!("{at}/{k}");
                match (b.get_mut(&k), v) {
                    (Some(Value::Array(existing)), Value::Array(added)) if k == "parameters" => {
                        merge_parameters(existing, added, &here)?
                    }
                    (Some(existing), v) => merge_overlay(existing, v, &here)?,
                    (None, v) => {
                        b.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        (Value::Array(b), Value::Array(o)) => {
            b.extend(o);
            Ok(())
        }
        (b, o) if *b == o => Ok(()),
        (b, o) => Err(format!("overlay changes {at} from {b} to {o}; an overlay may only add")),
    }
}

/// A parameter's identity in Swagger 2.0: where it travels and its name.
fn parameter_key(p: &Value) -> Option<(&str, &str)> {
    Some((p.get("in")?.as_str()?, p.get("name")?.as_str()?))
}

fn merge_parameters(base: &mut Vec<Value>, added: Vec<Value>, at: &str) -> Result<(), String> {
    for param in added {
        let position = parameter_key(&param).and_then(|key| base.iter().position(|b| parameter_key(b) == Some(key)));
        match position {
            Some(i) => {
                let (place, name) = parameter_key(&param).unwrap_or_default();
                let here = format!("{at}/{place}:{name}");
                merge_overlay(&mut base[i], param, &here)?;
            }
            None => base.push(param),
        }
    }
    Ok(())
}

/// Loads every document in `dir`, sorted by file name for deterministic output.
pub fn load(dir: &Path) -> Result<SpecSet, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    let mut inputs = Vec::new();
    let mut documents = Vec::new();
    for name in names.iter().filter(|n| !is_overlay(n)) {
        let path = dir.join(name);
        let mut value = read_yaml(&path)?;
        inputs.push(path.clone());
        let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
        for overlay in names.iter().filter(|n| is_overlay(n) && overlay_target(n) == stem) {
            let opath = dir.join(overlay);
            merge_overlay(&mut value, read_yaml(&opath)?, "").map_err(|e| format!("{overlay}: {e}"))?;
            inputs.push(opath);
        }
        if value.get("swagger").and_then(Value::as_str) != Some("2.0") {
            return Err(format!(
                "{name}: only Swagger 2.0 documents are supported (swagger: '2.0')"
            ));
        }
        documents.push(Document {
            name: name.clone(),
            path,
            value,
        });
    }
    for overlay in names.iter().filter(|n| is_overlay(n)) {
        if !documents
            .iter()
            .any(|d| d.name.trim_end_matches(".yaml") == overlay_target(overlay))
        {
            return Err(format!(
                "{overlay}: overlay has no document {}.yaml to merge into",
                overlay_target(overlay)
            ));
        }
    }
    Ok(SpecSet { documents, inputs })
}

fn is_overlay(name: &str) -> bool {
    name.contains(".overlay.")
}

fn overlay_target(name: &str) -> &str {
    name.split(".overlay.").next().unwrap_or(name)
}

/// Where a `$ref` points: the schema, the file it lives in, and its model name.
pub struct Resolved {
    pub name: String,
    pub schema: Value,
    pub file: PathBuf,
}

/// Resolves `definitions/x.yaml`, `#/definitions/X` or `file.yaml#/definitions/X`
/// relative to the file that holds the reference.
pub fn resolve_ref(reference: &str, from_file: &Path, inputs: &mut Vec<PathBuf>) -> Result<Resolved, String> {
    let (file_part, fragment) = match reference.split_once('#') {
        Some((f, frag)) => (f, Some(frag)),
        None => (reference, None),
    };
    let file = if file_part.is_empty() {
        from_file.to_path_buf()
    } else {
        from_file.parent().unwrap_or(Path::new(".")).join(file_part)
    };
    let doc = read_yaml(&file).map_err(|e| format!("$ref {reference:?} from {}: {e}", from_file.display()))?;
    if !inputs.contains(&file) {
        inputs.push(file.clone());
    }
    match fragment {
        None => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Resolved {
                name: super::naming::pascal(&stem),
                schema: doc,
                file,
            })
        }
        Some(frag) => {
            let mut cur = &doc;
            for part in frag.trim_start_matches('/').split('/') {
                cur = cur.get(part).ok_or_else(|| {
                    format!(
                        "$ref {reference:?} from {}: no {part:?} in {}",
                        from_file.display(),
                        file.display()
                    )
                })?;
            }
            let last = frag.rsplit('/').next().unwrap_or(frag);
            Ok(Resolved {
                name: super::naming::pascal(last),
                schema: cur.clone(),
                file,
            })
        }
    }
}
