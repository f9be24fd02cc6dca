//! A drop directory that CMS (or its transfer script) writes files into, shared by the ECH and
//! historical-export readers: a file is ready once its size and modification time have not
//! changed for the settle time; ready files come oldest first (modification time, then name);
//! a done file moves to `processed/`, a refused one to `rejected/` with a `.reason` file beside
//! it. Nothing is ever deleted.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use acd_schemas::records::ConnectionState;

/// A watched directory.
pub struct DropDir {
    dir: PathBuf,
    settle: Duration,
    accept: fn(&str) -> bool,
    seen: HashMap<PathBuf, (u64, Option<SystemTime>, Instant)>,
}

impl DropDir {
    /// Watches `dir` (created with `processed/` and `rejected/` when missing) for the file
    /// names `accept` takes.
    pub fn open(dir: &Path, settle: Duration, accept: fn(&str) -> bool) -> io::Result<DropDir> {
        std::fs::create_dir_all(dir.join("processed"))?;
        std::fs::create_dir_all(dir.join("rejected"))?;
        Ok(DropDir { dir: dir.to_path_buf(), settle, accept, seen: HashMap::new() })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The files that have settled, oldest first.
    pub fn settled(&mut self) -> io::Result<Vec<PathBuf>> {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !(self.accept)(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = entry.path();
            let (len, modified) = (meta.len(), meta.modified().ok());
            present.push(path.clone());
            let since = match self.seen.get(&path) {
                Some(&(l, m, since)) if l == len && m == modified => since,
                _ => {
                    self.seen.insert(path.clone(), (len, modified, now));
                    now
                }
            };
            if now.duration_since(since) >= self.settle {
                ready.push((modified, name, path));
            }
        }
        self.seen.retain(|p, _| present.contains(p));
        ready.sort();
        Ok(ready.into_iter().map(|(_, _, p)| p).collect())
    }

    /// Moves a file whose every record Kafka acknowledged to `processed/`.
    pub fn processed(&mut self, path: &Path) -> io::Result<PathBuf> {
        self.seen.remove(path);
        move_into(path, &self.dir.join("processed"))
    }

    /// Moves a refused file to `rejected/` and writes why beside it.
    pub fn reject(&mut self, path: &Path, reason: &str) -> io::Result<PathBuf> {
        self.seen.remove(path);
        let to = move_into(path, &self.dir.join("rejected"))?;
        let mut reason_file = to.clone().into_os_string();
        reason_file.push(".reason");
        std::fs::write(PathBuf::from(reason_file), format!("{reason}\n"))?;
        Ok(to)
    }
}

/// Moves `path` into `dir` under its name, or its name and `.1`, `.2`, ... when taken (CMS
/// reuses file names once its sequence wraps).
fn move_into(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| io::Error::other("no file name"))?.to_string_lossy().to_string();
    let mut to = dir.join(&name);
    let mut n = 0;
    while to.exists() {
        n += 1;
        to = dir.join(format!("{name}.{n}"));
    }
    std::fs::rename(path, &to)?;
    Ok(to)
}

/// The connection state of a file source: CONNECTED while a file arrived within the last 2
/// interval lengths, DEGRADED after a refused file until the next good one (and while no file
/// came for 2 to 4 lengths), DISCONNECTED when none came for 4.
#[derive(Debug, Clone)]
pub struct FileStatus {
    started: Instant,
    last_good: Option<Instant>,
    rejected: Option<String>,
}

impl Default for FileStatus {
    fn default() -> Self {
        FileStatus { started: Instant::now(), last_good: None, rejected: None }
    }
}

impl FileStatus {
    pub fn good(&mut self) {
        self.last_good = Some(Instant::now());
        self.rejected = None;
    }

    pub fn rejected(&mut self, what: String) {
        self.rejected = Some(what);
    }

    /// The state now, for intervals of `length`.
    pub fn state(&self, length: Duration) -> (ConnectionState, String) {
        if let Some(r) = &self.rejected {
            return (ConnectionState::Degraded, r.clone());
        }
        let quiet = self.last_good.unwrap_or(self.started).elapsed();
        let minutes = quiet.as_secs() / 60;
        match self.last_good {
            Some(_) if quiet <= 2 * length => (ConnectionState::Connected, "receiving data".into()),
            _ if quiet > 4 * length => (ConnectionState::Disconnected, format!("no file for {minutes} min")),
            Some(_) => (ConnectionState::Degraded, format!("no file for {minutes} min")),
            None => (ConnectionState::Degraded, "waiting for the first file".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_ready_once_it_stops_changing_and_moves_aside_with_its_reason() {
        let dir = std::env::temp_dir().join(format!("acd-dropdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut d = DropDir::open(&dir, Duration::ZERO, |n| n.starts_with("chr")).unwrap();
        std::fs::write(dir.join("chr0002"), b"b").unwrap();
        std::fs::write(dir.join("other"), b"x").unwrap();
        assert_eq!(d.settled().unwrap(), [dir.join("chr0002")]);
        let mut slow = DropDir::open(&dir, Duration::from_secs(3600), |n| n.starts_with("chr")).unwrap();
        assert!(slow.settled().unwrap().is_empty());
        let to = d.reject(&dir.join("chr0002"), "bad length").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("rejected/chr0002.reason")).unwrap(), "bad length\n");
        std::fs::write(dir.join("chr0002"), b"again").unwrap();
        let to2 = d.reject(&dir.join("chr0002"), "again").unwrap();
        assert_ne!(to, to2);
        assert!(dir.join("rejected/chr0002.1.reason").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_states() {
        let len = Duration::from_secs(900);
        let mut s = FileStatus::default();
        assert_eq!(s.state(len).0, ConnectionState::Degraded);
        s.good();
        assert_eq!(s.state(len).0, ConnectionState::Connected);
        s.rejected("chr0003 rejected: bad".into());
        assert_eq!(s.state(len), (ConnectionState::Degraded, "chr0003 rejected: bad".into()));
        s.good();
        assert_eq!(s.state(Duration::ZERO).0, ConnectionState::Disconnected);
    }
}
