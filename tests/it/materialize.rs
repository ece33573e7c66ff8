//! `get … --to DIR`: the files of a revision placed into a plain directory, with
//! huggingface_hub's `local_dir` metadata, incrementally, never outside DIR, never
//! changing the cache's bytes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cache_testkit::{Content, RepoSpec, TestHub, python};

use crate::{Env, Run};

const WEIGHTS: u64 = 2 * 1024 * 1024;

fn repo() -> RepoSpec {
    RepoSpec::model("org/model")
        .file("config.json", r#"{"hidden_size": 64}"#)
        .file("tokenizer.json", Content::generated(4000, 7))
        .lfs_file("model.safetensors", Content::generated(WEIGHTS, 1))
        .lfs_file("onnx/model.onnx", Content::generated(300_000, 2))
}

fn sha256(path: &Path) -> String {
    cache_core::Sha256::of(&std::fs::read(path).unwrap()).to_string()
}

/// `python -c script` on the env's cache (online: the testkit hub).
fn python(env: &Env, script: &str, extra: &[(&str, &str)]) -> Run {
    let mut c = env.with_env(python::require_interpreter());
    c.args(["-c", script]).env("HF_HUB_DISABLE_TELEMETRY", "1").env("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    for (k, v) in extra {
        c.env(k, v);
    }
    Run::from(&c.output().unwrap())
}

fn modes(v: &serde_json::Value) -> Vec<(String, String, bool)> {
    v[0]["materialized"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["path"].as_str().unwrap().to_owned(), f["mode"].as_str().unwrap().to_owned(), f["unchanged"].as_bool().unwrap())
        })
        .collect()
}

fn blob_of(env: &Env, name: &str) -> PathBuf {
    let content = match name {
        "model.safetensors" => Content::generated(WEIGHTS, 1),
        _ => Content::generated(300_000, 2),
    };
    env.hub_dir().join("models--org--model/blobs").join(content.sha256().to_string())
}

#[test]
fn get_to_places_copies_that_huggingface_hub_finds_up_to_date_and_edits_never_reach_the_cache() {
    let hub = TestHub::start_blocking([repo()]);
    let env = Env::new(&hub);
    let dir = env.tmp.path().join("out");
    let got = env.run(&["--json", "get", "org/model", "--to", dir.to_str().unwrap()]).ok().json();
    let placed = modes(&got);
    let names: Vec<&str> = placed.iter().map(|(p, ..)| p.as_str()).collect();
    assert_eq!(names, ["config.json", "model.safetensors", "onnx/model.onnx", "tokenizer.json"]);
    for (path, mode, unchanged) in &placed {
        assert!(!unchanged, "{path}: first run places everything");
        let expected = if path.ends_with(".json") { vec!["copy"] } else { vec!["reflink", "copy"] };
        assert!(expected.contains(&mode.as_str()), "{path}: {mode}");
        let file = std::fs::symlink_metadata(dir.join(path)).unwrap();
        assert!(file.file_type().is_file() && file.mode() & 0o200 != 0, "{path}: a writable regular file");
    }
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), Content::generated(WEIGHTS, 1).to_vec());
    let commit = got[0]["commit"].as_str().unwrap().to_owned();
    let meta = std::fs::read_to_string(dir.join(".cache/huggingface/download/onnx/model.onnx.metadata")).unwrap();
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines[..2], [commit.as_str(), Content::generated(300_000, 2).sha256().to_string().as_str()]);
    assert!(lines[2].parse::<f64>().is_ok(), "a timestamp: {meta}");

    // huggingface_hub sees the directory as up to date: nothing is downloaded.
    hub.reset_stats();
    let script = format!(
        r#"
import warnings
from huggingface_hub import hf_hub_download, snapshot_download
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for f in ["config.json", "model.safetensors", "onnx/model.onnx", "tokenizer.json"]:
        print(hf_hub_download("org/model", f, revision="{commit}", local_dir=r"{dir}"))
    print(snapshot_download("org/model", local_dir=r"{dir}"))
print("warnings:", [str(w.message) for w in caught])
"#,
        dir = dir.display()
    );
    let py = python(&env, &script, &[]).ok();
    assert!(py.stdout.contains("warnings: []"), "{}\n{}", py.stdout, py.stderr);
    let served = hub.stats();
    assert_eq!(served.body_bytes - served.bytes_for("/api/"), 0, "no file body was sent: {:?}", served.bytes_by_path);
    let offline = python(&env, &script, &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(offline.code, 0, "offline too: {}", offline.stderr);

    // Editing the copy leaves the cache's bytes as they were.
    let blob = blob_of(&env, "model.safetensors");
    let before = sha256(&blob);
    std::fs::write(dir.join("model.safetensors"), b"edited").unwrap();
    assert_eq!(sha256(&blob), before);
    env.run(&["verify", "org/model"]).ok();
}

#[test]
fn a_second_run_touches_nothing_and_restores_changed_or_deleted_files() {
    let hub = TestHub::start_blocking([repo()]);
    let env = Env::new(&hub);
    let dir = env.tmp.path().join("out");
    let to = dir.to_str().unwrap();
    env.run(&["get", "org/model", "--to", to]).ok();
    let stamp = |p: &str| {
        let m = std::fs::symlink_metadata(dir.join(p)).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec(), m.ctime_nsec())
    };
    let all = ["config.json", "model.safetensors", "onnx/model.onnx", "tokenizer.json"];
    let before: Vec<_> = all.iter().map(|p| stamp(p)).collect();
    let again = env.run(&["--json", "get", "org/model", "--to", to]).ok().json();
    assert!(modes(&again).iter().all(|(_, _, unchanged)| *unchanged), "{again}");
    assert_eq!(all.iter().map(|p| stamp(p)).collect::<Vec<_>>(), before, "nothing was touched");
    let note = env.run(&["get", "org/model", "--to", to]).ok().stderr;
    assert!(note.contains("nothing to place") && note.contains("4 already in place"), "{note}");

    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::remove_file(dir.join("onnx/model.onnx")).unwrap();
    let third = env.run(&["--json", "get", "org/model", "--to", to]).ok().json();
    let changed: Vec<String> = modes(&third).into_iter().filter(|(_, _, unchanged)| !unchanged).map(|(p, ..)| p).collect();
    assert_eq!(changed, ["config.json", "onnx/model.onnx"]);
    assert_eq!(std::fs::read_to_string(dir.join("config.json")).unwrap(), r#"{"hidden_size": 64}"#);
    assert_eq!(std::fs::read(dir.join("onnx/model.onnx")).unwrap(), Content::generated(300_000, 2).to_vec());
    assert_eq!(stamp("model.safetensors"), before[1]);
}

#[test]
fn hardlinks_are_the_cache_file_read_only_and_symlinks_point_into_it_but_configs_are_copies() {
    let hub = TestHub::start_blocking([repo()]);
    let env = Env::new(&hub);
    let (hard, soft) = (env.tmp.path().join("hard"), env.tmp.path().join("soft"));
    let got = env.run(&["--json", "get", "org/model", "--to", hard.to_str().unwrap(), "--link-mode", "hardlink"]).ok().json();
    let placed = modes(&got);
    assert_eq!(placed[0].1, "copy", "small configs are copies: {got}");
    assert_eq!(placed[1].1, "hardlink");
    let (file, blob) = (
        std::fs::metadata(hard.join("model.safetensors")).unwrap(),
        std::fs::metadata(blob_of(&env, "model.safetensors")).unwrap(),
    );
    assert_eq!((file.ino(), file.permissions().mode() & 0o222), (blob.ino(), 0), "the cache's inode, read-only");
    assert!(std::fs::metadata(hard.join("config.json")).unwrap().ino() != 0);

    let got = env
        .run(&["--json", "get", "org/model", "model.safetensors", "--to", soft.to_str().unwrap(), "--link-mode", "symlink"])
        .ok();
    assert_eq!(got.json()[0]["materialized"]["files"][0]["mode"], "symlink");
    let link = std::fs::read_link(soft.join("model.safetensors")).unwrap();
    assert!(link.is_absolute() && link.starts_with(env.hub_dir().canonicalize().unwrap()), "{}", link.display());
    assert_eq!(got.lines().len(), 1);
    let printed =
        env.run(&["get", "org/model", "model.safetensors", "--to", soft.to_str().unwrap(), "--link-mode", "symlink"]).ok();
    assert_eq!(printed.stdout.trim(), soft.canonicalize().unwrap().join("model.safetensors").to_str().unwrap());
}

#[test]
fn a_symlink_inside_the_directory_leading_out_of_it_is_refused_and_nothing_is_written_outside() {
    let hub = TestHub::start_blocking([repo()]);
    let env = Env::new(&hub);
    let (dir, outside) = (env.tmp.path().join("out"), env.tmp.path().join("elsewhere"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("onnx")).unwrap();
    let run = env.run(&["get", "org/model", "--to", dir.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("leads outside it through a symlink"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing was written outside the directory");
    let url = env.run(&["get", "https://example.invalid/x.bin", "--to", dir.to_str().unwrap()]).expect(2);
    assert!(url.stderr.contains("`--to` applies to repositories only"), "{}", url.stderr);
}

/// On a filesystem with reflinks (an XFS image mounted through a loop device, when this
/// machine lets the test make one), `auto` reflinks: the copy uses no new blocks.
#[test]
fn on_a_reflink_filesystem_auto_clones_without_using_blocks() {
    let Some(mount) = XfsImage::create() else { return };
    let hub = TestHub::start_blocking([repo()]);
    let mut env = Env::new(&hub);
    let cache = mount.path.join("hub");
    env.var("HF_HUB_CACHE", cache.to_str().unwrap());
    env.run(&["get", "org/model"]).ok();
    let used = || rustix::fs::statvfs(&mount.path).map(|s| (s.f_blocks - s.f_bfree) * s.f_frsize).unwrap();
    let before = used();
    let dir = mount.path.join("out");
    let got = env.run(&["--json", "get", "org/model", "--to", dir.to_str().unwrap()]).ok().json();
    assert_eq!(modes(&got)[1].1, "reflink", "{got}");
    assert!(used() - before < WEIGHTS / 4, "the clone shares the blob's blocks");
    std::fs::write(dir.join("model.safetensors"), b"edited").unwrap();
    env.run(&["verify", "org/model"]).ok();
}

/// A loop-mounted XFS image with reflinks, removed on drop.
struct XfsImage {
    path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl XfsImage {
    #[expect(clippy::print_stderr, reason = "a test that cannot run here says so")]
    fn create() -> Option<XfsImage> {
        let tmp = tempfile::tempdir().unwrap();
        let (image, path) = (tmp.path().join("xfs.img"), tmp.path().join("mnt"));
        std::fs::create_dir_all(&path).unwrap();
        let ok = |c: &mut std::process::Command| c.output().is_ok_and(|o| o.status.success());
        if !ok(std::process::Command::new("truncate").args(["-s", "512M"]).arg(&image))
            || !ok(std::process::Command::new("mkfs.xfs").args(["-q", "-m", "reflink=1"]).arg(&image))
        {
            eprintln!(
                "skipped: cannot create an XFS image here (`mkfs.xfs` from xfsprogs is needed); only the copy path was tested"
            );
            return None;
        }
        if !ok(std::process::Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&path)) {
            eprintln!(
                "skipped: cannot loop-mount an XFS image here (needs root and a loop device); only the copy path was tested"
            );
            return None;
        }
        Some(XfsImage { path, _tmp: tmp })
    }
}

impl Drop for XfsImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.path).status();
    }
}
