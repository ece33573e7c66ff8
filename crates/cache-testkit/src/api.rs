//! The JSON API: repo info (`/api/{type}s/{repo}[/revision/{rev}]`) and tree listings
//! (`/api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=true`), paginated with a `Link`
//! header as the Hub does.

use std::collections::BTreeSet;

use cache_core::{GitSha1, RepoType};
use hyper::header;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::body::{Body, full};
use crate::repo::{Access, HubCommit, HubRepo};
use crate::routes::{Ctx, authorized_repo, commit_of, hub_error, percent_decode};

const DATE: &str = "2024-01-01T00:00:00.000Z";

fn json_response(value: &Value) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(full(value.to_string()))
        .expect("valid response")
}

pub(crate) fn handle(ctx: &Ctx, segments: &[&str]) -> Response<Body> {
    // segments: ["api", "models", id…, ("revision", rev) | ("tree", rev, path…)]
    let repo_type: RepoType = segments[1].parse().expect("classified as an API route");
    let rest = &segments[2..];
    let keyword = rest.iter().position(|s| *s == "revision" || *s == "tree").filter(|&i| i == 1 || i == 2);
    let (id_parts, tail) = match keyword {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &[][..]),
    };
    if id_parts.is_empty() || id_parts.len() > 2 {
        return hub_error(StatusCode::NOT_FOUND, Some("RepoNotFound"), "Repository not found");
    }
    let id = id_parts.join("/");
    let repo = match authorized_repo(ctx, repo_type, &id) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let decoded: Option<Vec<String>> = tail.iter().skip(1).map(|s| percent_decode(s)).collect();
    let Some(decoded) = decoded else {
        return hub_error(StatusCode::BAD_REQUEST, None, "malformed percent-encoding");
    };
    let rev = decoded.first().map_or("main", String::as_str);
    let commit = match commit_of(&repo, rev) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    match tail.first() {
        Some(&"tree") => tree(ctx, &decoded[1..].join("/"), commit),
        Some(_) if tail.len() != 2 => hub_error(StatusCode::NOT_FOUND, None, "not found"),
        _ => json_response(&info(&repo, commit)),
    }
}

fn info(repo: &HubRepo, commit: &HubCommit) -> Value {
    let id = repo.repo.id.as_str();
    let siblings: Vec<Value> = commit.files.keys().map(|p| json!({ "rfilename": p })).collect();
    let used: u64 = commit.files.values().map(|f| f.size()).sum();
    let mut v = json!({
        "_id": &GitSha1::of(id.as_bytes()).to_hex()[..24],
        "id": id,
        "author": repo.repo.id.namespace(),
        "sha": commit.hash.as_str(),
        "lastModified": DATE,
        "createdAt": DATE,
        "private": matches!(repo.access, Access::Private { .. }),
        "gated": if matches!(repo.access, Access::Gated { .. }) { json!("manual") } else { json!(false) },
        "disabled": false,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": used,
    });
    if repo.repo.repo_type == RepoType::Model {
        v["modelId"] = json!(id);
    }
    v
}

fn tree(ctx: &Ctx, dir: &str, commit: &HubCommit) -> Response<Body> {
    let recursive = ctx.query.split('&').any(|kv| kv == "recursive=true" || kv == "recursive=1" || kv == "recursive=True");
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut dirs = BTreeSet::new();
    let mut entries: Vec<(String, Value)> = Vec::new();
    for (path, file) in &commit.files {
        let Some(rel) = path.strip_prefix(&prefix) else { continue };
        let parts: Vec<&str> = rel.split('/').collect();
        // Every folder between the listed one and the file.
        for depth in 1..parts.len() {
            if !recursive && depth > 1 {
                break;
            }
            dirs.insert(format!("{prefix}{}", parts[..depth].join("/")));
        }
        if !recursive && parts.len() > 1 {
            continue;
        }
        let mut e = json!({ "type": "file", "oid": file.oid.to_hex(), "size": file.size(), "path": path });
        if let Some(sha) = file.sha256 {
            e["lfs"] = json!({ "oid": sha.to_hex(), "size": file.size(), "pointerSize": file.pointer_size });
        }
        if let Some(x) = &file.xet_hash {
            e["xetHash"] = json!(x);
        }
        entries.push((path.clone(), e));
    }
    if entries.is_empty() && dirs.is_empty() && !dir.is_empty() {
        return hub_error(StatusCode::NOT_FOUND, Some("EntryNotFound"), &format!("{dir} does not exist"));
    }
    for d in dirs {
        let e = json!({ "type": "directory", "oid": GitSha1::of(d.as_bytes()).to_hex(), "size": 0, "path": d });
        entries.push((d, e));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let cursor: usize = ctx.query.split('&').find_map(|kv| kv.strip_prefix("cursor=")).and_then(|c| c.parse().ok()).unwrap_or(0);
    let page = ctx.shared.config.tree_page_size.max(1);
    let end = (cursor + page).min(entries.len());
    let items: Vec<Value> = entries.get(cursor.min(end)..end).unwrap_or_default().iter().map(|(_, v)| v.clone()).collect();
    let mut response = json_response(&Value::Array(items));
    let looping = {
        let faults = ctx.shared.faults();
        faults.loop_listing && faults.applies_to(&ctx.path)
    };
    if looping {
        let query = if ctx.query.is_empty() { String::new() } else { format!("?{}", ctx.query) };
        let link = format!("<{}{}{query}>; rel=\"next\"", ctx.shared.hub_url, ctx.path);
        response.headers_mut().insert(header::LINK, link.parse().expect("ascii link"));
    } else if end < entries.len() {
        let mut query: Vec<&str> = ctx.query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("cursor=")).collect();
        let next_cursor = format!("cursor={end}");
        query.push(&next_cursor);
        let link = format!("<{}{}?{}>; rel=\"next\"", ctx.shared.hub_url, ctx.path, query.join("&"));
        response.headers_mut().insert(header::LINK, link.parse().expect("ascii link"));
    }
    response
}
