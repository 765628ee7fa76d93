//! Tests of the code generator behind `build.rs`, run on the fixture spec in
//! `tests/fixtures/codegen/` (a Swagger document, its overlay and
//! `definitions/`), which uses every construct the generator supports.
//!
//! The generated Rust is parsed with `syn` and items are looked up by name,
//! so these tests do not depend on formatting or item order.
//!
//! Note: in this test crate `serde_json` is built without `preserve_order`
//! (only the build script enables it), so object keys iterate sorted here and
//! item order can differ from what `build.rs` writes; nothing below relies
//! on order except where the generator sorts explicitly.

#[path = "../src/codegen/mod.rs"]
#[allow(dead_code)]
mod codegen;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/codegen");

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The generator's output for a spec folder, by file name.
struct Output {
    files: BTreeMap<String, String>,
    inputs: Vec<PathBuf>,
}

impl Output {
    fn rust(&self, name: &str) -> syn::File {
        let code = self
            .files
            .get(name)
            .unwrap_or_else(|| panic!("the generator wrote no {name}"));
        syn::parse_file(code).unwrap_or_else(|e| panic!("{name} does not parse as Rust: {e}"))
    }

    fn swagger(&self) -> Value {
        let text = self
            .files
            .get("swagger.json")
            .expect("the generator wrote no swagger.json");
        serde_json::from_str(text).expect("swagger.json is not JSON")
    }
}

fn generate(dir: &Path) -> Output {
    let g = codegen::generate(dir).unwrap_or_else(|e| panic!("generating from {} failed: {e}", dir.display()));
    Output {
        files: g.files.into_iter().collect(),
        inputs: g.inputs,
    }
}

fn generate_err(dir: &Path) -> String {
    match codegen::generate(dir) {
        Ok(_) => panic!("generating from {} succeeded, but it should have failed", dir.display()),
        Err(e) => e,
    }
}

fn fixture() -> Output {
    generate(Path::new(FIXTURE))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A private copy of the fixture to edit.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURE), dir.path());
    dir
}

/// Rewrites a YAML file of a fixture copy through a JSON view of it.
fn edit_yaml(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value = codegen::spec::read_yaml(path).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_yaml_ng::to_string(&value).unwrap()).unwrap();
}

/// The fixture with one edit to `things.yaml`, generated; returns the error.
fn error_after_editing(file: &str, edit: impl FnOnce(&mut Value)) -> String {
    let dir = fixture_copy();
    edit_yaml(&dir.path().join(file), edit);
    generate_err(dir.path())
}

fn assert_mentions(error: &str, words: &[&str]) {
    for w in words {
        assert!(error.contains(w), "the error should name {w:?}, but it is: {error}");
    }
}

/// Source text without whitespace, for comparing types and attributes.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn unparse_item(item: syn::Item) -> String {
    prettyplease::unparse(&syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: vec![item],
    })
}

fn ty_str(ty: &syn::Type) -> String {
    let mut item: syn::ItemType = syn::parse_str("type T = ();").unwrap();
    item.ty = Box::new(ty.clone());
    let text = squash(&unparse_item(syn::Item::Type(item)));
    text.trim_start_matches("typeT=").trim_end_matches(';').to_string()
}

fn attrs_str(attrs: &[syn::Attribute]) -> String {
    let mut item: syn::ItemStruct = syn::parse_str("struct S;").unwrap();
    item.attrs = attrs.to_vec();
    squash(&unparse_item(syn::Item::Struct(item)))
}

fn find_struct<'a>(file: &'a syn::File, name: &str) -> &'a syn::ItemStruct {
    file.items
        .iter()
        .find_map(|i| match i {
            syn::Item::Struct(s) if s.ident == name => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no struct {name} was generated; structs: {:?}", item_names(file)))
}

fn find_enum<'a>(file: &'a syn::File, name: &str) -> &'a syn::ItemEnum {
    file.items
        .iter()
        .find_map(|i| match i {
            syn::Item::Enum(e) if e.ident == name => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no enum {name} was generated; items: {:?}", item_names(file)))
}

fn item_names(file: &syn::File) -> BTreeSet<String> {
    file.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Struct(s) => Some(format!("struct {}", s.ident)),
            syn::Item::Enum(e) => Some(format!("enum {}", e.ident)),
            syn::Item::Trait(t) => Some(format!("trait {}", t.ident)),
            syn::Item::Fn(f) => Some(format!("fn {}", f.sig.ident)),
            syn::Item::Const(c) => Some(format!("const {}", c.ident)),
            syn::Item::Type(t) => Some(format!("type {}", t.ident)),
            syn::Item::Impl(i) => Some(format!("impl {}", ty_str(&i.self_ty))),
            _ => None,
        })
        .collect()
}

/// The fields of a struct: rust name → (type, attributes).
fn fields(s: &syn::ItemStruct) -> BTreeMap<String, (String, String)> {
    s.fields
        .iter()
        .map(|f| {
            (
                f.ident.as_ref().unwrap().to_string(),
                (ty_str(&f.ty), attrs_str(&f.attrs)),
            )
        })
        .collect()
}

fn field(s: &syn::ItemStruct, name: &str) -> (String, String) {
    fields(s)
        .remove(name)
        .unwrap_or_else(|| panic!("struct {} has no field {name}; it has {:?}", s.ident, fields(s).keys()))
}

/// The variants of an enum: name → payload type (or "" for a unit variant).
fn variants(e: &syn::ItemEnum) -> BTreeMap<String, String> {
    e.variants
        .iter()
        .map(|v| {
            let payload = v.fields.iter().map(|f| ty_str(&f.ty)).collect::<Vec<_>>().join(",");
            (v.ident.to_string(), payload)
        })
        .collect()
}

/// The methods of `trait Api`: name → [(argument, type)] without `&self`.
fn api_methods(api: &syn::File) -> BTreeMap<String, Vec<(String, String)>> {
    let t = api
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Trait(t) if t.ident == "Api" => Some(t),
            _ => None,
        })
        .expect("api.rs has no trait Api");
    t.items
        .iter()
        .filter_map(|i| match i {
            syn::TraitItem::Fn(f) => Some(f),
            _ => None,
        })
        .map(|f| {
            let args = f
                .sig
                .inputs
                .iter()
                .filter_map(|a| match a {
                    syn::FnArg::Typed(p) => match &*p.pat {
                        syn::Pat::Ident(id) => Some((id.ident.to_string(), ty_str(&p.ty))),
                        _ => None,
                    },
                    syn::FnArg::Receiver(_) => None,
                })
                .collect();
            (f.sig.ident.to_string(), args)
        })
        .collect()
}

fn expr_str(e: &syn::Expr) -> String {
    let mut item: syn::ItemConst = syn::parse_str("const X: () = ();").unwrap();
    item.expr = Box::new(e.clone());
    let text = squash(&unparse_item(syn::Item::Const(item)));
    text.trim_start_matches("constX:()=").trim_end_matches(';').to_string()
}

fn lit_str(e: &syn::Expr) -> String {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s), ..
        }) => s.value(),
        syn::Expr::Path(p) => p.path.segments.last().unwrap().ident.to_string(),
        other => panic!("unexpected expression in the route table: {}", expr_str(other)),
    }
}

/// The rows of `ROUTES`: (method, base_path, template, operation variant).
fn route_rows(routes: &syn::File) -> Vec<(String, String, String, String)> {
    let c = routes
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Const(c) if c.ident == "ROUTES" => Some(c),
            _ => None,
        })
        .expect("routes.rs has no const ROUTES");
    let syn::Expr::Reference(r) = &*c.expr else {
        panic!("ROUTES is not &[...]")
    };
    let syn::Expr::Array(a) = &*r.expr else {
        panic!("ROUTES is not &[...]")
    };
    a.elems
        .iter()
        .map(|e| {
            let syn::Expr::Struct(s) = e else {
                panic!("a ROUTES row is not a struct literal")
            };
            let get = |name: &str| {
                let f = s
                    .fields
                    .iter()
                    .find(|f| matches!(&f.member, syn::Member::Named(i) if i == name))
                    .unwrap_or_else(|| panic!("a ROUTES row has no {name}"));
                lit_str(&f.expr)
            };
            (get("method"), get("base_path"), get("template"), get("operation"))
        })
        .collect()
}

/// The match arms of `impl Operation { fn <name>(self) }`: variant → expression text.
fn operation_table(routes: &syn::File, name: &str) -> BTreeMap<String, String> {
    for item in &routes.items {
        let syn::Item::Impl(i) = item else { continue };
        if ty_str(&i.self_ty) != "Operation" {
            continue;
        }
        for ii in &i.items {
            let syn::ImplItem::Fn(f) = ii else { continue };
            if f.sig.ident != name {
                continue;
            }
            let Some(syn::Stmt::Expr(syn::Expr::Match(m), _)) = f.block.stmts.first() else {
                panic!("Operation::{name} is not a match")
            };
            return m
                .arms
                .iter()
                .map(|arm| {
                    let syn::Pat::Path(p) = &arm.pat else {
                        panic!("unexpected arm in Operation::{name}")
                    };
                    let variant = p.path.segments.last().unwrap().ident.to_string();
                    let body = match &*arm.body {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Bool(b), ..
                        }) => b.value.to_string(),
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s), ..
                        }) => s.value(),
                        other => expr_str(other),
                    };
                    (variant, body)
                })
                .collect();
        }
    }
    panic!("routes.rs has no Operation::{name}")
}

/// `impl <ty> { const STATUSES: &[u16] = &[...] }`.
fn statuses(api: &syn::File, ty: &str) -> Vec<u16> {
    for item in &api.items {
        let syn::Item::Impl(i) = item else { continue };
        if ty_str(&i.self_ty) != ty {
            continue;
        }
        for ii in &i.items {
            let syn::ImplItem::Const(c) = ii else {
                continue;
            };
            if c.ident != "STATUSES" {
                continue;
            }
            let syn::Expr::Reference(r) = &c.expr else {
                panic!("STATUSES is not &[...]")
            };
            let syn::Expr::Array(a) = &*r.expr else {
                panic!("STATUSES is not &[...]")
            };
            return a
                .elems
                .iter()
                .map(|e| match e {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(i), ..
                    }) => i.base10_parse().unwrap(),
                    _ => panic!("STATUSES holds a non-integer"),
                })
                .collect();
        }
    }
    panic!("api.rs has no {ty}::STATUSES")
}

// ---------------------------------------------------------------------------
// Operations and the Api trait
// ---------------------------------------------------------------------------

#[test]
fn every_operation_becomes_a_trait_method_named_by_operation_id_or_by_method_and_path() {
    let api = fixture().rust("api.rs");
    let names: BTreeSet<String> = api_methods(&api).into_keys().collect();
    let expected: BTreeSet<String> = [
        "create_thing",
        "delete_thing",
        "get_things_thing_id",
        "put_things_thing_id_poke",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, expected);
}

#[test]
fn path_and_query_parameters_of_every_type_become_typed_arguments_and_optional_ones_options() {
    let methods = api_methods(&fixture().rust("api.rs"));
    let args: Vec<(String, String)> = methods["get_things_thing_id"].clone();
    let expected = [
        ("thing_id", "String"), // the path item's shared parameter
        ("label", "String"),
        ("limit", "Option<i64>"),
        ("ratio", "f64"),
        ("fresh", "Option<bool>"),
        ("since", "Option<i64>"), // appended by the overlay
        ("context", "&C"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(args, expected);
}

#[test]
fn a_required_body_is_a_plain_argument_and_an_optional_body_an_option() {
    let methods = api_methods(&fixture().rust("api.rs"));
    assert!(
        methods["create_thing"].contains(&("body".into(), "models::CreateThingBody".into())),
        "{:?}",
        methods["create_thing"]
    );
    assert!(
        methods["put_things_thing_id_poke"].contains(&("body".into(), "Option<models::Poke>".into())),
        "{:?}",
        methods["put_things_thing_id_poke"]
    );
    assert!(
        !methods["delete_thing"].iter().any(|(n, _)| n == "body"),
        "delete_thing has no body parameter"
    );
}

#[test]
fn each_operation_gets_a_response_enum_with_one_variant_per_documented_status() {
    let api = fixture().rust("api.rs");
    let get = variants(find_enum(&api, "GetThingsThingIdResponse"));
    assert_eq!(get.get("Ok").map(String::as_str), Some("models::Thing"));
    assert_eq!(get.get("NotFound").map(String::as_str), Some("models::Error"));
    assert_eq!(statuses(&api, "GetThingsThingIdResponse"), vec![200, 403, 404]);
    let create = variants(find_enum(&api, "CreateThingResponse"));
    assert_eq!(create.keys().collect::<Vec<_>>(), ["BadRequest", "Created"]);
    assert_eq!(statuses(&api, "CreateThingResponse"), vec![201, 400]);
}

#[test]
fn an_error_response_without_a_schema_carries_the_error_model() {
    let out = fixture();
    let get = variants(find_enum(&out.rust("api.rs"), "GetThingsThingIdResponse"));
    assert_eq!(get["NotFound"], "models::Error");
    let models = out.rust("models.rs");
    let error = find_struct(&models, "Error");
    assert_eq!(field(error, "errcode").0, "String");
    let swagger = out.swagger();
    assert_eq!(
        swagger["paths"]["/things/{thingId}"]["get"]["responses"]["404"]["schema"],
        json!({"$ref": "#/definitions/Error"})
    );
}

#[test]
fn a_success_response_without_a_schema_carries_an_open_json_object() {
    let api = fixture().rust("api.rs");
    let put = variants(find_enum(&api, "PutThingsThingIdPokeResponse"));
    assert_eq!(put["Accepted"], "models::JsonObject");
}

#[test]
fn an_inline_response_object_becomes_a_model_named_after_operation_and_status() {
    let out = fixture();
    let delete = variants(find_enum(&out.rust("api.rs"), "DeleteThingResponse"));
    assert_eq!(delete["Ok"], "models::DeleteThingOk");
    assert_eq!(delete["TooManyRequests"], "models::Error");
    let models = out.rust("models.rs");
    let ok = find_struct(&models, "DeleteThingOk");
    assert_eq!(field(ok, "deleted").0, "bool");
}

#[test]
fn security_is_the_operations_own_or_else_the_documents_global_requirement() {
    let out = fixture();
    let auth = operation_table(&out.rust("routes.rs"), "requires_auth");
    let expected: BTreeMap<String, String> = [
        ("CreateThing", "false"),         // security: []
        ("DeleteThing", "true"),          // its own security
        ("GetThingsThingId", "true"),     // the global security
        ("PutThingsThingIdPoke", "true"), // the global security
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .into();
    assert_eq!(auth, expected);
    let swagger = out.swagger();
    assert_eq!(swagger["paths"]["/things"]["post"]["security"], json!([]));
    assert_eq!(
        swagger["paths"]["/things/{thingId}"]["get"]["security"],
        json!([{"accessToken": []}])
    );
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

#[test]
fn a_path_key_with_a_trailing_space_is_served_trimmed_and_also_kept_as_written() {
    let out = fixture();
    let rows = route_rows(&out.rust("routes.rs"));
    let poke: Vec<&str> = rows
        .iter()
        .filter(|r| r.3 == "PutThingsThingIdPoke")
        .map(|r| r.2.as_str())
        .collect();
    assert!(poke.contains(&"/things/{thingId}/poke"), "{poke:?}");
    assert!(poke.contains(&"/things/{thingId}/poke "), "{poke:?}");
    let paths = operation_table(&out.rust("routes.rs"), "path");
    assert_eq!(paths["PutThingsThingIdPoke"], "/things/{thingId}/poke");
    let swagger = out.swagger();
    let keys: Vec<&String> = swagger["paths"].as_object().unwrap().keys().collect();
    assert!(
        keys.iter().all(|k| k.trim() == k.as_str()),
        "a merged path key is not trimmed: {keys:?}"
    );
}

#[test]
fn an_x_alias_becomes_a_route_row_and_a_swagger_path_with_a_derived_operation_id() {
    let out = fixture();
    let rows = route_rows(&out.rust("routes.rs"));
    assert!(
        rows.contains(&(
            "PUT".into(),
            "/_fixture/v1".into(),
            "/poke/{thingId}".into(),
            "PutThingsThingIdPoke".into()
        )),
        "{rows:?}"
    );
    let swagger = out.swagger();
    assert_eq!(
        swagger["paths"]["/poke/{thingId}"]["put"]["operationId"],
        "put_poke_thing_id"
    );
    assert_eq!(
        swagger["paths"]["/things/{thingId}/poke"]["put"]["operationId"],
        "put_things_thing_id_poke"
    );
}

#[test]
fn the_route_table_has_one_row_per_method_and_path_with_the_base_path_trimmed() {
    let rows = route_rows(&fixture().rust("routes.rs"));
    let mut expected = vec![
        ("DELETE", "/things/{thingId}", "DeleteThing"),
        ("GET", "/things/{thingId}", "GetThingsThingId"),
        ("POST", "/things", "CreateThing"),
        ("PUT", "/poke/{thingId}", "PutThingsThingIdPoke"),
        ("PUT", "/things/{thingId}/poke", "PutThingsThingIdPoke"),
        ("PUT", "/things/{thingId}/poke ", "PutThingsThingIdPoke"),
    ];
    expected.sort();
    let mut got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.2.as_str(), r.3.as_str()))
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        rows.iter().all(|r| r.1 == "/_fixture/v1"),
        "basePath /_fixture/v1/ loses its trailing slash: {rows:?}"
    );
}

#[test]
fn the_operation_enum_lists_every_operation_once() {
    let routes = fixture().rust("routes.rs");
    let ops: BTreeSet<String> = variants(find_enum(&routes, "Operation")).into_keys().collect();
    let expected: BTreeSet<String> = ["CreateThing", "DeleteThing", "GetThingsThingId", "PutThingsThingIdPoke"]
        .map(String::from)
        .into();
    assert_eq!(ops, expected);
    let names = operation_table(&routes, "name");
    assert_eq!(names["CreateThing"], "create_thing");
    assert_eq!(names["GetThingsThingId"], "get_things_thing_id");
}

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

#[test]
fn every_supported_schema_type_maps_to_its_rust_type() {
    let models = fixture().rust("models.rs");
    let thing = find_struct(&models, "Thing");
    let expected = [
        ("id", "String"),
        ("name", "String"),
        ("count", "i64"),
        ("ratio", "f64"),
        ("active", "bool"),
        ("kind", "ThingKind"),
        ("owner", "ThingOwner"),
        ("parts", "Vec<ThingPartsItem>"),
        ("labels", "std::collections::BTreeMap<String,String>"),
        ("extra", "Option<JsonObject>"),
        ("anything", "Option<serde_json::Value>"),
        ("tags", "Option<Vec<String>>"),
        ("r#type", "Option<String>"),
        ("display_name", "Option<String>"),
        ("limits", "Option<Limits>"),
    ];
    let got = fields(thing);
    for (name, ty) in expected {
        let (got_ty, _) = got
            .get(name)
            .unwrap_or_else(|| panic!("Thing has no field {name}: {:?}", got.keys()));
        assert_eq!(got_ty, ty, "Thing.{name}");
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "Thing has unexpected fields: {:?}",
        got.keys()
    );
}

#[test]
fn optional_fields_are_skipped_when_absent_and_renamed_fields_keep_their_json_name() {
    let models = fixture().rust("models.rs");
    let thing = find_struct(&models, "Thing");
    let (_, attrs) = field(thing, "display_name");
    assert!(attrs.contains(r#"#[serde(rename="displayName")]"#), "{attrs}");
    assert!(
        attrs.contains(r#"#[serde(default,skip_serializing_if="Option::is_none")]"#),
        "{attrs}"
    );
    let (_, attrs) = field(thing, "id");
    assert!(
        !attrs.contains("skip_serializing_if"),
        "a required field is always written: {attrs}"
    );
}

#[test]
fn a_string_enum_becomes_a_rust_enum_whose_variants_keep_the_spec_spelling() {
    let models = fixture().rust("models.rs");
    let kind = find_enum(&models, "ThingKind");
    let names: Vec<String> = kind.variants.iter().map(|v| v.ident.to_string()).collect();
    assert_eq!(names, ["SmallBox", "MBigBox"]);
    let renames: Vec<String> = kind.variants.iter().map(|v| attrs_str(&v.attrs)).collect();
    assert!(renames[0].contains(r#"rename="small_box""#), "{renames:?}");
    assert!(renames[1].contains(r#"rename="m.big.box""#), "{renames:?}");
}

#[test]
fn nested_objects_and_array_items_become_structs_that_are_validated_as_nested() {
    let models = fixture().rust("models.rs");
    assert_eq!(field(find_struct(&models, "ThingOwner"), "user_id").0, "String");
    assert_eq!(
        field(find_struct(&models, "ThingPartsItem"), "part_no").0,
        "Option<i64>"
    );
    let thing = find_struct(&models, "Thing");
    assert!(field(thing, "owner").1.contains("#[validate(nested)]"));
    assert!(field(thing, "limits").1.contains("#[validate(nested)]"));
    assert!(
        !field(thing, "kind").1.contains("nested"),
        "a string enum has nothing to validate"
    );
}

#[test]
fn additional_properties_false_denies_unknown_fields_and_other_models_ignore_them() {
    let models = fixture().rust("models.rs");
    for strict in ["Limits", "Poke"] {
        let attrs = attrs_str(&find_struct(&models, strict).attrs);
        assert!(attrs.contains("#[serde(deny_unknown_fields)]"), "{strict}: {attrs}");
    }
    for open in ["Thing", "Error", "CreateThingBody"] {
        let attrs = attrs_str(&find_struct(&models, open).attrs);
        assert!(!attrs.contains("deny_unknown_fields"), "{open}: {attrs}");
    }
}

#[test]
fn refs_to_files_and_to_local_definitions_become_named_models() {
    let out = fixture();
    let models = out.rust("models.rs");
    // definitions/thing.yaml, definitions/limits.yaml (relative to thing.yaml), #/definitions/Poke
    for name in ["Thing", "Limits", "Poke", "Error"] {
        find_struct(&models, name);
    }
    let swagger = out.swagger();
    let defs: BTreeSet<&String> = swagger["definitions"].as_object().unwrap().keys().collect();
    assert_eq!(
        defs,
        ["Error", "Limits", "Poke", "Thing"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter()
            .collect()
    );
    assert_eq!(
        swagger["definitions"]["Thing"]["properties"]["limits"]["$ref"],
        "#/definitions/Limits"
    );
    assert_eq!(
        swagger["paths"]["/things/{thingId}/poke"]["put"]["parameters"][1]["schema"]["$ref"],
        "#/definitions/Poke"
    );
}

#[test]
fn constraints_become_validator_attributes_with_the_message_a_client_sees() {
    let models = fixture().rust("models.rs");
    let cases = [
        (
            "Thing",
            "id",
            "length(min=1,max=64,message=\"mustbe1to64characterslong\")",
        ),
        (
            "Thing",
            "count",
            "range(min=0,max=100,message=\"mustbebetween0and100\")",
        ),
        ("Thing", "ratio", "range(min=0.5,max=2.5,"),
        (
            "Thing",
            "parts",
            "length(min=1,max=10,message=\"mustbe1to10itemslong\")",
        ),
        ("CreateThingBody", "name", "length(min=1,max=10,"),
        ("CreateThingBody", "size", "range(min=1,max=9,"),
        ("Poke", "strength", "range(min=1,max=5,"),
        ("Limits", "max_pokes", "range(min=0,message=\"mustbeatleast0\")"),
    ];
    for (model, f, attr) in cases {
        let (_, attrs) = field(find_struct(&models, model), f);
        assert!(attrs.contains(attr), "{model}.{f} should have {attr}, has {attrs}");
    }
    let (_, attrs) = field(find_struct(&models, "Thing"), "name");
    assert!(
        !attrs.contains("validate"),
        "an unconstrained field has no validation: {attrs}"
    );
    let (_, attrs) = field(find_struct(&models, "CreateThingBody"), "secret");
    assert!(!attrs.contains("validate"), "format: password checks nothing: {attrs}");
}

/// The `PATTERN_…` static a models.rs regex attribute or rule refers to, with the pattern it compiles.
fn pattern_statics(models: &syn::File) -> BTreeMap<String, String> {
    models
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Static(s) if s.ident.to_string().starts_with("PATTERN_") => {
                let text = expr_str(&s.expr);
                let start = text.find("Regex::new(\"")? + "Regex::new(\"".len();
                let end = text[start..].find("\")")? + start;
                Some((s.ident.to_string(), text[start..end].replace("\\\\", "\\")))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_pattern_becomes_a_regex_validator_on_one_static_regex_per_distinct_pattern() {
    let models = fixture().rust("models.rs");
    let statics = pattern_statics(&models);
    let (_, attrs) = field(find_struct(&models, "Thing"), "id");
    let name = statics
        .iter()
        .find(|(_, p)| p.as_str() == "^t[0-9]+$")
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| panic!("no static regex for ^t[0-9]+$ among {statics:?}"));
    assert!(
        attrs.contains(&format!("regex(path=*{name},message=\"mustmatchthepattern^t[0-9]+$\")")),
        "{attrs}"
    );
    // thingId (a parameter) states the same pattern as Thing.id: one static serves both.
    assert_eq!(
        statics.values().filter(|p| p.as_str() == "^t[0-9]+$").count(),
        1,
        "{statics:?}"
    );
    assert_eq!(statics.len(), 2, "^t[0-9]+$ and the tags' ^[a-z]+$: {statics:?}");
}

#[test]
fn the_items_of_a_string_array_are_checked_by_a_generated_custom_validator() {
    let models = fixture().rust("models.rs");
    let (_, attrs) = field(find_struct(&models, "Thing"), "tags");
    assert!(
        attrs.contains("#[validate(custom(function=\"thing_tags_items\"))]"),
        "{attrs}"
    );
    let f = models
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Fn(f) if f.sig.ident == "thing_tags_items" => Some(f),
            _ => None,
        })
        .expect("no fn thing_tags_items");
    let body = squash(&unparse_item(syn::Item::Fn(f.clone())));
    assert!(body.contains("check_items(items,&StringRule{"), "{body}");
    assert!(body.contains("max_length:Some(20)"), "{body}");
}

/// Source text without whitespace or trailing commas, for looking for generated code.
fn tidy(s: &str) -> String {
    let mut t = squash(s);
    for (from, to) in [(",)", ")"), (",>", ">"), (",}", "}"), (",]", "]")] {
        t = t.replace(from, to);
    }
    t
}

/// The dispatcher's text, tidied, for looking for generated checks.
fn dispatch_text(routes: &syn::File) -> String {
    let f = routes
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Fn(f) if f.sig.ident == "dispatch" => Some(f),
            _ => None,
        })
        .expect("routes.rs has no fn dispatch");
    tidy(&unparse_item(syn::Item::Fn(f.clone())))
}

/// The tidied text of `mod rules` in routes.rs.
fn rules_text(routes: &syn::File) -> String {
    let rules = routes
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Mod(m) if m.ident == "rules" => Some(m),
            _ => None,
        })
        .expect("routes.rs has no mod rules");
    tidy(&unparse_item(syn::Item::Mod(rules.clone())))
}

#[test]
fn parameter_constraints_become_checks_in_the_dispatcher_naming_the_parameter() {
    let out = fixture();
    let statics = pattern_statics(&out.rust("models.rs"));
    let t = statics
        .iter()
        .find(|(_, p)| p.as_str() == "^t[0-9]+$")
        .unwrap()
        .0
        .clone();
    let routes = out.rust("routes.rs");
    let text = dispatch_text(&routes);
    for needle in [
        "check_string(\"pathparameterthingId\",v,&rules::GET_THINGS_THING_ID_THING_ID)?",
        "check_string(\"queryparameterlabel\",v,&rules::GET_THINGS_THING_ID_LABEL)?",
        "check_number(\"queryparameterlimit\",*vasf64,&rules::GET_THINGS_THING_ID_LIMIT)?",
        "check_number(\"queryparameterratio\",*vasf64,&rules::GET_THINGS_THING_ID_RATIO)?",
        // An optional parameter is checked only when present.
        "ifletSome(v)=&limit{check_number(",
    ] {
        assert!(text.contains(needle), "the dispatcher should contain {needle}");
    }
    assert!(
        !text.contains("\"queryparameterfresh\""),
        "an unconstrained parameter is not checked"
    );
    let rules = rules_text(&routes);
    for needle in [
        // The pattern the overlay merged into the shared path parameter.
        "pubstaticGET_THINGS_THING_ID_THING_ID:StringRule=StringRule{min_length:None,max_length:Some(64),".to_string(),
        format!("pattern:Some(&super::models::{t}),"),
        // A string enum of a query parameter.
        "pubstaticGET_THINGS_THING_ID_LABEL:StringRule=".to_string(),
        "one_of:&[\"red\",\"blue\"]".to_string(),
        // format: int32 narrows the range of an integer.
        "pubstaticGET_THINGS_THING_ID_LIMIT:NumberRule=NumberRule{minimum:Some(0.0),maximum:Some(2147483647.0),"
            .to_string(),
        "pubstaticGET_THINGS_THING_ID_RATIO:NumberRule=NumberRule{minimum:None,maximum:Some(2.5),".to_string(),
    ] {
        assert!(rules.contains(&needle), "mod rules should contain {needle}: {rules}");
    }
}

#[test]
fn x_errcode_names_the_errcode_of_a_violation_for_a_property_and_a_parameter() {
    let out = fixture();
    let (_, attrs) = field(find_struct(&out.rust("models.rs"), "CreateThingBody"), "name");
    assert!(attrs.contains("code=\"M_INVALID_USERNAME\""), "{attrs}");
    let routes = out.rust("routes.rs");
    let errcodes = routes
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Const(c) if c.ident == "ERRCODES" => Some(expr_str(&c.expr)),
            _ => None,
        })
        .expect("routes.rs has no const ERRCODES");
    assert_eq!(errcodes, "&[\"M_INVALID_USERNAME\"]");
    let text = rules_text(&routes);
    assert!(
        text.contains("one_of:&[\"red\",\"blue\"],errcode:Some(\"M_BAD_COLOUR\")"),
        "{text}"
    );
    assert!(
        text.contains("errcode:None"),
        "parameters without x-errcode keep M_INVALID_PARAM"
    );
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["name"]["x-errcode"] = json!("invalid");
    });
    assert_mentions(&err, &["Thing.name", "x-errcode", "M_INVALID_USERNAME"]);
}

#[test]
fn every_struct_model_gets_a_static_json_shape_that_the_dispatcher_checks_bodies_against() {
    let routes = fixture().rust("routes.rs");
    let shapes = routes
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Mod(m) if m.ident == "shapes" => Some(m),
            _ => None,
        })
        .expect("routes.rs has no mod shapes");
    let text = tidy(&unparse_item(syn::Item::Mod(shapes.clone())));
    for needle in [
        "pubstaticThing:Shape=Shape::Object{properties:&[",
        "Property{name:\"owner\",shape:&ThingOwner}",
        "Property{name:\"parts\",shape:&Shape::Array{items:&ThingPartsItem}}",
        "Property{name:\"labels\",shape:&Shape::Map{values:&Shape::String}}",
        "Property{name:\"extra\",shape:&Shape::Object{properties:&[]}}",
        "Property{name:\"anything\",shape:&Shape::Any}",
        "Property{name:\"count\",shape:&Shape::Integer}",
        "Property{name:\"kind\",shape:&Shape::String}",
        "pubstaticPoke:Shape=",
    ] {
        assert!(text.contains(needle), "mod shapes should contain {needle}: {text}");
    }
    let dispatch = dispatch_text(&routes);
    assert!(
        dispatch.contains("validated(json_body::<models::CreateThingBody>(request.body,&shapes::CreateThingBody)?)?"),
        "{dispatch}"
    );
    assert!(dispatch.contains("json_body::<models::Poke>(request.body,&shapes::Poke)"));
}

#[test]
fn the_merged_swagger_document_states_the_constraints() {
    let swagger = fixture().swagger();
    let get = &swagger["paths"]["/things/{thingId}"]["get"];
    let param = |name: &str| {
        get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no parameter {name}"))
    };
    assert_eq!(param("thingId")["pattern"], "^t[0-9]+$");
    assert_eq!(param("thingId")["type"], "string", "the seed's keys are kept");
    assert_eq!(param("label")["enum"], json!(["red", "blue"]));
    assert_eq!(param("limit")["format"], "int32");
    assert_eq!(
        swagger["definitions"]["Thing"]["properties"]["id"]["pattern"],
        "^t[0-9]+$"
    );
}

// ---------------------------------------------------------------------------
// Overlay and merged document
// ---------------------------------------------------------------------------

#[test]
fn the_overlay_adds_a_response_and_appends_a_parameter() {
    let out = fixture();
    let get = variants(find_enum(&out.rust("api.rs"), "GetThingsThingIdResponse"));
    assert_eq!(
        get.get("Forbidden").map(String::as_str),
        Some("models::Error"),
        "{get:?}"
    );
    let args = &api_methods(&out.rust("api.rs"))["get_things_thing_id"];
    assert_eq!(args[args.len() - 2], ("since".to_string(), "Option<i64>".to_string()));
    let swagger = out.swagger();
    let op = &swagger["paths"]["/things/{thingId}"]["get"];
    let names: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.last(),
        Some(&"since"),
        "the overlay's parameter is appended: {names:?}"
    );
    assert_eq!(
        names.first(),
        Some(&"thingId"),
        "the path-level parameter is listed first: {names:?}"
    );
    assert_eq!(names.len(), 6, "the seed's parameters are kept: {names:?}");
    assert_eq!(op["responses"]["403"]["description"], "Added by the overlay.");
    assert!(op["responses"].get("200").is_some() && op["responses"].get("404").is_some());
}

#[test]
fn overlay_merging_merges_objects_appends_arrays_and_allows_restating_a_scalar() {
    let mut base = json!({"a": {"x": 1, "list": [1]}, "s": "same"});
    codegen::spec::merge_overlay(&mut base, json!({"a": {"y": 2, "list": [2]}, "s": "same"}), "").unwrap();
    assert_eq!(base, json!({"a": {"x": 1, "y": 2, "list": [1, 2]}, "s": "same"}));
    let err = codegen::spec::merge_overlay(&mut base, json!({"a": {"x": 5}}), "").unwrap_err();
    assert_mentions(&err, &["/a/x", "overlay"]);
}

#[test]
fn an_overlay_parameter_with_the_in_and_name_of_a_seed_parameter_is_merged_into_it() {
    let mut base = json!({"parameters": [
        {"in": "path", "name": "id", "type": "string"},
        {"in": "body", "name": "body", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    ]});
    codegen::spec::merge_overlay(
        &mut base,
        json!({"parameters": [
            {"in": "path", "name": "id", "type": "string", "pattern": "^x$"},
            {"in": "body", "name": "body", "schema": {"properties": {"b": {"type": "integer"}}}},
            {"in": "query", "name": "id", "type": "integer"}
        ]}),
        "",
    )
    .unwrap();
    assert_eq!(
        base,
        json!({"parameters": [
            {"in": "path", "name": "id", "type": "string", "pattern": "^x$"},
            {"in": "body", "name": "body", "schema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}},
            {"in": "query", "name": "id", "type": "integer"}
        ]}),
        "same (in, name) merges; the same name elsewhere is another parameter"
    );
    let err = codegen::spec::merge_overlay(
        &mut base,
        json!({"parameters": [{"in": "path", "name": "id", "type": "integer"}]}),
        "/paths/x",
    )
    .unwrap_err();
    assert_mentions(&err, &["/paths/x/parameters/path:id/type", "overlay"]);
}

#[test]
fn the_fixture_overlay_adds_a_pattern_to_a_shared_parameter_and_a_property_to_a_body() {
    let out = fixture();
    let (ty, attrs) = field(find_struct(&out.rust("models.rs"), "CreateThingBody"), "colour");
    assert_eq!(ty, "Option<String>", "{attrs}");
    let swagger = out.swagger();
    let shared: Vec<&Value> = swagger["paths"]["/things/{thingId}"]["delete"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "thingId")
        .collect();
    assert_eq!(shared.len(), 1, "merged, not appended: {shared:?}");
    assert_eq!(shared[0]["pattern"], "^t[0-9]+$");
    assert_eq!(shared[0]["required"], true, "the seed's keys stay");
}

#[test]
fn security_alternatives_all_asking_for_a_credential_require_one_and_an_empty_one_makes_it_optional() {
    let out = fixture();
    let auth = operation_table(&out.rust("routes.rs"), "requires_auth");
    assert_eq!(auth["DeleteThing"], "true", "accessToken or authorizationHeader");
    let swagger = out.swagger();
    assert_eq!(
        swagger["paths"]["/things/{thingId}"]["delete"]["security"],
        json!([{"accessToken": []}, {"authorizationHeader": []}])
    );
    assert_eq!(swagger["securityDefinitions"]["authorizationHeader"]["in"], "header");
    let dir = fixture_copy();
    edit_yaml(&dir.path().join("things.yaml"), |doc| {
        doc["paths"]["/things/{thingId}"]["delete"]["security"] = json!([{}, {"accessToken": []}]);
    });
    let auth = operation_table(&generate(dir.path()).rust("routes.rs"), "requires_auth");
    assert_eq!(
        auth["DeleteThing"], "false",
        "an empty alternative makes the token optional"
    );
}

#[test]
fn a_security_requirement_naming_an_undefined_scheme_is_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}"]["delete"]["security"] = json!([{"cookie": []}]);
    });
    assert_mentions(&err, &["cookie", "securityDefinitions"]);
}

#[test]
fn the_merged_swagger_document_has_every_operation_under_one_base_path_with_local_refs() {
    let swagger = fixture().swagger();
    assert_eq!(swagger["swagger"], "2.0");
    assert_eq!(swagger["basePath"], "/_fixture/v1");
    let mut ops = BTreeSet::new();
    for (path, item) in swagger["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.insert(format!("{method} {path} {}", op["operationId"].as_str().unwrap()));
        }
    }
    let expected: BTreeSet<String> = [
        "delete /things/{thingId} delete_thing",
        "get /things/{thingId} get_things_thing_id",
        "post /things create_thing",
        "put /poke/{thingId} put_poke_thing_id",
        "put /things/{thingId}/poke put_things_thing_id_poke",
    ]
    .map(String::from)
    .into();
    assert_eq!(ops, expected);
    assert!(swagger["securityDefinitions"].get("accessToken").is_some());
    // Every $ref points into the document's own definitions.
    fn check_refs(v: &Value, defs: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref") {
                    let name = r.as_str().and_then(|r| r.strip_prefix("#/definitions/"));
                    assert!(
                        name.is_some_and(|n| defs.get(n).is_some()),
                        "{at}: $ref {r} does not resolve"
                    );
                }
                o.iter().for_each(|(k, c)| check_refs(c, defs, &format!("{at}/{k}")));
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, c)| check_refs(c, defs, &format!("{at}/{i}"))),
            _ => {}
        }
    }
    check_refs(&swagger, &swagger["definitions"], "");
}

#[test]
fn the_merged_swagger_document_keeps_path_level_parameters() {
    let swagger = fixture().swagger();
    for method in ["get", "delete"] {
        let op = &swagger["paths"]["/things/{thingId}"][method];
        let shared = &swagger["paths"]["/things/{thingId}"]["parameters"];
        let declared = op["parameters"]
            .as_array()
            .into_iter()
            .chain(shared.as_array())
            .flatten();
        assert!(
            declared.clone().any(|p| p["name"] == "thingId" && p["in"] == "path"),
            "{method} /things/{{thingId}} does not declare thingId in swagger.json"
        );
    }
}

#[test]
fn the_generator_reports_every_file_it_read_so_the_build_reruns_when_one_changes() {
    let out = fixture();
    let inputs: BTreeSet<String> = out
        .inputs
        .iter()
        .map(|p| {
            p.strip_prefix(FIXTURE)
                .unwrap_or(p)
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    for f in [
        "things.yaml",
        "things.overlay.yaml",
        "definitions/thing.yaml",
        "definitions/limits.yaml",
        "definitions/error.yaml",
    ] {
        assert!(inputs.contains(f), "{f} is not among the inputs {inputs:?}");
    }
}

#[test]
fn every_generated_file_is_marked_as_generated_and_parses() {
    let out = fixture();
    let names: Vec<&String> = out.files.keys().collect();
    assert_eq!(names, ["api.rs", "client.rs", "models.rs", "routes.rs", "swagger.json"]);
    for name in ["api.rs", "client.rs", "models.rs", "routes.rs"] {
        assert!(out.files[name].starts_with("// @generated"), "{name}");
        out.rust(name);
    }
}

#[test]
fn the_client_has_one_method_per_operation() {
    let client = fixture().rust("client.rs");
    let mut methods = BTreeSet::new();
    for item in &client.items {
        let syn::Item::Impl(i) = item else { continue };
        if ty_str(&i.self_ty) != "Client" {
            continue;
        }
        for ii in &i.items {
            if let syn::ImplItem::Fn(f) = ii {
                methods.insert(f.sig.ident.to_string());
            }
        }
    }
    for op in [
        "create_thing",
        "delete_thing",
        "get_things_thing_id",
        "put_things_thing_id_poke",
    ] {
        assert!(methods.contains(op), "Client has no method {op}: {methods:?}");
    }
}

// ---------------------------------------------------------------------------
// Changing the spec changes the code
// ---------------------------------------------------------------------------

#[test]
fn adding_a_response_to_an_operation_adds_an_enum_variant() {
    let before = variants(find_enum(&fixture().rust("api.rs"), "CreateThingResponse"));
    assert!(!before.contains_key("Conflict"));
    let dir = fixture_copy();
    edit_yaml(&dir.path().join("things.yaml"), |doc| {
        doc["paths"]["/things"]["post"]["responses"]["409"] =
            json!({"description": "Already exists.", "schema": {"$ref": "definitions/error.yaml"}});
    });
    let api = generate(dir.path()).rust("api.rs");
    let after = variants(find_enum(&api, "CreateThingResponse"));
    assert_eq!(
        after.get("Conflict").map(String::as_str),
        Some("models::Error"),
        "{after:?}"
    );
    assert_eq!(statuses(&api, "CreateThingResponse"), vec![201, 400, 409]);
}

#[test]
fn generating_twice_gives_identical_output() {
    let a = fixture();
    let b = fixture();
    assert_eq!(a.files, b.files);
    assert_eq!(a.inputs, b.inputs);
}

#[test]
fn the_generator_on_api_spec_makes_what_the_build_compiled() {
    // Rust item order and JSON key order depend on serde_json's preserve_order,
    // which only the build script enables; compare what does not depend on it.
    let out = generate(&Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec"));
    let built: [(&str, &str); 5] = [
        ("models.rs", include_str!(concat!(env!("OUT_DIR"), "/models.rs"))),
        ("api.rs", include_str!(concat!(env!("OUT_DIR"), "/api.rs"))),
        ("routes.rs", include_str!(concat!(env!("OUT_DIR"), "/routes.rs"))),
        ("client.rs", include_str!(concat!(env!("OUT_DIR"), "/client.rs"))),
        ("swagger.json", include_str!(concat!(env!("OUT_DIR"), "/swagger.json"))),
    ];
    for (name, text) in built {
        if name == "swagger.json" {
            let built: Value = serde_json::from_str(text).unwrap();
            assert_eq!(out.swagger(), built, "swagger.json differs from the build's");
        } else {
            let built = syn::parse_file(text).unwrap();
            assert_eq!(
                item_names(&out.rust(name)),
                item_names(&built),
                "{name} differs from the build's"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// What the generator refuses
// ---------------------------------------------------------------------------

#[test]
fn all_of_is_refused_with_a_message_naming_it() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["owner"]["allOf"] = json!([{"type": "object"}]);
    });
    assert_mentions(&err, &["allOf", "not supported"]);
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["parameters"][0]["schema"]["allOf"] = json!([{"type": "object"}]);
    });
    assert_mentions(&err, &["allOf", "not supported"]);
}

#[test]
fn all_of_at_the_top_of_a_referenced_definition_is_refused() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["allOf"] = json!([{"type": "object"}]);
    });
    assert_mentions(&err, &["allOf", "not supported"]);
}

#[test]
fn a_pattern_that_does_not_compile_is_refused_naming_the_property_and_the_file() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["id"]["pattern"] = json!("^t[0-9+$");
    });
    assert_mentions(&err, &["Thing.id", "thing.yaml", "^t[0-9+$", "does not compile"]);
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}"]["get"]["parameters"][0]["pattern"] = json!("(");
    });
    assert_mentions(&err, &["things.yaml", "label", "does not compile"]);
}

#[test]
fn a_pattern_using_a_class_whose_meaning_differs_between_ecma_and_rust_is_refused() {
    for class in ["\\d", "\\w", "\\s", "\\b"] {
        let err = error_after_editing("definitions/thing.yaml", |s| {
            s["properties"]["id"]["pattern"] = json!(format!("^t{class}+$"));
        });
        assert_mentions(&err, &["Thing.id", class, "ECMA-262", "[0-9]"]);
    }
    // An escaped backslash followed by a d is a literal backslash and a d: fine.
    let dir = fixture_copy();
    edit_yaml(&dir.path().join("definitions/thing.yaml"), |s| {
        s["properties"]["id"]["pattern"] = json!("^t\\\\d$");
    });
    generate(dir.path());
}

#[test]
fn a_format_the_generator_does_not_know_or_that_does_not_fit_the_type_is_refused() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["name"]["format"] = json!("date-time");
    });
    assert_mentions(&err, &["Thing.name", "date-time", "not supported", "int32"]);
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["name"]["format"] = json!("int32");
    });
    assert_mentions(&err, &["Thing.name", "int32", "integer"]);
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}"]["get"]["parameters"][1]["format"] = json!("uuid");
    });
    assert_mentions(&err, &["limit", "uuid", "not supported"]);
}

#[test]
fn a_constraint_on_a_type_it_does_not_apply_to_is_refused() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["count"]["pattern"] = json!("^1$");
    });
    assert_mentions(&err, &["Thing.count", "pattern", "string", "integer"]);
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}"]["get"]["parameters"][1]["enum"] = json!([1, 2]);
    });
    assert_mentions(&err, &["limit", "enum", "string"]);
}

#[test]
fn constraints_where_the_generator_cannot_check_them_are_refused() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["labels"]["additionalProperties"]["maxLength"] = json!(3);
    });
    assert_mentions(&err, &["additionalProperties", "not supported"]);
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["tags"]["items"] = json!({"type": "array", "items": {"type": "string", "pattern": "^a$"}});
    });
    assert_mentions(&err, &["items of items", "not supported"]);
}

#[test]
fn an_unknown_parameter_keyword_is_refused_with_a_message_naming_it() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}"]["get"]["parameters"][0]["exclusiveMaximum"] = json!(true);
    });
    assert_mentions(&err, &["label", "exclusiveMaximum", "not supported"]);
}

#[test]
fn x_nullable_is_refused_because_the_edge_refuses_null() {
    let err = error_after_editing("definitions/thing.yaml", |s| {
        s["properties"]["name"]["x-nullable"] = json!(true);
    });
    assert_mentions(&err, &["x-nullable", "not supported"]);
}

#[test]
fn an_operation_parameter_replaces_the_path_items_parameter_of_the_same_in_and_name() {
    let dir = fixture_copy();
    edit_yaml(&dir.path().join("things.yaml"), |doc| {
        doc["paths"]["/things/{thingId}"]["delete"]["parameters"] =
            json!([{"in": "path", "name": "thingId", "type": "string", "required": true, "maxLength": 3}]);
    });
    let out = generate(dir.path());
    let args = &api_methods(&out.rust("api.rs"))["delete_thing"];
    assert_eq!(
        args.iter().filter(|(n, _)| n == "thing_id").count(),
        1,
        "one thing_id argument: {args:?}"
    );
    let text = rules_text(&out.rust("routes.rs"));
    assert!(
        text.contains("max_length:Some(3)"),
        "the operation's own constraint applies"
    );
}

#[test]
fn a_parameter_listed_twice_is_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        let first = doc["paths"]["/things/{thingId}"]["get"]["parameters"][0].clone();
        doc["paths"]["/things/{thingId}"]["get"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(first);
    });
    assert_mentions(&err, &["label", "listed twice"]);
}

#[test]
fn a_header_parameter_is_refused_with_a_message_naming_it() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"in": "header", "name": "X-Request-Id", "type": "string"}));
    });
    assert_mentions(&err, &["header", "X-Request-Id", "not supported"]);
}

#[test]
fn response_headers_are_refused_with_a_message_naming_them() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["responses"]["201"]["headers"] = json!({"X-Rate": {"type": "integer"}});
    });
    assert_mentions(&err, &["headers", "201", "not supported"]);
}

#[test]
fn an_overlay_that_changes_a_scalar_is_refused_with_a_message_naming_it() {
    let err = error_after_editing("things.overlay.yaml", |o| {
        o["paths"]["/things"] = json!({"post": {"summary": "Something else."}});
    });
    assert_mentions(
        &err,
        &["things.overlay.yaml", "summary", "overlay changes", "Something else."],
    );
}

#[test]
fn a_path_parameter_missing_from_the_path_is_refused_with_a_message_naming_it() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"in": "path", "name": "ghost", "type": "string", "required": true}));
    });
    assert_mentions(&err, &["ghost", "does not appear in the path"]);
}

#[test]
fn a_path_segment_without_a_path_parameter_is_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        let op = doc["paths"]["/things"].clone();
        doc["paths"]["/things/{shelf}"] = op;
        doc["paths"]["/things/{shelf}"]["post"]["operationId"] = json!("shelveThing");
    });
    assert_mentions(&err, &["{shelf}", "no path parameter"]);
}

#[test]
fn a_status_without_a_variant_name_is_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["responses"]["418"] = json!({"description": "I'm a teapot."});
    });
    assert_mentions(&err, &["418"]);
}

#[test]
fn a_204_response_is_refused_because_its_body_would_be_empty() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["responses"]["204"] = json!({"description": "Nothing."});
    });
    assert_mentions(&err, &["204", "not supported"]);
}

#[test]
fn a_media_type_other_than_json_is_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things"]["post"]["produces"] = json!(["text/plain"]);
    });
    assert_mentions(&err, &["produces", "application/json"]);
}

#[test]
fn two_operations_with_the_same_name_are_refused() {
    let err = error_after_editing("things.yaml", |doc| {
        doc["paths"]["/things/{thingId}/poke "]["put"]["operationId"] = json!("createThing");
    });
    assert_mentions(&err, &["create_thing", "operationId"]);
}
