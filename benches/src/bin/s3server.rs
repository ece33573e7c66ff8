//! A real S3 server for the team-tier bench: `s3s-fs` (the S3 API over a directory, one
//! file per object, ranged GETs served by seeking) on a free loopback port. moto, the
//! tests' server, reads the whole object for every ranged GET, so it cannot show what a
//! pull costs; this one can.
//!
//! ```text
//! s3server ROOT
//! ```
//! Buckets are the folders of `ROOT`. Requests must be signed with the access key and
//! secret `bench`/`bench` (AWS signature version 4, path style). Prints the port on
//! stdout, then serves until stdin closes or SIGTERM/SIGINT arrives.
#![expect(clippy::print_stderr, reason = "a command-line bench helper")]

use std::io::Write as _;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// The fixed credentials the bench signs with.
const KEY: &str = "bench";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let code = match run().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("s3server: {e}");
            1
        }
    };
    // Exit now: dropping the runtime would wait for the blocking thread reading stdin.
    std::process::exit(code);
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root] = args.as_slice() else {
        return Err("usage: s3server ROOT".to_owned());
    };
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("serving `{root}`: {e:?}"))?;
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(KEY, KEY));
        b.build()
    };
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| format!("listening on 127.0.0.1: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut out = std::io::stdout();
    writeln!(out, "{port}").and_then(|()| out.flush()).map_err(|e| format!("printing the port: {e}"))?;

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    // Serve until the parent closes our stdin (or dies) or signals us.
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::pin!(stdin_closed);
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    eprintln!("s3server: accepting a connection: {e}");
                    continue;
                }
            },
            () = &mut stdin_closed => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        };
        let _ = socket.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
