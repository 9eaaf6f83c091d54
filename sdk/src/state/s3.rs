//! State in S3, for teams and CI: `s3://bucket/prefix/<stack>/…`.
//!
//! The lock is created with a conditional `PutObject` (`If-None-Match: *`), which S3 (and the
//! emulator) refuse with 412 when the object exists; a stale lock is taken over with `If-Match` on
//! the ETag of the very lock that was judged stale. Every other write is conditional too: on the
//! ETag this backend last saw of the object (or on its absence), so a run that lost its lock to
//! another cannot overwrite the new holder's snapshot. The journal is one object per entry, named by
//! a zero-padded sequence number, so that appending never rewrites earlier entries.

use super::backend::{Backend, BackendError, BackendResult};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::result::SdkError;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct S3Backend {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    next_seq: AtomicU64,
    seq_loaded: tokio::sync::OnceCell<()>,
    /// The ETag last seen of each object read or written (`None`: seen absent).
    seen: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
}

/// Splits `s3://bucket/some/prefix` into bucket and prefix.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

fn status_of<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status())
}

trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3Backend {
    /// State of `stack` under `s3://bucket/prefix/stack/`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str, stack: &str) -> Self {
        let prefix = if prefix.is_empty() { stack.to_string() } else { format!("{prefix}/{stack}") };
        S3Backend {
            client,
            bucket: bucket.to_string(),
            prefix,
            next_seq: AtomicU64::new(0),
            seq_loaded: tokio::sync::OnceCell::new(),
            seen: Default::default(),
        }
    }

    fn saw(&self, name: &str, etag: Option<&str>) {
        self.seen.lock().expect("poisoned").insert(name.to_string(), etag.map(str::to_string));
    }

    /// The object's content and ETag now.
    async fn get(&self, name: &str) -> BackendResult<Option<(Vec<u8>, Option<String>)>> {
        match self.client.get_object().bucket(&self.bucket).key(self.key(name)).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let body = out.body.collect().await.map_err(|e| self.err(name, e))?;
                Ok(Some((body.into_bytes().to_vec(), etag)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || status_of(&e) == Some(404) => {
                Ok(None)
            }
            Err(e) => Err(self.err(name, crate::aws::describe(&e))),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn err(&self, name: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError { place: format!("s3://{}/{}", self.bucket, self.key(name)), message: e.to_string() }
    }

    async fn journal_keys(&self) -> BackendResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.key("journal/"))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| self.err("journal/", crate::aws::describe(&e)))?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl Backend for S3Backend {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn read(&self, name: &str) -> BackendResult<Option<Vec<u8>>> {
        let got = self.get(name).await?;
        self.saw(name, got.as_ref().and_then(|(_, etag)| etag.as_deref()));
        Ok(got.map(|(data, _)| data))
    }

    /// Conditional on what this backend last saw of `name`: its ETag (`If-Match`), or its absence
    /// (`If-None-Match: *`). An object this backend never looked at is written as is.
    async fn write(&self, name: &str, data: &[u8]) -> BackendResult<()> {
        let seen = self.seen.lock().expect("poisoned").get(name).cloned();
        let mut req =
            self.client.put_object().bucket(&self.bucket).key(self.key(name)).body(ByteStream::from(data.to_vec()));
        req = match &seen {
            Some(Some(etag)) => req.if_match(etag),
            Some(None) => req.if_none_match("*"),
            None => req,
        };
        match req.send().await {
            Ok(out) => {
                self.saw(name, out.e_tag());
                Ok(())
            }
            Err(e) if status_of(&e) == Some(412) => Err(self.err(
                name,
                "changed by another run since this run read it: this run no longer holds the stack's lock, so it wrote nothing\n    fix: see who holds the lock now; run again once it is done (this run's changes are in the journal)",
            )),
            Err(e) => Err(self.err(name, crate::aws::describe(&e))),
        }
    }

    async fn replace_if(&self, name: &str, expected: &[u8], data: &[u8]) -> BackendResult<bool> {
        let Some((now, Some(etag))) = self.get(name).await? else { return Ok(false) };
        if now != expected {
            return Ok(false);
        }
        let res = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(name))
            .if_match(&etag)
            .body(ByteStream::from(data.to_vec()))
            .send()
            .await;
        match res {
            Ok(out) => {
                self.saw(name, out.e_tag());
                Ok(true)
            }
            Err(e) if status_of(&e) == Some(412) => Ok(false),
            Err(e) => Err(self.err(name, crate::aws::describe(&e))),
        }
    }

    async fn remove_if(&self, name: &str, expected: &[u8]) -> BackendResult<bool> {
        let Some((now, etag)) = self.get(name).await? else { return Ok(false) };
        if now != expected {
            return Ok(false);
        }
        let mut req = self.client.delete_object().bucket(&self.bucket).key(self.key(name));
        if let Some(etag) = &etag {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(412) => Ok(false),
            Err(e) => Err(self.err(name, crate::aws::describe(&e))),
        }
    }

    async fn create_new(&self, name: &str, data: &[u8]) -> BackendResult<bool> {
        let res = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(name))
            .if_none_match("*")
            .body(ByteStream::from(data.to_vec()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // The SDK has no typed variant for 412 PreconditionFailed: match the status.
            Err(e) if status_of(&e) == Some(412) => Ok(false),
            Err(e) => Err(self.err(name, crate::aws::describe(&e))),
        }
    }

    async fn remove(&self, name: &str) -> BackendResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(name))
            .send()
            .await
            .map_err(|e| self.err(name, crate::aws::describe(&e)))?;
        Ok(())
    }

    async fn append_journal(&self, entries: &[Vec<u8>]) -> BackendResult<()> {
        self.seq_loaded
            .get_or_try_init(|| async {
                let last = self
                    .journal_keys()
                    .await?
                    .last()
                    .and_then(|k| k.rsplit('/').next()?.strip_suffix(".json")?.parse::<u64>().ok());
                self.next_seq.store(last.map_or(0, |n| n + 1), Ordering::SeqCst);
                Ok::<(), BackendError>(())
            })
            .await?;
        for entry in entries {
            let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
            let name = format!("journal/{seq:012}.json");
            if !self.create_new(&name, entry).await? {
                return Err(self.err(&name, "journal entry already exists: another process is writing this state"));
            }
        }
        Ok(())
    }

    async fn read_journal(&self) -> BackendResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for key in self.journal_keys().await? {
            let name = key.strip_prefix(&format!("{}/", self.prefix)).unwrap_or(&key).to_string();
            if let Some(data) = self.read(&name).await? {
                out.push(data);
            }
        }
        Ok(out)
    }

    async fn clear_journal(&self) -> BackendResult<()> {
        for key in self.journal_keys().await? {
            let name = key.strip_prefix(&format!("{}/", self.prefix)).unwrap_or(&key).to_string();
            self.remove(&name).await?;
        }
        self.next_seq.store(0, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        assert_eq!(parse_s3_url("s3://b/p/q/"), Some(("b".into(), "p/q".into())));
        assert_eq!(parse_s3_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_s3_url("s3:///x"), None);
        assert_eq!(parse_s3_url("file:///x"), None);
    }
}
