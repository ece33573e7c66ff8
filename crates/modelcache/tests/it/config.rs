//! Configuration through the builder: file < `MODELCACHE_*` env < explicit, with sources.

use modelcache::{ByteSize, ConfigKey, ConfigSource};

use crate::Env;

#[test]
fn precedence_holds_through_the_builder_and_sources_are_reported() {
    let env = Env::new();
    let file = env.tmp.path().join("config.toml");
    std::fs::write(&file, "max_size = \"1GiB\"\nmax_age = \"7d\"\nparallelism = 3\n").unwrap();
    let env = env.var("MODELCACHE_MAX_SIZE", "2GiB").var("MODELCACHE_PARALLELISM", "5");
    let cache = env.builder().config_file(&file).set(ConfigKey::Parallelism, "7").build().unwrap();
    let eff = cache.config();
    assert_eq!(eff.config.max_size, Some(ByteSize::new(2 << 30)));
    assert_eq!(eff.config.max_age, Some(std::time::Duration::from_secs(7 * 86_400)));
    assert_eq!(eff.config.parallelism, 7);
    assert_eq!(eff.source(ConfigKey::MaxAge), &ConfigSource::File(file.clone()));
    assert_eq!(eff.source(ConfigKey::MaxSize), &ConfigSource::Env("MODELCACHE_MAX_SIZE".to_owned()));
    assert_eq!(eff.source(ConfigKey::Parallelism), &ConfigSource::Explicit);
    assert_eq!(eff.source(ConfigKey::CacheDir), &ConfigSource::Explicit);
    assert_eq!(cache.cache_dir(), env.hub_dir().canonicalize().unwrap());
    assert_eq!(cache.home_dir(), env.home_dir().canonicalize().unwrap());
    assert_eq!(eff.explain().len(), ConfigKey::ALL.len());
}

#[test]
fn bad_settings_and_inaccessible_directories_are_clear_errors() {
    let env = Env::new();
    let err = env.builder().set(ConfigKey::MaxSize, "lots").build().unwrap_err();
    assert_eq!(err.kind().exit_code(), 2);
    assert!(err.to_string().contains("max_size") && err.hint().contains("10GiB"), "{err} / {}", err.hint());
    let blocker = env.tmp.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let err = env.builder().cache_dir(blocker.join("hub")).build().unwrap_err();
    assert!(matches!(err, modelcache::CacheError::DirectoryNotAccessible { .. }), "{err:?}");
    assert!(err.hint().contains("HF_HUB_CACHE"));
}

#[test]
fn the_hubs_variables_place_the_cache_like_huggingface_hub() {
    let env = Env::new();
    let hf_home = env.tmp.path().join("hf");
    let vars = env.vars.clone();
    let mut vars2 = vars.clone();
    vars2.insert("HF_HOME".to_owned(), hf_home.to_str().unwrap().to_owned());
    vars2.insert("MODELCACHE_HOME".to_owned(), env.home_dir().to_str().unwrap().to_owned());
    let cache = modelcache::CacheManager::builder().env(move |k| vars2.get(k).cloned()).build().unwrap();
    assert_eq!(cache.cache_dir(), hf_home.join("hub").canonicalize().unwrap());
    let with = modelcache::CacheManager::builder().env(move |k| vars.get(k).cloned()).home(env.home_dir()).build();
    let with = with.unwrap();
    assert!(with.cache_dir().ends_with(".cache/huggingface/hub"), "{}", with.cache_dir().display());
    assert!(with.cache_dir().starts_with(env.tmp.path().canonicalize().unwrap()), "never the real home");
}
