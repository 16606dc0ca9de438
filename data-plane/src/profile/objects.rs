//! Where avatars are kept: a local directory (`file:///dir`, the default
//! beside the SQLite database) or an S3-compatible bucket
//! (`s3://bucket/prefix`, credentials from the usual `AWS_*` variables,
//! `AWS_ENDPOINT_URL` for MinIO and the like).

use std::sync::Arc;

use object_store::ObjectStore;
use std::str::FromStr;

use identity_shared::secret::Secret;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

/// Opens the store `url` names, an S3 one with the `AWS_*` variables
/// given (as `AmazonS3Builder::from_env` reads them, from the
/// configuration's sources); the error names what is wrong.
pub fn open(url: &str, aws: &[(String, Secret<String>)]) -> Result<Arc<dyn ObjectStore>, String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("IDENTITY_OBJECT_STORE_URL: s3:// needs a bucket".into());
        }
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (name, value) in aws {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&name.to_ascii_lowercase()) {
                builder = builder.with_config(key, value.expose());
            }
        }
        if let Some((_, endpoint)) = aws.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL") {
            builder = builder.with_allow_http(endpoint.expose().starts_with("http://"));
        }
        let s3 = builder
            .build()
            .map_err(|e| format!("IDENTITY_OBJECT_STORE_URL: {e}"))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        });
    }
    let dir = url
        .strip_prefix("file://")
        .ok_or("IDENTITY_OBJECT_STORE_URL must be file:// or s3://")?;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("IDENTITY_OBJECT_STORE_URL: cannot create {dir}: {e}"))?;
    let fs = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| format!("IDENTITY_OBJECT_STORE_URL: {e}"))?;
    Ok(Arc::new(fs))
}
