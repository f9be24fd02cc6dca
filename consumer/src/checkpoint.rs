//! The checkpoint store, a thin seam over sled.
//!
//! sled makes a write durable only at `flush()`, and its `Batch` is atomic but not durable on
//! its own. This seam offers one write operation, [`Checkpoints::commit`]: every key of a batch
//! applied atomically and flushed to disk before it returns, so the caller may then commit the
//! Kafka offsets that the batch describes. Nothing else in the crate touches sled.

use std::path::Path;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint store: {0}")]
pub struct StoreError(#[from] sled::Error);

/// One stored key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write: a value, or `None` to delete the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// The store.
#[derive(Clone)]
pub struct Checkpoints {
    db: sled::Db,
}

impl Checkpoints {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Checkpoints, StoreError> {
        let db =
            sled::Config::new().path(dir).cache_capacity(16 * 1024 * 1024).mode(sled::Mode::HighThroughput).open()?;
        Ok(Checkpoints { db })
    }

    /// Every key under `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(StoreError::from))
            .collect()
    }

    /// One key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    /// Writes one key without waiting for the disk: for data that is rebuilt from Kafka after a
    /// crash (sled writes it out in the background, or at the next [`Checkpoints::commit`]).
    pub fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        self.db.insert(key, value)?;
        Ok(())
    }

    /// Deletes every key in `[from, to)`, without waiting for the disk.
    pub fn remove_range(&self, from: &[u8], to: &[u8]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for kv in self.db.range(from..to) {
            batch.remove(kv?.0);
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Waits until every write so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Applies `writes` atomically and flushes them to disk.
    pub fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("acd-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let c = Checkpoints::open(&dir).unwrap();
            c.commit(vec![(b"a/1".to_vec(), Some(b"x".to_vec())), (b"a/2".to_vec(), Some(b"y".to_vec()))]).unwrap();
            c.commit(vec![(b"a/1".to_vec(), None)]).unwrap();
        }
        // sled's flusher thread lets go of the folder's lock shortly after the handle is dropped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let c = loop {
            match Checkpoints::open(&dir) {
                Ok(c) => break c,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(c.scan(b"a/").unwrap(), vec![(b"a/2".to_vec(), b"y".to_vec())]);
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
