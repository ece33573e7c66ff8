//! The Rust `hf-hub` crate (its tokio API) as a benchmark contender, so `cargo xtask bench`
//! can run it as a whole process like the other contenders.
//!
//! ```text
//! hfhub get ENDPOINT CACHE_DIR ORG/NAME FILE... [--offline]
//! hfhub snapshot ENDPOINT CACHE_DIR ORG/NAME
//! ```
//! Prints one path per line.
#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a command-line contender")]

use std::process::ExitCode;

use hf_hub::HFClient;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hfhub: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let offline = args.iter().any(|a| a == "--offline");
    let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--offline").collect();
    let [cmd, endpoint, cache_dir, repo, files @ ..] = args.as_slice() else {
        return Err("usage: hfhub get|snapshot ENDPOINT CACHE_DIR ORG/NAME [FILE...] [--offline]".to_owned());
    };
    let (owner, name) = repo.split_once('/').ok_or("the repo must be ORG/NAME")?;
    let client = HFClient::builder().endpoint(*endpoint).cache_dir(*cache_dir).build().map_err(|e| e.to_string())?;
    let repo = client.model(owner, name);
    match *cmd {
        "get" => {
            for file in files {
                let path =
                    repo.download_file().filename(*file).local_files_only(offline).send().await.map_err(|e| e.to_string())?;
                println!("{}", path.display());
            }
        }
        "snapshot" => {
            let path = repo.snapshot_download().local_files_only(offline).send().await.map_err(|e| e.to_string())?;
            println!("{}", path.display());
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}
