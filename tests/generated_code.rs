//! The checked-in copy of the generated code in `generated/` is what the build
//! script produced (the rust-analyzer "sourcegen" pattern).
//!
//! `build.rs` writes models.rs, api.rs, routes.rs, client.rs and swagger.json
//! into `OUT_DIR`; the crate compiles those. `generated/` holds a readable copy
//! for review. When the copy is stale this test overwrites it and fails, so
//! `cargo test --test generated_code` is also the refresh command.

use std::path::Path;

/// Every file the build script writes, with the contents this build compiled.
const GENERATED: &[(&str, &str)] = &[
    ("models.rs", include_str!(concat!(env!("OUT_DIR"), "/models.rs"))),
    ("api.rs", include_str!(concat!(env!("OUT_DIR"), "/api.rs"))),
    ("routes.rs", include_str!(concat!(env!("OUT_DIR"), "/routes.rs"))),
    ("client.rs", include_str!(concat!(env!("OUT_DIR"), "/client.rs"))),
    ("swagger.json", include_str!(concat!(env!("OUT_DIR"), "/swagger.json"))),
];

#[test]
fn generated_code_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut stale = Vec::new();
    for (name, fresh) in GENERATED {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(*fresh) {
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            std::fs::write(&path, fresh).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            stale.push(format!(
                "generated/{name} was not up to date, updated it; commit the change"
            ));
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn the_compiled_swagger_document_is_the_one_the_build_script_wrote() {
    // The crate embeds swagger.json from the same OUT_DIR this test reads, so
    // the refresh above can never copy a document other than the one served.
    let (_, from_out_dir) = GENERATED.iter().find(|(n, _)| *n == "swagger.json").unwrap();
    assert_eq!(matrix_membership::generated::SWAGGER_JSON, *from_out_dir);
}

#[test]
fn every_generated_file_is_nonempty_and_marked_as_generated() {
    for (name, contents) in GENERATED {
        if name.ends_with(".rs") {
            assert!(
                contents.starts_with("// @generated"),
                "{name} from OUT_DIR does not start with the @generated marker"
            );
        } else {
            let doc: serde_json::Value =
                serde_json::from_str(contents).unwrap_or_else(|e| panic!("{name} from OUT_DIR is not JSON: {e}"));
            assert_eq!(doc["swagger"], "2.0", "{name} is not a Swagger 2.0 document");
        }
    }
}
