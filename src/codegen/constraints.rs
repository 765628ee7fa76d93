//! Constraints on a value: what `pattern`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `minItems`/`maxItems`, `format` and `enum` state for
//! a path or query parameter or a schema property, and the checks they
//! become.
//!
//! Schema properties get `validator` derives (`length`, `range`, `regex`
//! with a `LazyLock<Regex>` static); parameters and the items of string
//! arrays get a `StringRule` / `NumberRule` that the generated runtime
//! checks. A constraint that cannot be honoured fails the build:
//!
//! - a `pattern` the `regex` crate does not compile, or one using `\d`,
//!   `\w`, `\s` or `\b`, which are Unicode-aware in `regex` but ASCII in
//!   ECMA-262 (the dialect JSON Schema means), so server and spec would
//!   disagree: spell the class out, e.g. `[0-9]`;
//! - a `format` not in [`FORMATS`], or one that does not fit the type;
//! - a constraint on a type it does not apply to (`pattern` on an integer).
//!
//! A violation is 400 `M_INVALID_PARAM`, unless the parameter or property
//! names its own errcode with `x-errcode` (a username the grammar refuses is
//! `M_INVALID_USERNAME` in Matrix).

use serde_json::Value;

/// The formats the generator knows, with the type each applies to. `int32`
/// becomes a range check; the others only document the width or, for
/// `password`, tell a client not to show the value.
pub const FORMATS: &[(&str, &str)] = &[
    ("int32", "integer"),
    ("int64", "integer"),
    ("float", "number"),
    ("double", "number"),
    ("password", "string"),
];

/// Every constraint keyword this module reads.
pub const KEYWORDS: &[&str] = &[
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "format",
    "enum",
];

/// What a parameter or property states about its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<String>,
    /// After folding in the range a `format` such as `int32` implies.
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub integer: bool,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    /// A string `enum` of a parameter (schema enums become Rust enums instead).
    pub values: Vec<String>,
    /// The Matrix errcode of a violation, when not `M_INVALID_PARAM` (`x-errcode`).
    pub errcode: Option<String>,
}

/// What the build says about a pattern it cannot honour, or `None`.
pub fn pattern_problem(pattern: &str) -> Option<String> {
    for class in ["\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\b", "\\B"] {
        // An escaped backslash before the letter is a literal backslash, not the class.
        let mut rest = pattern;
        while let Some(i) = rest.find(class) {
            let backslashes = rest[..i].chars().rev().take_while(|c| *c == '\\').count();
            if backslashes % 2 == 0 {
                return Some(format!(
                    "pattern {pattern:?} uses {class}, which means one thing in ECMA-262 (the spec's \
                     dialect) and another in the regex crate; spell the class out, e.g. [0-9]"
                ));
            }
            rest = &rest[i + class.len()..];
        }
    }
    regex::Regex::new(pattern)
        .err()
        .map(|e| format!("pattern {pattern:?} does not compile: {e}"))
}

fn uint(obj: &Value, key: &str, what: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{what}: {key} must be a non-negative integer, found {v}")),
    }
}

fn number(obj: &Value, key: &str, what: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{what}: {key} must be a number, found {v}")),
    }
}

/// Reads the constraints of `obj` (a parameter or a schema) whose JSON type
/// is `ty`. `schema_enum` is true where a string `enum` becomes a Rust enum,
/// so it is not a runtime constraint.
pub fn read(obj: &Value, ty: Option<&str>, schema_enum: bool, what: &str) -> Result<Constraints, String> {
    let applies = |key: &str, types: &[&str]| -> Result<(), String> {
        if obj.get(key).is_some() && !ty.is_some_and(|t| types.contains(&t)) {
            return Err(format!(
                "{what}: {key} applies to type {} only, not to {}",
                types.join(" or "),
                ty.unwrap_or("a value without a type")
            ));
        }
        Ok(())
    };
    applies("pattern", &["string"])?;
    applies("minLength", &["string"])?;
    applies("maxLength", &["string"])?;
    applies("minimum", &["integer", "number"])?;
    applies("maximum", &["integer", "number"])?;
    applies("minItems", &["array"])?;
    applies("maxItems", &["array"])?;
    applies("enum", &["string"])?;
    let mut c = Constraints {
        min_length: uint(obj, "minLength", what)?,
        max_length: uint(obj, "maxLength", what)?,
        minimum: number(obj, "minimum", what)?,
        maximum: number(obj, "maximum", what)?,
        integer: ty == Some("integer"),
        min_items: uint(obj, "minItems", what)?,
        max_items: uint(obj, "maxItems", what)?,
        ..Constraints::default()
    };
    if let (Some(min), Some(max)) = (c.min_length, c.max_length) {
        if min > max {
            return Err(format!("{what}: minLength {min} is above maxLength {max}"));
        }
    }
    if let Some(p) = obj.get("pattern") {
        let p = p
            .as_str()
            .ok_or_else(|| format!("{what}: pattern must be a string, found {p}"))?;
        if let Some(problem) = pattern_problem(p) {
            return Err(format!("{what}: {problem}"));
        }
        c.pattern = Some(p.to_string());
    }
    if let Some(f) = obj.get("format") {
        let f = f
            .as_str()
            .ok_or_else(|| format!("{what}: format must be a string, found {f}"))?;
        let (_, fits) = FORMATS.iter().find(|(name, _)| *name == f).ok_or_else(|| {
            format!(
                "{what}: format {f:?} is not supported by the generator (known: {})",
                FORMATS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })?;
        if ty != Some(fits) {
            return Err(format!(
                "{what}: format {f:?} applies to type {fits}, not to {}",
                ty.unwrap_or("a value without a type")
            ));
        }
        if f == "int32" {
            let (lo, hi) = (f64::from(i32::MIN), f64::from(i32::MAX));
            c.minimum = Some(c.minimum.map_or(lo, |m| m.max(lo)));
            c.maximum = Some(c.maximum.map_or(hi, |m| m.min(hi)));
        }
    }
    if let Some(code) = obj.get("x-errcode") {
        let code = code
            .as_str()
            .filter(|c| {
                c.len() > 2 && c.starts_with("M_") && c[2..].chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')
            })
            .ok_or_else(|| {
                format!("{what}: x-errcode must be a Matrix errcode such as M_INVALID_USERNAME, found {code}")
            })?;
        c.errcode = Some(code.to_string());
    }
    if let Some(values) = obj.get("enum") {
        let values: Vec<String> = values
            .as_array()
            .and_then(|v| v.iter().map(|x| x.as_str().map(str::to_string)).collect())
            .ok_or_else(|| format!("{what}: only enums of strings are supported"))?;
        if values.is_empty() {
            return Err(format!("{what}: an enum needs at least one value"));
        }
        if !schema_enum {
            c.values = values;
        }
    }
    Ok(c)
}

/// The name of the `LazyLock<Regex>` static holding `pattern` in `models.rs`,
/// derived from the pattern itself (FNV-1a) so that it is the same whatever
/// order the spec is read in.
pub fn pattern_static(pattern: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in pattern.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("PATTERN_{hash:08X}")
}

fn length_message(min: Option<u64>, max: Option<u64>, unit: &str) -> String {
    match (min, max) {
        (Some(a), Some(b)) if a == b => format!("must be exactly {a} {unit} long"),
        (Some(a), Some(b)) => format!("must be {a} to {b} {unit} long"),
        (Some(a), None) => format!("must be at least {a} {unit} long"),
        (None, Some(b)) => format!("must be at most {b} {unit} long"),
        (None, None) => String::new(),
    }
}

fn bound(v: f64, integer: bool) -> String {
    if integer {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

fn range_message(c: &Constraints) -> String {
    let (lo, hi) = (
        c.minimum.map(|v| bound(v, c.integer)),
        c.maximum.map(|v| bound(v, c.integer)),
    );
    match (lo, hi) {
        (Some(a), Some(b)) => format!("must be between {a} and {b}"),
        (Some(a), None) => format!("must be at least {a}"),
        (None, Some(b)) => format!("must be at most {b}"),
        (None, None) => String::new(),
    }
}

fn pattern_message(p: &str) -> String {
    format!("must match the pattern {p}")
}

impl Constraints {
    /// Whether there is anything to check for a string.
    pub fn checks_strings(&self) -> bool {
        self.min_length.is_some() || self.max_length.is_some() || self.pattern.is_some() || !self.values.is_empty()
    }

    /// Whether there is anything to check for a number.
    pub fn checks_numbers(&self) -> bool {
        self.minimum.is_some() || self.maximum.is_some()
    }

    /// `validator` attribute arguments for a schema property, each with the
    /// message a client sees.
    pub fn validator_attrs(&self) -> Vec<String> {
        let code = self
            .errcode
            .as_ref()
            .map(|c| format!(", code = {c:?}"))
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut length = |min: Option<u64>, max: Option<u64>, unit: &str| {
            let mut parts = Vec::new();
            if let Some(m) = min {
                parts.push(format!("min = {m}"));
            }
            if let Some(m) = max {
                parts.push(format!("max = {m}"));
            }
            if !parts.is_empty() {
                parts.push(format!("message = {:?}", length_message(min, max, unit)));
                out.push(format!("length({}{code})", parts.join(", ")));
            }
        };
        length(self.min_length, self.max_length, "characters");
        length(self.min_items, self.max_items, "items");
        if self.checks_numbers() {
            let mut parts = Vec::new();
            if let Some(v) = self.minimum {
                parts.push(format!("min = {}", bound(v, self.integer)));
            }
            if let Some(v) = self.maximum {
                parts.push(format!("max = {}", bound(v, self.integer)));
            }
            parts.push(format!("message = {:?}", range_message(self)));
            out.push(format!("range({}{code})", parts.join(", ")));
        }
        if let Some(p) = &self.pattern {
            out.push(format!(
                "regex(path = *{}, message = {:?}{code})",
                pattern_static(p),
                pattern_message(p)
            ));
        }
        out
    }

    /// A `StringRule` literal for the generated runtime (`models::` is the models module).
    pub fn string_rule(&self, models: &str) -> String {
        let opt = |v: Option<u64>| v.map_or("None".to_string(), |n| format!("Some({n})"));
        let pattern = match &self.pattern {
            Some(p) => format!("Some(&{models}{})", pattern_static(p)),
            None => "None".into(),
        };
        let length = length_message(self.min_length, self.max_length, "characters");
        let pattern_msg = self.pattern.as_deref().map(pattern_message).unwrap_or_default();
        format!(
            "{models}StringRule {{ min_length: {}, max_length: {}, length_message: {length:?}, pattern: {pattern}, \
             pattern_message: {pattern_msg:?}, one_of: &[{}], errcode: {} }}",
            opt(self.min_length),
            opt(self.max_length),
            self.values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.errcode_expr()
        )
    }

    /// A `NumberRule` literal for the generated runtime.
    pub fn number_rule(&self, models: &str) -> String {
        let opt = |v: Option<f64>| v.map_or("None".to_string(), |n| format!("Some({n:?})"));
        format!(
            "{models}NumberRule {{ minimum: {}, maximum: {}, message: {:?}, errcode: {} }}",
            opt(self.minimum),
            opt(self.maximum),
            range_message(self),
            self.errcode_expr()
        )
    }

    fn errcode_expr(&self) -> String {
        self.errcode.as_ref().map_or("None".into(), |c| format!("Some({c:?})"))
    }
}
