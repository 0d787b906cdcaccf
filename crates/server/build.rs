//! Embeds the built dashboard (`web/dist`, committed) into the binary: generates a table of
//! every file with its content type and `include_bytes!` of its contents, so a plain
//! `cargo build` serves the dashboard and no request ever reaches the filesystem.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let dist = manifest.join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    let mut code = String::from(
        "/// Every embedded dashboard file: URL path, content type, bytes.\n\
         pub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    for f in &files {
        let rel = f.strip_prefix(&dist).expect("under dist");
        let url: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let abs = f.canonicalize().expect("asset path");
        writeln!(
            code,
            "    ({:?}, {:?}, include_bytes!({:?})),",
            format!("/{}", url.join("/")),
            content_type(f),
            abs.display().to_string()
        )
        .expect("write");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("dashboard_assets.rs");
    std::fs::write(out, code).expect("write generated assets table");
}
