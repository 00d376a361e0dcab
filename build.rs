//! Generates one test per `.ir` file under `ir/`, so that a failing filetest names its file
//! (`tests/filetests.rs` includes the generated list).

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "ir") {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=ir");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    collect(Path::new("ir"), &mut files);
    let mut code = String::new();
    for path in files {
        let rel = path.to_string_lossy().replace('\\', "/");
        let name: String = rel
            .trim_end_matches(".ir")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        code.push_str(&format!(
            "#[test]\nfn {name}() {{\n    check_file(\"{rel}\");\n}}\n"
        ));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("filetests.rs"), code).expect("OUT_DIR is writable");
}
