//! The control API under `/_testkit/`, so scripts and tests in other processes can drive
//! a running hub:
//!
//! | request | effect |
//! |---|---|
//! | `GET /_testkit/health` | `ok` |
//! | `GET /_testkit/faults` | the faults in force, as JSON ([`Faults`](crate::Faults)) |
//! | `POST /_testkit/faults` (JSON body) | replaces the faults; `{}` clears them |
//! | `DELETE /_testkit/faults` | clears the faults |
//! | `GET /_testkit/stats` | the counters, as JSON ([`Stats`](crate::Stats)) |
//! | `POST /_testkit/stats/reset` | zeroes the counters |
//!
//! Control requests are not counted.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};

use crate::body::{Body, empty, full};
use crate::faults::Faults;
use crate::routes::hub_error;
use crate::server::Shared;

fn json(value: &impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    Response::builder().header(header::CONTENT_TYPE, "application/json").body(full(text)).expect("valid response")
}

pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_start_matches("/_testkit/").to_owned();
    match (method, path.as_str()) {
        (Method::GET, "health") => Response::new(full("ok")),
        (Method::GET, "faults") => json(&*shared.faults()),
        (Method::DELETE, "faults") => {
            *shared.faults() = Faults::default();
            Response::builder().status(StatusCode::NO_CONTENT).body(empty()).expect("valid response")
        }
        (Method::POST, "faults") => {
            let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return hub_error(StatusCode::BAD_REQUEST, None, &format!("unreadable body: {e}")),
            };
            let text = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &body[..] };
            match serde_json::from_slice::<Faults>(text) {
                Ok(f) => {
                    *shared.faults() = f.clone();
                    json(&f)
                }
                Err(e) => hub_error(StatusCode::BAD_REQUEST, None, &format!("invalid faults JSON: {e}")),
            }
        }
        (Method::GET, "stats") => json(&*shared.stats()),
        (Method::POST, "stats/reset") => {
            *shared.stats() = crate::Stats::default();
            Response::builder().status(StatusCode::NO_CONTENT).body(empty()).expect("valid response")
        }
        _ => hub_error(StatusCode::NOT_FOUND, None, "unknown control endpoint"),
    }
}
