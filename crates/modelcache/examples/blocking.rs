//! The facade from a program without async code: one current-thread tokio runtime, and
//! `block_on` around each call (the README's "Without async" example).
//!
//! `cargo run -p modelcache --example blocking -- ORG/NAME FILE` prints the cached path
//! of FILE, downloading it first when needed.

use modelcache::CacheManager;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(repo), Some(file)) = (args.next(), args.next()) else {
        return Err("usage: blocking ORG/NAME FILE".into());
    };
    // Reads HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN and the config file, like the CLI.
    let cache = CacheManager::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let path = runtime.block_on(cache.get_file(&repo, "main", &file))?;
    #[expect(clippy::print_stdout, reason = "an example prints its result")]
    {
        println!("{}", path.display());
    }
    Ok(())
}
