//! Integration tests of the testkit hub, driven over real HTTP by a minimal client, by the
//! real `huggingface_hub`, and through the `serve` command.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod api;
mod cli;
mod control;
mod python;
mod resolve;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cache_testkit::{Content, RepoSpec};

/// A response as read off the wire.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Raw {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole answer.
pub(crate) fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete header block");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    Raw { status, headers, body: raw[split + 4..].to_vec() }
}

pub(crate) fn get(url: &str) -> Raw {
    send("GET", url, &[], b"")
}

pub(crate) fn repos() -> Vec<RepoSpec> {
    vec![
        RepoSpec::model("org/model")
            .file("config.json", r#"{"a": 1}"#)
            .file("sub/dir/notes.txt", "notes")
            .lfs_file("model.safetensors", Content::generated(200_000, 1))
            .commit()
            .tag("v1")
            .on_branch("dev")
            .file("config.json", r#"{"a": 2}"#)
            .commit()
            .pr(1),
        RepoSpec::dataset("org/data").file("train.csv", "a,b\n1,2\n"),
        RepoSpec::space("org/app").file("app.py", "print(1)"),
        RepoSpec::model("org/secret").file("a.txt", "s").private("hf_ok"),
        RepoSpec::model("org/gated").file("a.txt", "g").gated("hf_ok"),
        RepoSpec::model("solo").file("x.txt", "x"),
    ]
}
