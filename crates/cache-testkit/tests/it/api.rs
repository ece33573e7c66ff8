//! The JSON API: repo info and paginated tree listings.

use cache_testkit::{Content, HubConfig, RepoSpec, TestHub};

use crate::{get, repos, send};

#[test]
fn repo_info_names_the_commit_and_siblings() {
    let hub = TestHub::start_blocking(repos());
    let main = hub.file("org/model", "main", "config.json").unwrap();
    let dev = hub.file("org/model", "dev", "config.json").unwrap();
    let v = get(&format!("{}/api/models/org/model", hub.url())).json();
    assert_eq!(v["id"], "org/model");
    assert_eq!(v["sha"], main.commit.as_str());
    let names: Vec<&str> = v["siblings"].as_array().unwrap().iter().map(|s| s["rfilename"].as_str().unwrap()).collect();
    assert_eq!(names, ["config.json", "model.safetensors", "sub/dir/notes.txt"]);
    let v = get(&format!("{}/api/models/org/model/revision/refs%2Fpr%2F1", hub.url())).json();
    assert_eq!(v["sha"], dev.commit.as_str());
    let r = get(&format!("{}/api/models/org/model/revision/nope", hub.url()));
    assert_eq!((r.status, r.header("x-error-code")), (404, Some("RevisionNotFound")));
    let v = get(&format!("{}/api/datasets/org/data", hub.url())).json();
    assert_eq!(v["siblings"][0]["rfilename"], "train.csv");
    assert_eq!(get(&format!("{}/api/spaces/org/app/revision/main", hub.url())).json()["id"], "org/app");
    assert_eq!(get(&format!("{}/api/models/org/secret", hub.url())).status, 401);
    let ok = send("GET", &format!("{}/api/models/org/secret", hub.url()), &[("Authorization", "Bearer hf_ok")], b"");
    assert_eq!(ok.json()["private"], true);
}

#[test]
fn tree_lists_files_folders_and_lfs_metadata() {
    let hub = TestHub::start_blocking(repos());
    let lfs = hub.file("org/model", "main", "model.safetensors").unwrap();
    let v = get(&format!("{}/api/models/org/model/tree/main?recursive=true", hub.url())).json();
    let entries = v.as_array().unwrap();
    let paths: Vec<(&str, &str)> = entries.iter().map(|e| (e["type"].as_str().unwrap(), e["path"].as_str().unwrap())).collect();
    assert_eq!(
        paths,
        [
            ("file", "config.json"),
            ("file", "model.safetensors"),
            ("directory", "sub"),
            ("directory", "sub/dir"),
            ("file", "sub/dir/notes.txt")
        ]
    );
    let m = &entries[1];
    assert_eq!(m["size"], 200_000);
    assert_eq!(m["lfs"]["oid"], lfs.etag.to_string());
    assert_eq!(m["lfs"]["size"], 200_000);
    assert!(m["lfs"]["pointerSize"].as_u64().unwrap() > 100);
    assert_eq!(m["oid"].as_str().unwrap().len(), 40);
    assert!(entries[0].get("lfs").is_none());
    let top = get(&format!("{}/api/models/org/model/tree/main", hub.url())).json();
    assert_eq!(top.as_array().unwrap().len(), 3, "non-recursive: two files and `sub`");
    let sub = get(&format!("{}/api/models/org/model/tree/main/sub?recursive=true", hub.url())).json();
    assert_eq!(sub.as_array().unwrap().len(), 2);
    let r = get(&format!("{}/api/models/org/model/tree/main/nope", hub.url()));
    assert_eq!((r.status, r.header("x-error-code")), (404, Some("EntryNotFound")));
}

#[test]
fn long_listings_are_paginated_with_a_link_header() {
    let mut spec = RepoSpec::model("org/many");
    for i in 0..25 {
        spec = spec.file(&format!("f{i:02}.txt"), Content::from(format!("{i}")));
    }
    let hub = TestHub::start_blocking_with(HubConfig { tree_page_size: 10, ..HubConfig::default() }, [spec]);
    let mut url = Some(format!("{}/api/models/org/many/tree/main?recursive=true", hub.url()));
    let mut seen = Vec::new();
    while let Some(u) = url.take() {
        let r = get(&u);
        for e in r.json().as_array().unwrap() {
            seen.push(e["path"].as_str().unwrap().to_owned());
        }
        url = r.header("link").map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
    }
    let want: Vec<String> = (0..25).map(|i| format!("f{i:02}.txt")).collect();
    assert_eq!(seen, want);
}
