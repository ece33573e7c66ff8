//! Counters of what the hub served: requests per route and path, body bytes sent (total
//! and per path), and a log of recent requests, so tests can assert "exactly one download
//! happened" or "at most 1 % was sent twice".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The routes the hub counts requests for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `HEAD /{repo}/resolve/{rev}/{path}`.
    ResolveHead,
    /// `GET /{repo}/resolve/{rev}/{path}`.
    ResolveGet,
    /// `HEAD /cdn/{sha256}`.
    CdnHead,
    /// `GET /cdn/{sha256}`.
    CdnGet,
    /// `GET /api/{type}s/{repo}[/revision/{rev}]`.
    ApiRepo,
    /// `GET /api/{type}s/{repo}/tree/{rev}[/{path}]`.
    ApiTree,
    /// Anything else (answered 404).
    Other,
}

impl Route {
    /// The snake-case name used as the key in [`Stats::requests`].
    pub fn as_str(self) -> &'static str {
        match self {
            Route::ResolveHead => "resolve_head",
            Route::ResolveGet => "resolve_get",
            Route::CdnHead => "cdn_head",
            Route::CdnGet => "cdn_get",
            Route::ApiRepo => "api_repo",
            Route::ApiTree => "api_tree",
            Route::Other => "other",
        }
    }
}

/// One request, as the hub saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path and query as received.
    pub path: String,
    /// Which route served it.
    pub route: Route,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Whether an `Authorization` header was sent (its value is never recorded).
    pub authorization: bool,
    /// The status answered.
    pub status: u16,
    /// Which listener received it: `hub` or `cdn`.
    pub listener: String,
}

/// A snapshot of the counters since the start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests per route name (`resolve_head`, `cdn_get`, ...), control requests excluded.
    pub requests: BTreeMap<String, u64>,
    /// Requests per path (without query).
    pub requests_by_path: BTreeMap<String, u64>,
    /// All body bytes sent, every route together.
    pub body_bytes: u64,
    /// Body bytes sent per path (without query).
    pub bytes_by_path: BTreeMap<String, u64>,
    /// Requests that reached the CDN listener with an `Authorization` header.
    pub cdn_requests_with_authorization: u64,
    /// The most recent requests, oldest first (at most 10 000).
    pub log: Vec<RequestRecord>,
}

const MAX_LOG: usize = 10_000;

impl Stats {
    /// Requests counted for `route`.
    pub fn count(&self, route: Route) -> u64 {
        self.requests.get(route.as_str()).copied().unwrap_or(0)
    }

    /// Total requests counted, all routes.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Body bytes sent for paths containing `needle`.
    pub fn bytes_for(&self, needle: &str) -> u64 {
        self.bytes_by_path.iter().filter(|(p, _)| p.contains(needle)).map(|(_, b)| b).sum()
    }

    pub(crate) fn record(&mut self, record: RequestRecord) {
        *self.requests.entry(record.route.as_str().to_owned()).or_default() += 1;
        let path = record.path.split('?').next().unwrap_or_default().to_owned();
        *self.requests_by_path.entry(path).or_default() += 1;
        if record.listener == "cdn" && record.authorization {
            self.cdn_requests_with_authorization += 1;
        }
        if self.log.len() >= MAX_LOG {
            self.log.remove(0);
        }
        self.log.push(record);
    }

    pub(crate) fn add_bytes(&mut self, path: &str, n: u64) {
        self.body_bytes += n;
        *self.bytes_by_path.entry(path.to_owned()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_per_route_and_path() {
        let mut s = Stats::default();
        let rec = |path: &str, listener: &str, auth| RequestRecord {
            method: "GET".into(),
            path: path.into(),
            route: Route::CdnGet,
            range: None,
            authorization: auth,
            status: 200,
            listener: listener.into(),
        };
        s.record(rec("/cdn/a?x=1", "cdn", true));
        s.record(rec("/cdn/a", "cdn", false));
        s.add_bytes("/cdn/a", 10);
        s.add_bytes("/cdn/b", 5);
        assert_eq!(s.count(Route::CdnGet), 2);
        assert_eq!(s.requests_by_path["/cdn/a"], 2);
        assert_eq!(s.cdn_requests_with_authorization, 1);
        assert_eq!(s.body_bytes, 15);
        assert_eq!(s.bytes_for("/cdn/"), 15);
        assert_eq!(s.total_requests(), 2);
    }
}
