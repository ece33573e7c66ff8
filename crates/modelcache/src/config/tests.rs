use std::collections::HashMap;

use super::*;

fn loader(vars: &[(&str, &str)]) -> ConfigLoader {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ConfigLoader::with_env(move |k| map.get(k).cloned())
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_follow_huggingface_and_xdg() {
    let eff = loader(&[("HOME", "/h")]).load().unwrap();
    assert_eq!(eff.config.cache_dir, Path::new("/h/.cache/huggingface/hub"));
    assert_eq!(eff.config.home, Path::new("/h/.cache/modelcache"));
    assert_eq!(eff.config.endpoint, DEFAULT_ENDPOINT);
    assert!(!eff.config.offline);
    assert_eq!(eff.source(Key::Retries), &Source::Default);
    assert_eq!(eff.file, None, "no config file exists under /h");

    let eff = loader(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/xdg")]).load().unwrap();
    assert_eq!(eff.config.cache_dir, Path::new("/xdg/huggingface/hub"));
    assert_eq!(eff.config.home, Path::new("/xdg/modelcache"));

    let eff = loader(&[("HOME", "/h"), ("HF_HOME", "/hf")]).load().unwrap();
    assert_eq!(eff.config.cache_dir, Path::new("/hf/hub"));
    let eff = loader(&[("HOME", "/h"), ("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/hub"), ("MODELCACHE_HOME", "/mc")]).load().unwrap();
    assert_eq!(eff.config.cache_dir, Path::new("/hub"));
    assert_eq!(eff.source(Key::CacheDir), &Source::Env("HF_HUB_CACHE".into()));
    assert_eq!(eff.config.home, Path::new("/mc"));
}

#[test]
fn layers_apply_in_order_and_remember_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(&dir, "max_size = \"10GiB\"\nmax_age = \"7d\"\nretries = 2\nparallelism = 4\nlow_watermark = 0.5\n");
    let eff =
        loader(&[("HOME", "/h"), ("MODELCACHE_RETRIES", "3")]).config_file(&file).set(Key::Parallelism, "16").load().unwrap();
    let c = &eff.config;
    assert_eq!(c.max_size, Some(ByteSize::new(10 << 30)));
    assert_eq!(c.max_age, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(c.low_watermark, 0.5);
    assert_eq!(c.retries, 3, "env beats the file");
    assert_eq!(c.parallelism, 16, "explicit beats everything");
    assert_eq!(eff.source(Key::MaxSize), &Source::File(file.clone()));
    assert_eq!(eff.source(Key::Retries), &Source::Env("MODELCACHE_RETRIES".into()));
    assert_eq!(eff.source(Key::Parallelism), &Source::Explicit);
    assert_eq!(eff.file.as_deref(), Some(file.as_path()));
    let policy = c.eviction_policy();
    assert_eq!(policy.max_size, Some(10 << 30));
    assert_eq!(policy.low_watermark, 0.5);

    let rows = eff.explain();
    assert_eq!(rows.len(), Key::ALL.len());
    assert!(rows.contains(&(Key::MaxSize, "10 GiB".to_owned(), Source::File(file))));
}

#[test]
fn the_config_file_location_comes_from_xdg_or_modelcache_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("modelcache")).unwrap();
    std::fs::write(dir.path().join("modelcache/config.toml"), "retries = 9\n").unwrap();
    let xdg = dir.path().to_str().unwrap().to_owned();
    let eff = loader(&[("HOME", "/h"), ("XDG_CONFIG_HOME", &xdg)]).load().unwrap();
    assert_eq!(eff.config.retries, 9);

    let other = write_config(&tempfile::tempdir().unwrap(), "retries = 1\n");
    let other_s = other.to_str().unwrap().to_owned();
    // (the tempdir holding `other` is gone, so the file is missing: that is not an error)
    let eff = loader(&[("HOME", "/h"), ("XDG_CONFIG_HOME", &xdg), ("MODELCACHE_CONFIG", &other_s)]).load().unwrap();
    assert_eq!(eff.config.retries, 5);
    assert_eq!(eff.file, None);
}

#[test]
fn unknown_keys_and_bad_values_name_the_file_key_and_form() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown key is ignored with a warning (file, line, nearest key); the rest of the
    // file still applies.
    let file = write_config(&dir, "retries = 2\nmax_sise = \"1G\"\n");
    let loaded = loader(&[("HOME", "/h")]).config_file(&file).load().unwrap();
    assert_eq!(loaded.config.retries, 2);
    assert_eq!(loaded.config.max_size, None);
    assert_eq!((loaded.file.as_deref(), loaded.searched.as_deref()), (Some(file.as_path()), Some(file.as_path())));
    let [w] = loaded.unknown_keys.as_slice() else { panic!("one warning: {:?}", loaded.unknown_keys) };
    assert_eq!((w.key.as_str(), w.line, w.nearest.as_deref()), ("max_sise", Some(2), Some("max_size")));
    let msg = w.to_string();
    assert!(msg.contains(&format!("`{}` line 2", file.display())) && msg.contains("did you mean `max_size`?"), "{msg}");

    let cases = [
        ("max_size = \"lots\"", "max_size", "`10GiB`"),
        ("max_age = \"forever\"", "max_age", "`7d`"),
        ("low_watermark = 1.5", "low_watermark", "at most 1"),
        ("retries = -1", "retries", "0 to 100"),
        ("parallelism = 0", "parallelism", "1 to 256"),
        ("endpoint = \"ftp://x\"", "endpoint", "`https://`"),
        ("offline = \"maybe\"", "offline", "`true` or `false`"),
        ("cache_dir = [1]", "cache_dir", "directory path"),
    ];
    for (text, key, form) in cases {
        let file = write_config(&dir, text);
        let err = loader(&[("HOME", "/h")]).config_file(&file).load().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("for `{key}` in file `{}`", file.display())) && msg.contains(form), "{text}: {msg}");
        assert!(err.hint().contains(key), "{}", err.hint());
    }

    let err = loader(&[("HOME", "/h"), ("MODELCACHE_MAX_SIZE", "12 parsecs")]).load().unwrap_err();
    assert!(err.to_string().contains("env `MODELCACHE_MAX_SIZE`"), "{err}");
    let err = loader(&[("HOME", "/h")]).set(Key::Retries, "many").load().unwrap_err();
    assert!(err.to_string().contains("explicit setting"), "{err}");

    let file = write_config(&dir, "max_size = \n");
    assert!(matches!(loader(&[("HOME", "/h")]).config_file(&file).load(), Err(ConfigError::Syntax { .. })));
}

#[test]
fn offline_wins_unless_explicitly_turned_off() {
    let on = loader(&[("HOME", "/h"), ("HF_HUB_OFFLINE", "1")]).load().unwrap();
    assert!(on.config.offline);
    assert_eq!(on.source(Key::Offline), &Source::Env("HF_HUB_OFFLINE".into()));
    let still = loader(&[("HOME", "/h"), ("HF_HUB_OFFLINE", "1"), ("MODELCACHE_OFFLINE", "0")]).load().unwrap();
    assert!(still.config.offline);
    assert_eq!(still.source(Key::Offline), &Source::Env("HF_HUB_OFFLINE".into()));
    assert!(loader(&[("HOME", "/h"), ("MODELCACHE_OFFLINE", "yes")]).load().unwrap().config.offline);
    let forced = loader(&[("HOME", "/h"), ("HF_HUB_OFFLINE", "1")]).set(Key::Offline, "false").load().unwrap();
    assert!(!forced.config.offline);
    // The Hub's variable reads as huggingface_hub reads it; ours stays strict.
    let offline = |v: &str| loader(&[("HOME", "/h"), ("HF_HUB_OFFLINE", v)]).load().unwrap().config.offline;
    for v in ["1", "ON", "yes", "True", "TRUE"] {
        assert!(offline(v), "`HF_HUB_OFFLINE={v}` is true for huggingface_hub");
    }
    for v in ["0", "perhaps", "false", "off", "2", " 1"] {
        assert!(!offline(v), "`HF_HUB_OFFLINE={v}` is false for huggingface_hub");
    }
    assert!(loader(&[("HOME", "/h"), ("MODELCACHE_OFFLINE", "perhaps")]).load().is_err());
}

#[test]
fn endpoints_lose_their_trailing_slash() {
    let eff = loader(&[("HOME", "/h"), ("HF_ENDPOINT", "http://127.0.0.1:8080/")]).load().unwrap();
    assert_eq!(eff.config.endpoint, "http://127.0.0.1:8080");
    let eff = loader(&[("HOME", "/h"), ("HF_ENDPOINT", "http://a"), ("MODELCACHE_ENDPOINT", "https://b/")]).load().unwrap();
    assert_eq!(eff.config.endpoint, "https://b");
    assert!(loader(&[("HOME", "/h"), ("HF_ENDPOINT", "huggingface.co")]).load().is_err());
}

#[test]
fn a_password_in_the_endpoint_is_used_but_never_shown() {
    let eff = loader(&[("HOME", "/h"), ("HF_ENDPOINT", "https://user:secret@mirror.example/")]).load().unwrap();
    assert_eq!(eff.config.endpoint, "https://user:secret@mirror.example", "the password is still used");
    assert_eq!(eff.config.display_value(Key::Endpoint), "https://***@mirror.example");
    assert!(eff.explain().iter().all(|(_, value, _)| !value.contains("secret")));
    assert!(!format!("{eff:?}").contains("secret"), "nor in `Debug`");
    for vars in [
        &[("HOME", "/h"), ("HF_ENDPOINT", "ftp://user:secret@x")][..],
        &[("HOME", "/h"), ("MODELCACHE_ENDPOINT", "ftp://u:secret@x")],
    ] {
        let e = loader(vars).load().unwrap_err();
        assert!(!format!("{e} {e:?} {}", e.hint()).contains("secret"), "{e}");
    }
}

#[test]
fn download_timeout_is_overall_or_none_and_read_timeout_is_separate() {
    let eff = loader(&[("HOME", "/h")]).load().unwrap();
    assert_eq!((eff.config.download_timeout, eff.config.read_timeout), (None, Duration::from_secs(30)));
    assert_eq!(eff.config.display_value(Key::DownloadTimeout), "none");
    let eff =
        loader(&[("HOME", "/h"), ("MODELCACHE_DOWNLOAD_TIMEOUT", "2h"), ("MODELCACHE_READ_TIMEOUT", "10s")]).load().unwrap();
    assert_eq!(eff.config.download_timeout, Some(Duration::from_secs(7200)));
    assert_eq!(eff.config.read_timeout, Duration::from_secs(10));
    assert_eq!(eff.config.display_value(Key::DownloadTimeout), "2h");
    let eff = loader(&[("HOME", "/h"), ("MODELCACHE_DOWNLOAD_TIMEOUT", "none")]).load().unwrap();
    assert_eq!(eff.config.download_timeout, None);
    let e = loader(&[("HOME", "/h"), ("MODELCACHE_READ_TIMEOUT", "none")]).load().unwrap_err();
    assert!(e.to_string().contains("read_timeout"), "{e}");
}

#[test]
fn the_free_space_margin_is_automatic_unless_set() {
    let eff = loader(&[("HOME", "/h")]).load().unwrap();
    assert_eq!(eff.config.free_space_margin, None);
    assert_eq!(eff.config.display_value(Key::FreeSpaceMargin), "auto");
    let eff = loader(&[("HOME", "/h"), ("MODELCACHE_FREE_SPACE_MARGIN", "1MiB")]).load().unwrap();
    assert_eq!(eff.config.free_space_margin, Some(ByteSize::new(1 << 20)));
    assert_eq!(eff.source(Key::FreeSpaceMargin), &Source::Env("MODELCACHE_FREE_SPACE_MARGIN".into()));
    assert!(eff.explain().contains(&(
        Key::FreeSpaceMargin,
        "1 MiB".to_owned(),
        Source::Env("MODELCACHE_FREE_SPACE_MARGIN".into())
    )));
    let eff = loader(&[("HOME", "/h")]).set(Key::FreeSpaceMargin, "0").load().unwrap();
    assert_eq!(eff.config.free_space_margin, Some(ByteSize::new(0)));
    let eff =
        loader(&[("HOME", "/h"), ("MODELCACHE_FREE_SPACE_MARGIN", "1MiB")]).set(Key::FreeSpaceMargin, "auto").load().unwrap();
    assert_eq!(eff.config.free_space_margin, None);
    let err = loader(&[("HOME", "/h"), ("MODELCACHE_FREE_SPACE_MARGIN", "lots")]).load().unwrap_err();
    assert!(err.to_string().contains("free_space_margin") && err.hint().contains("auto"), "{err}");
}

#[test]
fn lock_mode_and_lease_come_from_the_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(&dir, "lock_mode = \"fcntl\"\nlock_lease = \"30s\"\n");
    let eff = loader(&[("HOME", "/h")]).config_file(&file).load().unwrap();
    assert_eq!((eff.config.lock_mode, eff.config.lock_lease), (cache_store::LockMode::Fcntl, Duration::from_secs(30)));
    let eff = loader(&[("HOME", "/h"), ("MODELCACHE_LOCK_MODE", "none")]).config_file(&file).load().unwrap();
    assert_eq!(eff.config.lock_mode, cache_store::LockMode::None);
    assert_eq!(eff.source(Key::LockMode), &Source::Env("MODELCACHE_LOCK_MODE".into()));
    let defaults = loader(&[("HOME", "/h")]).load().unwrap();
    assert_eq!((defaults.config.lock_mode, defaults.config.lock_lease), (cache_store::LockMode::Auto, Duration::from_mins(1)));
    let err = loader(&[("HOME", "/h"), ("MODELCACHE_LOCK_MODE", "posix")]).load().unwrap_err().to_string();
    assert!(err.contains("MODELCACHE_LOCK_MODE") && err.contains("`auto`, `flock`, `fcntl`, `both` or `none`"), "{err}");
}

#[test]
fn team_tiers_come_from_remote_tables_the_variable_or_an_explicit_setting_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "remote_wait = \"10s\"\n[[remote]]\nurl = \"s3://team-models/hub\"\nmode = \"ro\"\n\n[[remote]]\nurl = \"file:///mnt/models\"\n",
    );
    let eff = loader(&[("HOME", "/h")]).config_file(&path).load().unwrap();
    assert_eq!(eff.config.display_value(Key::Remote), "s3://team-models/hub:ro, file:///mnt/models:rw");
    assert_eq!(eff.source(Key::Remote), &Source::File(path.clone()));
    assert_eq!(eff.config.remote_wait, Duration::from_secs(10));
    assert!(eff.unknown_keys.is_empty(), "{:?}", eff.unknown_keys);

    let eff = loader(&[("HOME", "/h"), ("MODELCACHE_REMOTE", "s3://a/x:wo, file:///d")]).config_file(&path).load().unwrap();
    assert_eq!(eff.config.remote.len(), 2);
    assert_eq!(eff.config.remote[0], RemoteTier { url: "s3://a/x".into(), mode: "wo".into() });
    assert_eq!(eff.source(Key::Remote), &Source::Env("MODELCACHE_REMOTE".into()));

    let eff = loader(&[("HOME", "/h")]).config_file(&path).set(Key::Remote, "none").load().unwrap();
    assert!(eff.config.remote.is_empty());
    assert_eq!(eff.config.display_value(Key::Remote), "none");

    for bad in ["s3://b/p:rx", "http://host/x", "[[remote]]\nmode = \"ro\"\n", "[[remote]]\nurl = \"s3://b\"\nkey = \"secret\"\n"]
    {
        let text = if bad.starts_with('[') { bad.to_owned() } else { format!("remote = \"{bad}\"\n") };
        let path = write_config(&dir, &text);
        let e = loader(&[("HOME", "/h")]).config_file(&path).load().unwrap_err();
        assert!(e.to_string().contains("`remote`"), "{bad}: {e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
    let e = loader(&[("HOME", "/h"), ("MODELCACHE_REMOTE", "s3://AKIA:hunter2@b/p")]).load().unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
