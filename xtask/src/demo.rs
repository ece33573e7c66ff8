//! `cargo xtask demo`: the main job, shown end to end.
//!
//! For now the workspace holds the pure layer only, so the demo lists the crates and their
//! roles and runs cache-core's eviction planner over a generated cache.

use std::fs;

use crate::cmd;

pub(crate) fn run() -> Result<(), String> {
    println!("modelcache workspace:");
    let root = cmd::root();
    let mut members: Vec<(String, String)> = Vec::new();
    for dir in ["crates", "."] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else { continue };
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = fs::read_to_string(&manifest) else { continue };
            let field = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(" = \"")).and_then(|r| r.strip_suffix('"')))
            };
            if let (Some(name), Some(desc)) = (field("name"), field("description")) {
                members.push((name.to_owned(), desc.to_owned()));
            }
        }
    }
    members.sort();
    for (name, desc) in &members {
        println!("  {name:<20} {desc}");
    }
    println!();
    cmd::run(cmd::cargo().args(["run", "--quiet", "--release", "-p", "cache-core", "--example", "eviction"]))?;
    Ok(())
}
