//! The object store behind a tier URL: S3 (or any S3-compatible server), Google Cloud
//! Storage, Azure Blob Storage or a directory, each configured from its standard
//! environment as the cloud's own tools read it.
//!
//! # Credentials
//! Only the variables named here are read, from the environment the caller gives (never
//! printed). With none of a cloud's credential variables set, requests go unsigned
//! (anonymous reads of a public bucket) instead of asking an instance-metadata service,
//! which off the cloud costs a timeout per process:
//! - S3: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`), web identity or
//!   container credentials; `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`.
//! - Google Cloud Storage: `GOOGLE_SERVICE_ACCOUNT` (a key file's path),
//!   `GOOGLE_SERVICE_ACCOUNT_KEY` (its JSON), `GOOGLE_APPLICATION_CREDENTIALS`, or the
//!   `gcloud auth application-default login` file in `$HOME`; `GOOGLE_BASE_URL` for another
//!   endpoint, `GOOGLE_ALLOW_HTTP` for a plain-HTTP one.
//! - Azure: `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`, a SAS
//!   (`AZURE_STORAGE_SAS_KEY`), a token, a service principal (`AZURE_CLIENT_ID`,
//!   `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`), workload identity or the Azure CLI;
//!   `AZURE_STORAGE_ENDPOINT` for another endpoint, `AZURE_ALLOW_HTTP` for a plain-HTTP
//!   one, `AZURE_STORAGE_USE_EMULATOR=true` for Azurite (whose address `object_store` reads
//!   from `AZURITE_BLOB_STORAGE_URL` in the process environment, default
//!   `http://127.0.0.1:10000`).

use std::sync::Arc;

use object_store::ObjectStore;

use crate::spec::Location;
use crate::tier::TierOptions;

/// The variables [`TierOptions::with_env`] keeps.
pub(crate) const ENV_KEYS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_BEARER_TOKEN",
    "GOOGLE_BASE_URL",
    "GOOGLE_SKIP_SIGNATURE",
    "GOOGLE_ALLOW_HTTP",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USE_AZURE_CLI",
    "AZURE_MSI_ENDPOINT",
    "AZURE_OBJECT_ID",
    "AZURE_MSI_RESOURCE_ID",
    "AZURE_CREDENTIAL_TYPE",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_ENDPOINT",
    "AZURE_USE_FABRIC_ENDPOINT",
    "AZURE_SKIP_SIGNATURE",
    "AZURE_ALLOW_HTTP",
    "HOME",
];

/// Variables whose presence means "sign requests" (otherwise they go anonymous).
const AWS_CREDENTIALS: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"];
const GOOGLE_CREDENTIALS: &[&str] = &[
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_BEARER_TOKEN",
];
const AZURE_CREDENTIALS: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USE_AZURE_CLI",
    "AZURE_MSI_ENDPOINT",
    "AZURE_CREDENTIAL_TYPE",
    "AZURE_STORAGE_USE_EMULATOR",
];

/// Where `gcloud auth application-default login` leaves its credentials, under `$HOME`.
const GCLOUD_ADC: &str = ".config/gcloud/application_default_credentials.json";

/// The store for `location` and the prefix its keys start with; the reason when it
/// cannot be set up (no network call is made here).
pub(crate) fn open(location: &Location, options: &TierOptions) -> Result<(Arc<dyn ObjectStore>, String), String> {
    let env = |k: &str| options.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let has = |keys: &[&str]| keys.iter().any(|k| env(k).is_some_and(|v| !v.is_empty()));
    let is_true = |k: &str| env(k).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let with_prefix = |p: &str| if p.is_empty() { String::new() } else { format!("{p}/") };
    let client = |allow_http: bool| {
        object_store::ClientOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_pool_idle_timeout(options.idle_timeout)
            .with_allow_http(allow_http)
    };
    let retry = object_store::RetryConfig {
        max_retries: 1,
        retry_timeout: options.request_timeout,
        ..object_store::RetryConfig::default()
    };
    // Each variable as the cloud's builder parses it (`AWS_REGION` is `aws_region`).
    let configs = |prefix: &'static str| {
        options
            .env
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix) && !k.ends_with("_ALLOW_HTTP"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
    };
    if !matches!(location, Location::Dir { .. }) {
        // reqwest is built without a default TLS provider: use ring, as cache-fetch does.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match location {
        Location::S3 { bucket, prefix } => {
            let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
            for (k, v) in configs("AWS_") {
                if let Ok(key) = k.parse::<object_store::aws::AmazonS3ConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            if !has(AWS_CREDENTIALS) {
                b = b.with_skip_signature(true);
            }
            if !has(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
                b = b.with_region("us-east-1");
            }
            let s3 = b
                .with_client_options(client(is_true("AWS_ALLOW_HTTP")))
                .with_retry(retry)
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
                .build()
                .map_err(|e| e.to_string())?;
            Ok((Arc::new(s3), with_prefix(prefix)))
        }
        Location::Gcs { bucket, prefix } => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_client_options(client(is_true("GOOGLE_ALLOW_HTTP")))
                .with_retry(retry);
            for (k, v) in configs("GOOGLE_") {
                if let Ok(key) = k.parse::<object_store::gcp::GoogleConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            let adc = env("HOME").is_some_and(|h| std::path::Path::new(h).join(GCLOUD_ADC).is_file());
            if !has(GOOGLE_CREDENTIALS) && !adc {
                b = b.with_skip_signature(true);
            }
            let gcs = b.with_bucket_name(bucket).build().map_err(|e| e.to_string())?;
            Ok((Arc::new(gcs), with_prefix(prefix)))
        }
        Location::Azure { container, account, prefix } => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_client_options(client(is_true("AZURE_ALLOW_HTTP")))
                .with_retry(retry);
            for (k, v) in configs("AZURE_") {
                if let Ok(key) = k.parse::<object_store::azure::AzureConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            if let Some(account) = account {
                b = b.with_account(account);
            }
            if !has(AZURE_CREDENTIALS) {
                b = b.with_skip_signature(true);
            }
            if account.is_none() && !has(&["AZURE_STORAGE_ACCOUNT_NAME"]) && !is_true("AZURE_STORAGE_USE_EMULATOR") {
                return Err("no storage account: set `AZURE_STORAGE_ACCOUNT_NAME`".to_owned());
            }
            let azure = b.with_container_name(container).build().map_err(|e| e.to_string())?;
            Ok((Arc::new(azure), with_prefix(prefix)))
        }
        Location::Dir { path } => {
            let fs = object_store::local::LocalFileSystem::new_with_prefix(path)
                .map_err(|e| format!("`{path}` is not a readable directory ({e})"))?;
            Ok((Arc::new(fs), String::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Mode, TierSpec};

    fn open_with(url: &str, env: &[(&str, &str)]) -> Result<(Arc<dyn ObjectStore>, String), String> {
        let spec = TierSpec::new(url, Mode::ReadOnly).map_err(|e| e.to_string())?;
        let options = TierOptions::default().with_env(&|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()));
        open(spec.location(), &options)
    }

    #[test]
    fn every_cloud_builds_from_its_environment_without_a_network_call() {
        let (_, prefix) = open_with("gs://team-models/hub", &[]).unwrap();
        assert_eq!(prefix, "hub/");
        let (_, prefix) = open_with("az://models", &[("AZURE_STORAGE_ACCOUNT_NAME", "team")]).unwrap();
        assert_eq!(prefix, "");
        open_with("abfss://models@team.dfs.core.windows.net/hub", &[]).unwrap();
        open_with("az://models/hub", &[("AZURE_STORAGE_USE_EMULATOR", "true")]).unwrap();
        let e = open_with("az://models/hub", &[("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0")]).err().unwrap();
        assert!(e.contains("AZURE_STORAGE_ACCOUNT_NAME") && !e.contains("c2VjcmV0"), "{e}");
        let e = open_with("gs://b/p", &[("GOOGLE_SERVICE_ACCOUNT", "/nonexistent/key.json")]).err().unwrap();
        assert!(e.contains("/nonexistent/key.json"), "a missing key file is named: {e}");
    }
}
