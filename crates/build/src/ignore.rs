//! `.dockerignore`: Docker's pattern rules (Go filepath.Match per segment, `**`, `!` exceptions,
//! the last matching pattern wins, paths cleaned and relative to the context root).

/// The parsed patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    _patterns: Vec<String>,
}

impl DockerIgnore {
    /// Parses the file's text (comments `#`, blank lines, leading `/` and `./` dropped).
    pub fn parse(text: &str) -> DockerIgnore {
        let _ = text;
        DockerIgnore::default()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let _ = path;
        false
    }

    /// Whether a directory may hold a re-included path (an exception pattern below it), so a
    /// walker must not skip the directory even though it is excluded itself.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let _ = dir;
        false
    }
}
