//! Regenerates models, the `Api` trait, the route table, the client and the
//! merged Swagger document from `api-spec/` into `OUT_DIR` on every build
//! where the spec changed. `generated/` holds the checked-in readable copy.

#[path = "src/codegen/mod.rs"]
mod codegen;

use std::path::Path;

fn main() {
    let spec_dir = Path::new("api-spec");
    // Directories too, so that adding a spec file reruns the generator.
    println!("cargo:rerun-if-changed=api-spec");
    println!("cargo:rerun-if-changed=api-spec/definitions");
    let generated = match codegen::generate(spec_dir) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: cannot generate code from api-spec/: {e}");
            std::process::exit(1);
        }
    };
    for input in &generated.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    for (name, contents) in &generated.files {
        let path = Path::new(&out_dir).join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}
