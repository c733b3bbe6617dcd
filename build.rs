//! Embeds the web console: every file of `web/dist` (built by `scripts/build-web.sh`, which
//! `make server` and `make test` run) goes into the binary through `include_bytes!`. With no
//! `web/dist/index.html` the list is empty and the server serves a page saying how to build
//! the console, so `cargo build` alone still builds a working server.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path.canonicalize().unwrap_or(path.clone())));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("web/dist");
    // Watch the build's output when there is one; else the folder it will appear in.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=web/dist");
    } else {
        println!("cargo:rerun-if-changed=web");
    }
    let mut found = Vec::new();
    if dist.join("index.html").is_file() {
        files(&dist, &dist, &mut found);
    }
    let mut code = String::from("/// The console's files (`web/dist`), by path.\npub static CONSOLE_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &found {
        code.push_str(&format!("    ({rel:?}, include_bytes!({:?})),\n", path.to_string_lossy()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("console_files.rs");
    fs::write(out, code).expect("cannot write the console's file list into OUT_DIR");
}
