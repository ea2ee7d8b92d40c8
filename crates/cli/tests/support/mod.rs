//! What the CLI's test binaries share: a scratch directory for a test's databases and files.

use std::path::PathBuf;

/// A directory of its own for a test's files, removed when dropped (passed or failed).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let directory =
            std::env::temp_dir().join(format!("scimitar-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        Scratch(directory)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The URL of a SQLite database file `name` in the directory.
    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}", self.path(name).display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
