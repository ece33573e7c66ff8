//! The checks of [`CacheManager::doctor`](crate::CacheManager::doctor) that read the
//! environment and the roots' ownership: settings that contradict each other, a token
//! file that cannot be read, roots on read-only mounts or owned by another user. Pure
//! functions of what they are given, so each case is tested without touching the machine.

use std::path::{Path, PathBuf};

use crate::doctor::{CheckStatus, DoctorReport};

/// Whether an `HF_*` boolean is set to true, as huggingface_hub reads it.
fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// Contradicting settings and an unreadable token file.
pub(crate) fn check_environment(r: &mut DoctorReport, env: &dyn Fn(&str) -> Option<String>) {
    use CheckStatus::{Ok as Good, Warn};
    let mut found = Vec::new();
    if truthy(env("HF_HUB_OFFLINE")) && env("MODELCACHE_REMOTE").is_some_and(|v| !v.trim().is_empty()) {
        found.push((
            "`HF_HUB_OFFLINE` is set while a remote is configured (`MODELCACHE_REMOTE`): offline runs reach neither the Hub nor the remote".to_owned(),
            "unset `HF_HUB_OFFLINE` to use the remote, or unset `MODELCACHE_REMOTE`".to_owned(),
        ));
    }
    if let (Some(hub), Some(home)) = (env("HF_HUB_CACHE"), env("HF_HOME")) {
        let expected = Path::new(&home).join("hub");
        if Path::new(&hub) != expected {
            found.push((
                format!(
                    "`HF_HUB_CACHE` (`{hub}`) is not `$HF_HOME/hub` (`{}`): tools that read only `HF_HOME` (the hf-hub crate) use another cache",
                    expected.display()
                ),
                "point both at one place: unset `HF_HUB_CACHE`, or set it to `$HF_HOME/hub`".to_owned(),
            ));
        }
    }
    if env("HF_TOKEN").is_none_or(|t| t.trim().is_empty())
        && let Some(file) = cache_hf::token_file(env)
        && file.exists()
        && let Err(e) = std::fs::read_to_string(&file)
    {
        found.push((
            format!("the token file `{}` cannot be read ({e}): private and gated repositories will be refused", file.display()),
            format!("fix its permissions (`chmod 600 {}`), or set `HF_TOKEN`", file.display()),
        ));
    }
    if found.is_empty() {
        r.push("environment", Good, "no conflicting settings".to_owned(), None);
    }
    for (detail, hint) in found {
        r.push("environment", Warn, detail, Some(hint));
    }
}

/// One root as the ownership check sees it.
pub(crate) struct Root<'a> {
    pub(crate) what: &'a str,
    pub(crate) path: PathBuf,
    pub(crate) read_only: bool,
    pub(crate) owner: u32,
    pub(crate) you: u32,
    /// The setting that moves it, quoted (`` `cache_dir` (`HF_HUB_CACHE`) ``).
    pub(crate) setting: &'a str,
}

/// Roots on read-only mounts (nothing can be downloaded) or owned by another user.
pub(crate) fn check_access(r: &mut DoctorReport, roots: &[Root<'_>]) {
    use CheckStatus::{Fail, Ok as Good, Warn};
    let before = r.checks.len();
    for root in roots {
        let path = root.path.display();
        if root.read_only {
            r.push(
                "permissions",
                Fail,
                format!("the {} `{path}` is on a read-only mount: nothing can be downloaded or recorded", root.what),
                Some(format!("remount it read-write, or set {} to a writable directory", root.setting)),
            );
        }
        if root.owner != root.you {
            r.push(
                "permissions",
                Warn,
                format!("the {} `{path}` is owned by uid {}, not by you (uid {})", root.what, root.owner, root.you),
                Some(format!(
                    "run as its owner, `chown -R {} {path}`, or set {} to a directory of your own",
                    root.you, root.setting
                )),
            );
        }
    }
    if r.checks.len() == before {
        r.push("permissions", Good, "both roots are yours and writable".to_owned(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&'static str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(&'static str, String)> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn run(vars: &[(&'static str, &str)]) -> DoctorReport {
        let mut r = DoctorReport::default();
        check_environment(&mut r, &env(vars));
        r
    }

    #[test]
    fn conflicting_settings_are_findings_with_a_next_step() {
        let clean = run(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/hf/hub"), ("HF_HUB_OFFLINE", "1")]);
        assert_eq!(clean.status(), CheckStatus::Ok, "{clean:?}");

        let r = run(&[("HF_HUB_OFFLINE", "1"), ("MODELCACHE_REMOTE", "s3://team/cache")]);
        let c = &r.checks[0];
        assert_eq!((c.name.as_str(), c.status), ("environment", CheckStatus::Warn));
        assert!(c.detail.contains("`HF_HUB_OFFLINE`") && c.hint.as_deref().unwrap().contains("unset `HF_HUB_OFFLINE`"));
        assert_eq!(run(&[("HF_HUB_OFFLINE", "0"), ("MODELCACHE_REMOTE", "s3://x")]).status(), CheckStatus::Ok);

        let r = run(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/data/hub")]);
        assert!(r.checks[0].detail.contains("`/hf/hub`") && r.checks[0].detail.contains("hf-hub"), "{r:?}");
    }

    #[test]
    fn an_unreadable_token_file_is_a_finding_unless_hf_token_is_set() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: unreadable as a file for any user.
        std::fs::create_dir(dir.path().join("token")).unwrap();
        let home = dir.path().to_str().unwrap();
        let r = run(&[("HF_HOME", home), ("HF_HUB_CACHE", &format!("{home}/hub"))]);
        assert_eq!(r.status(), CheckStatus::Warn, "{r:?}");
        assert!(r.checks[0].hint.as_deref().unwrap().contains("chmod 600"), "{r:?}");
        assert_eq!(
            run(&[("HF_HOME", home), ("HF_HUB_CACHE", &format!("{home}/hub")), ("HF_TOKEN", "hf_x")]).status(),
            CheckStatus::Ok
        );
    }

    #[test]
    fn read_only_and_foreign_roots_name_the_setting_that_moves_them() {
        let root =
            |read_only, owner| Root { what: "hub cache", path: "/c".into(), read_only, owner, you: 1000, setting: "`cache_dir`" };
        let mut r = DoctorReport::default();
        check_access(&mut r, &[root(false, 1000)]);
        assert_eq!(r.status(), CheckStatus::Ok);
        let mut r = DoctorReport::default();
        check_access(&mut r, &[root(true, 0)]);
        assert_eq!(r.status(), CheckStatus::Fail);
        assert!(r.checks[0].detail.contains("read-only") && r.checks[0].hint.as_deref().unwrap().contains("`cache_dir`"));
        assert!(r.checks[1].detail.contains("owned by uid 0, not by you (uid 1000)"), "{r:?}");
    }
}
