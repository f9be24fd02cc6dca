//! The feed token, kept on disk so a restart resumes after the last answer Kafka acknowledged:
//! written to a temporary file, flushed, renamed over the old one, and the folder flushed, so a
//! crash at any instant leaves either the old token or the new one, never a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where one connector's token lives.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The token file of `acd_id` in `dir` (created when missing).
    pub fn new(dir: &Path, acd_id: &str) -> std::io::Result<TokenFile> {
        std::fs::create_dir_all(dir)?;
        let name: String =
            acd_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        Ok(TokenFile { path: dir.join(format!("{name}.agent-event-feed.token")) })
    }

    /// The saved token, if any.
    pub fn load(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Saves `token` durably, or forgets the saved one (`None`: the feed starts again with `{}`).
    pub fn save(&self, token: Option<&str>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(token.unwrap_or_default().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_token_is_read_back_and_can_be_forgotten() {
        let dir = std::env::temp_dir().join(format!("acd-lv-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = TokenFile::new(&dir, "live vox/1").unwrap();
        assert_eq!(f.load().unwrap(), None);
        f.save(Some("lvt-42")).unwrap();
        assert_eq!(TokenFile::new(&dir, "live vox/1").unwrap().load().unwrap().as_deref(), Some("lvt-42"));
        f.save(None).unwrap();
        assert_eq!(f.load().unwrap(), None);
        assert!(f.path().starts_with(&dir), "the id is made safe for a file name");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
