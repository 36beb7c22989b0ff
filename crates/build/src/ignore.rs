//! `.dockerignore`: Docker's pattern rules (Go filepath.Match per segment, `**`, `!` exceptions,
//! the last matching pattern wins, paths cleaned and relative to the context root).
//!
//! Matching follows moby/patternmatcher as the docker CLI uses it: a pattern is matched against
//! the whole relative path and against each of its parent directories, so `build` excludes
//! `build/x/y`; patterns are read in order and the last one that matches decides. Like
//! patternmatcher, patterns without wildcards compare as plain strings and `**`-led patterns
//! as suffixes, quirks included, so the same context is sent as with Docker.

use std::io;
use std::path::{Path, PathBuf};

/// A pattern Docker would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IgnoreError {
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        pattern: String,
        reason: &'static str,
    },
}

/// The parsed patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/`.
    Star,
    /// `?`: one non-`/`.
    One,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or `**` inside: `(.*/)?`.
    DirStar,
    /// `**` at the end: `.*`.
    Tail,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// Cleaned, without the `!`.
    text: String,
    exclusion: bool,
    kind: MatchType,
    toks: Vec<Tok>,
    /// False for a pattern Docker would reject; it never matches.
    valid: bool,
}

/// Go's filepath.Clean for `/`-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn bad(pattern: &str, reason: &'static str) -> IgnoreError {
    IgnoreError::BadPattern {
        pattern: pattern.to_string(),
        reason,
    }
}

/// One class item char: `\x` escapes; `-` or `]` here (or nothing) is an error, as in Go.
fn class_char(chars: &[char], i: &mut usize, pattern: &str) -> Result<char, IgnoreError> {
    match chars.get(*i) {
        None | Some('-' | ']') => Err(bad(pattern, "bad character class")),
        Some('\\') => {
            let c = chars
                .get(*i + 1)
                .copied()
                .ok_or_else(|| bad(pattern, "trailing escape"))?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

fn compile(pattern: &str) -> Result<(MatchType, Vec<Tok>), IgnoreError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = MatchType::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        kind = MatchType::Tokens;
                    }
                    toks.push(Tok::Tail);
                } else {
                    kind = MatchType::Tokens;
                    toks.push(Tok::DirStar);
                }
                if first {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                kind = MatchType::Tokens;
                toks.push(Tok::Star);
            }
            '?' => {
                kind = MatchType::Tokens;
                toks.push(Tok::One);
            }
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    kind = MatchType::Tokens;
                    toks.push(Tok::Lit(n));
                }
                None => return Err(bad(pattern, "trailing escape")),
            },
            '[' => {
                kind = MatchType::Tokens;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&chars, &mut i, pattern)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i, pattern)?
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(bad(pattern, "bad character class range"));
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Ok((kind, toks))
}

/// Matches `s` against `toks`; with `prefix`, succeeds as soon as all of `s` is consumed (some
/// continuation of `s` could match).
fn tok_match(toks: &[Tok], s: &[char], prefix: bool) -> bool {
    let width = s.len() + 1;
    let mut failed = vec![false; (toks.len() + 1) * width];
    fn go(
        toks: &[Tok],
        s: &[char],
        t: usize,
        i: usize,
        prefix: bool,
        failed: &mut [bool],
        width: usize,
    ) -> bool {
        if prefix && i == s.len() {
            return true;
        }
        if failed[t * width + i] {
            return false;
        }
        let ok = match toks.get(t) {
            None => i == s.len(),
            Some(Tok::Lit(c)) => {
                s.get(i) == Some(c) && go(toks, s, t + 1, i + 1, prefix, failed, width)
            }
            Some(Tok::One) => {
                s.get(i).is_some_and(|&c| c != '/')
                    && go(toks, s, t + 1, i + 1, prefix, failed, width)
            }
            Some(Tok::Class { negated, ranges }) => {
                s.get(i)
                    .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                    && go(toks, s, t + 1, i + 1, prefix, failed, width)
            }
            Some(Tok::Star) => {
                let mut j = i;
                loop {
                    if go(toks, s, t + 1, j, prefix, failed, width) {
                        break true;
                    }
                    if j == s.len() || s[j] == '/' {
                        break false;
                    }
                    j += 1;
                }
            }
            Some(Tok::DirStar) => {
                go(toks, s, t + 1, i, prefix, failed, width)
                    || (i..s.len())
                        .any(|j| s[j] == '/' && go(toks, s, t + 1, j + 1, prefix, failed, width))
            }
            Some(Tok::Tail) => (i..=s.len()).any(|j| go(toks, s, t + 1, j, prefix, failed, width)),
        };
        if !ok {
            failed[t * width + i] = true;
        }
        ok
    }
    go(toks, s, 0, 0, prefix, &mut failed, width)
}

impl Pattern {
    fn new(text: String, exclusion: bool) -> Result<Pattern, IgnoreError> {
        let (kind, toks) = compile(&text)?;
        Ok(Pattern {
            text,
            exclusion,
            kind,
            toks,
            valid: true,
        })
    }

    fn matches(&self, path: &str) -> bool {
        if !self.valid {
            return false;
        }
        match self.kind {
            MatchType::Exact => path == self.text,
            MatchType::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            MatchType::Tokens => {
                let s: Vec<char> = path.chars().collect();
                tok_match(&self.toks, &s, false)
            }
        }
    }

    /// Whether some path below `dir/` could match this pattern.
    fn may_match_below(&self, dir_slash: &str) -> bool {
        if !self.valid {
            return false;
        }
        match self.kind {
            MatchType::Exact => self.text.starts_with(dir_slash),
            MatchType::Prefix => {
                let pre = &self.text[..self.text.len() - 2];
                pre.starts_with(dir_slash) || dir_slash.starts_with(pre)
            }
            MatchType::Suffix => true,
            MatchType::Tokens => {
                let s: Vec<char> = dir_slash.chars().collect();
                tok_match(&self.toks, &s, true)
            }
        }
    }
}

/// A path relative to the context, cleaned, `/`-separated, no leading `/` or `./`.
fn rel(path: &str) -> String {
    let c = clean(path);
    c.trim_start_matches('/').to_string()
}

impl DockerIgnore {
    /// Parses the file's text (comments `#`, blank lines, leading `/` and `./` dropped).
    /// Patterns Docker would reject are kept but never match; use [`DockerIgnore::try_parse`] to
    /// refuse them as Docker does.
    pub fn parse(text: &str) -> DockerIgnore {
        let mut out = DockerIgnore::default();
        for (exclusion, text) in read_lines(text) {
            let pattern = Pattern::new(text.clone(), exclusion).unwrap_or(Pattern {
                text,
                exclusion,
                kind: MatchType::Exact,
                toks: Vec::new(),
                valid: false,
            });
            out.patterns.push(pattern);
        }
        out
    }

    /// Like [`DockerIgnore::parse`], but a bad pattern (`[` unclosed, a trailing `\`, a lone
    /// `!`) is an error, as it is for the docker CLI.
    pub fn try_parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let mut out = DockerIgnore::default();
        for (exclusion, text) in read_lines(text) {
            if exclusion && text.is_empty() {
                return Err(IgnoreError::IllegalExclusion);
            }
            out.patterns.push(Pattern::new(text, exclusion)?);
        }
        Ok(out)
    }

    /// The patterns as Docker keeps them (`!` prefixed for exceptions).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = rel(path);
        let parents: Vec<&str> = match path.rfind('/') {
            Some(p) => path[..p].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An exception only matters once something matched, an exclusion only before.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&path);
            if !hit {
                let mut parent = String::new();
                for seg in &parents {
                    if !parent.is_empty() {
                        parent.push('/');
                    }
                    parent.push_str(seg);
                    if pattern.matches(&parent) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether a directory may hold a re-included path (an exception pattern below it), so a
    /// walker must not skip the directory even though it is excluded itself.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = rel(dir);
        let dir_slash = if dir == "." || dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_below(&dir_slash))
    }

    /// Whether the docker CLI walks into the excluded directory `dir` when it sends a context:
    /// only when an exception pattern, as written, starts with `dir/` (so `!dir/keep` does, but
    /// `!**/keep` does not). Narrower than [`DockerIgnore::may_include_below`]; [`walk`] uses
    /// this one so the context holds exactly what `docker build` would send.
    pub fn cli_descends_into(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", rel(dir));
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// The patterns plus exceptions for `.dockerignore` and `dockerfile` when they are excluded:
    /// the docker CLI always sends them, the daemon needs them.
    pub fn with_build_files(&self, dockerfile: &str) -> DockerIgnore {
        let mut out = self.clone();
        for keep in [".dockerignore", dockerfile] {
            let keep = rel(keep);
            if out.is_excluded(&keep) {
                if let Ok(p) = Pattern::new(keep, true) {
                    out.patterns.push(p);
                }
            }
        }
        out
    }
}

/// The `.dockerignore` lines as the docker CLI reads them: (exception, cleaned pattern).
fn read_lines(text: &str) -> Vec<(bool, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        // Only a `#` in the first column starts a comment.
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let exclusion = pattern.starts_with('!');
        if exclusion {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push((exclusion, cleaned));
    }
    out
}

/// The paths of `context` to send, relative, `/`-separated: sorted by name within each
/// directory, each directory before its contents, symlinks listed but not followed. Excluded
/// paths are left out, except `Dockerfile` and `.dockerignore` which are always sent; an
/// excluded directory is still walked when an exception names a path below it (the docker
/// CLI's rule, see [`DockerIgnore::cli_descends_into`]); the directory itself is not listed
/// then, as with Docker.
pub fn walk(context: &Path, ignore: &DockerIgnore) -> io::Result<Vec<PathBuf>> {
    let ignore = ignore.with_build_files("Dockerfile");
    let mut out = Vec::new();
    walk_dir(context, "", &ignore, &mut out)?;
    Ok(out)
}

fn walk_dir(
    root: &Path,
    dir: &str,
    ignore: &DockerIgnore,
    out: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let full = if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    };
    let mut entries = std::fs::read_dir(&full)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    for name in entries {
        let name = name.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: file name is not UTF-8", full.join(&name).display()),
            )
        })?;
        let relpath = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let meta = std::fs::symlink_metadata(root.join(&relpath))?;
        let excluded = ignore.is_excluded(&relpath);
        if meta.is_dir() {
            if !excluded {
                out.push(PathBuf::from(&relpath));
                walk_dir(root, &relpath, ignore, out)?;
            } else if ignore.cli_descends_into(&relpath) {
                walk_dir(root, &relpath, ignore, out)?;
            }
        } else if !excluded {
            out.push(PathBuf::from(&relpath));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./a", "a"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/", "/"),
            ("//a/", "/a"),
            ("a/b/..", "a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    /// (patterns, path, excluded)
    const CASES: &[(&str, &str, bool)] = &[
        ("", "a", false),
        ("a", "a", true),
        ("a", "b", false),
        ("a", "a/b/c", true),
        ("a", "ab", false),
        ("a", "b/a", false),
        ("/a", "a", true),
        ("./a", "a", true),
        ("a/", "a/x", true),
        ("a/b", "a/b/c", true),
        ("a/b", "a", false),
        ("*", "anything", true),
        ("*", "dir/file", true),
        ("*.md", "README.md", true),
        ("*.md", "docs/x.md", false),
        ("*/*.md", "docs/x.md", true),
        ("*/*.md", "docs/sub/x.md", false),
        ("**/*.md", "x.md", true),
        ("**/*.md", "docs/sub/x.md", true),
        ("**/*.md", "docs/x.mdx", false),
        ("**", "a/b/c", true),
        ("**/", "a", true),
        ("docs/**", "docs/a/b", true),
        ("docs/**", "docs", false),
        ("docs/**", "docsx/a", false),
        ("docs/**/*.tmp", "docs/a.tmp", true),
        ("docs/**/*.tmp", "docs/x/y/a.tmp", true),
        ("docs/**/*.tmp", "other/a.tmp", false),
        ("**/node_modules", "node_modules/x", true),
        ("**/node_modules", "a/b/node_modules/x", true),
        ("**/node_modules", "a/node_modulesx", false),
        ("a?c", "abc", true),
        ("a?c", "a/c", false),
        ("a?c", "abbc", false),
        ("[abc].txt", "b.txt", true),
        ("[abc].txt", "d.txt", false),
        ("[a-c]x", "bx", true),
        ("[^a-c]x", "dx", true),
        ("[^a-c]x", "ax", false),
        ("[!a]", "!", true),
        ("\\*", "*", true),
        ("\\*", "a", false),
        ("a\\?b*", "a?bc", true),
        ("f.o", "f.o", true),
        ("f.o*", "fxo", false),
        ("a+b(c)*", "a+b(c)d", true),
        ("temp?", "temp1", true),
        ("*/temp*", "somedir/temporary.txt", true),
        ("*/*/temp*", "somedir/subdir/temporary.txt", true),
        (".git", ".git/config", true),
        ("*.log\n!keep.log", "keep.log", false),
        ("*.log\n!keep.log", "other.log", true),
        ("!keep.log\n*.log", "keep.log", true),
        ("docs\n!docs/README.md", "docs/README.md", false),
        ("docs\n!docs/README.md", "docs/other.md", true),
        (
            "docs\n!docs/README.md\ndocs/README.md",
            "docs/README.md",
            true,
        ),
        ("*\n!src\nsrc/*.o", "src/a.c", false),
        ("*\n!src\nsrc/*.o", "src/a.o", true),
        ("*\n!src\nsrc/*.o", "Makefile", true),
        ("**/*.go\n!vendor/**", "vendor/x/y.go", false),
        ("**/*.go\n!vendor/**", "main.go", true),
        ("# comment\nfoo", "# comment", false),
        (" # not a comment", "# not a comment", true),
        ("  padded  ", "padded", true),
        ("! spaced", "spaced", false),
        ("a/../b", "b", true),
        ("dir/", "dir", true),
        ("**foo", "barfoo", true),
        ("a\\b", "ab", true),
        ("a\\b", "a\\b", false),
        ("a\\\\b", "a\\b", true),
    ];

    #[test]
    fn exclusion_table() {
        for (patterns, path, want) in CASES {
            let ig = DockerIgnore::try_parse(patterns).expect(patterns);
            assert_eq!(
                ig.is_excluded(path),
                *want,
                "patterns {patterns:?} path {path:?}"
            );
            assert_eq!(DockerIgnore::parse(patterns).is_excluded(path), *want);
        }
        // Paths are cleaned too.
        let ig = DockerIgnore::parse("a/b");
        assert!(ig.is_excluded("./a/b"));
        assert!(ig.is_excluded("/a/b/"));
    }

    #[test]
    fn bad_patterns() {
        for p in ["[", "a[", "[]", "[a-]", "[-a]", "a\\", "[z-a]", "!"] {
            assert!(DockerIgnore::try_parse(p).is_err(), "{p:?} accepted");
            // parse keeps going: the bad pattern matches nothing, the others still apply.
            let ig = DockerIgnore::parse(&format!("{p}\nb"));
            assert!(!ig.is_excluded("a"), "{p:?}");
            assert!(ig.is_excluded("b"), "{p:?}");
        }
        assert_eq!(
            DockerIgnore::try_parse("!").unwrap_err(),
            IgnoreError::IllegalExclusion
        );
        assert_eq!(
            DockerIgnore::try_parse("x\n[").unwrap_err().to_string(),
            "syntax error in pattern \"[\": bad character class"
        );
    }

    #[test]
    fn patterns_are_normalised() {
        let ig = DockerIgnore::parse("\u{feff}/a/\n./b/../c\n!  /d\n\n# c\n  \n");
        assert_eq!(ig.patterns(), ["a", "c", "!d"]);
    }

    #[test]
    fn may_include_below_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("docs", "docs", false),
            ("docs\n!docs/README.md", "docs", true),
            ("docs\n!docs/README.md", "src", false),
            ("docs\n!docs/sub/x", "docs/sub", true),
            ("docs\n!docs/sub/x", "docs/other", false),
            ("*\n!**/*.go", "any/dir", true),
            ("*\n!*.go", "dir", false),
            ("*\n!*/*.go", "dir", true),
            ("*\n!*/*.go", "dir/sub", false),
            ("*\n!d?r/x", "dir", true),
            ("*\n![a-c]*/x", "dir", false),
            ("*\n![a-d]*/x", "dir", true),
            ("*\n!keep/**", "keep", true),
            ("*\n!keep/**", "kee", false),
            ("*\n!a/b/**", "a", true),
            ("*\n!a", "a/b", false),
        ];
        for (patterns, dir, want) in cases {
            let ig = DockerIgnore::parse(patterns);
            assert_eq!(ig.may_include_below(dir), *want, "{patterns:?} {dir:?}");
        }
    }

    #[test]
    fn build_files_are_kept() {
        let ig = DockerIgnore::parse("*\n");
        let kept = ig.with_build_files("docker/Dockerfile.prod");
        assert!(!kept.is_excluded(".dockerignore"));
        assert!(!kept.is_excluded("docker/Dockerfile.prod"));
        assert!(kept.is_excluded("docker/other"));
        assert!(kept.may_include_below("docker"));
        // Nothing added when they are not excluded.
        let ig = DockerIgnore::parse("*.o");
        assert_eq!(ig.with_build_files("Dockerfile").patterns(), ["*.o"]);
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = dir.path().join(f);
            if let Some(d) = f.strip_suffix('/') {
                std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
                continue;
            }
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, f).expect("write");
        }
        dir
    }

    fn walked(dir: &Path, patterns: &str) -> Vec<String> {
        walk(dir, &DockerIgnore::try_parse(patterns).expect("patterns"))
            .expect("walk")
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn walk_lists_sorted_dirs_first() {
        let dir = tree(&[
            "b.txt",
            "a/z",
            "a/b/c",
            "Dockerfile",
            ".dockerignore",
            "empty/",
            "a.txt",
        ]);
        assert_eq!(
            walked(dir.path(), ""),
            [
                ".dockerignore",
                "Dockerfile",
                "a",
                "a/b",
                "a/b/c",
                "a/z",
                "a.txt",
                "b.txt",
                "empty"
            ]
        );
    }

    #[test]
    fn walk_applies_patterns() {
        let dir = tree(&[
            "Dockerfile",
            ".dockerignore",
            "src/main.rs",
            "src/gen.o",
            "target/debug/x",
            "docs/README.md",
            "docs/other.md",
            "docs/img/a.png",
            "secret.env",
        ]);
        let got = walked(
            dir.path(),
            "Dockerfile\n.dockerignore\ntarget\n**/*.o\ndocs\n!docs/README.md\n*.env\n",
        );
        assert_eq!(
            got,
            [
                ".dockerignore",
                "Dockerfile",
                "docs/README.md",
                "src",
                "src/main.rs"
            ]
        );
        let got = walked(dir.path(), "*\n!src\n");
        assert_eq!(
            got,
            [
                ".dockerignore",
                "Dockerfile",
                "src",
                "src/gen.o",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn walk_descends_like_the_docker_cli() {
        let dir = tree(&[
            "Dockerfile",
            "main.go",
            "dir/x.go",
            "dir/y.txt",
            "keep/a/b.go",
        ]);
        // `!**/*.go` could match below `dir`, but the CLI only descends for exceptions that
        // start with the directory's path.
        assert_eq!(
            walked(dir.path(), "*\n!**/*.go\n!keep/a\n"),
            ["Dockerfile", "keep/a", "keep/a/b.go", "main.go"]
        );
        let ig = DockerIgnore::parse("*\n!**/*.go\n!keep/a\n");
        assert!(ig.may_include_below("dir"));
        assert!(!ig.cli_descends_into("dir"));
        assert!(ig.cli_descends_into("keep"));
        assert!(ig.cli_descends_into("keep/a"));
        assert!(!ig.cli_descends_into("kee"));
    }

    /// Both expectations were recorded from `DOCKER_BUILDKIT=0 docker build` (docker CLI 28,
    /// dockerd 20.10) of `FROM scratch` + `COPY . /ctx/` on this tree, then `docker export`
    /// (dockerd then drops the excluded Dockerfile/.dockerignore it was sent, which is the
    /// builder's job, not the walker's).
    #[test]
    fn walk_matches_docker_cli_context() {
        let files = [
            "Dockerfile",
            "main.go",
            "dir/x.go",
            "dir/y.txt",
            "keep/a/b.go",
            "keep/c.txt",
            "docs/README.md",
            "docs/other.md",
            "docs/img/a.png",
            "src/main.rs",
            "src/gen.o",
            "target/debug/x",
            "secret.env",
            "a b.txt",
            "#hash",
            "ab",
            "abc",
            "x.md",
            "sub/x.md",
        ];
        let dir = tree(&files);
        let ignore = "# comment\n*.env\ntarget\n**/*.o\ndocs\n!docs/README.md\n # spaced\nkeep\n!keep/a\ndir/*.txt\nab?\n/x.md\nDockerfile\n";
        std::fs::write(dir.path().join(".dockerignore"), ignore).expect("write");
        assert_eq!(
            walked(dir.path(), ignore),
            [
                "#hash",
                ".dockerignore",
                "Dockerfile",
                "a b.txt",
                "ab",
                "dir",
                "dir/x.go",
                "docs/README.md",
                "keep/a",
                "keep/a/b.go",
                "main.go",
                "src",
                "src/main.rs",
                "sub",
                "sub/x.md"
            ]
        );
        let ignore = "*\n!**/*.go\n!sub\nsub/*.md\n!a?b*\n![ab]b\n!\\#hash\n!**.txt\n";
        assert_eq!(
            walked(dir.path(), ignore),
            [
                "#hash",
                ".dockerignore",
                "Dockerfile",
                "a b.txt",
                "ab",
                "main.go",
                "sub"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn walk_does_not_follow_symlinks() {
        let dir = tree(&["Dockerfile", "real/file"]);
        let outside = tree(&["secret"]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        std::os::unix::fs::symlink("real/file", dir.path().join("flink")).expect("symlink");
        assert_eq!(
            walked(dir.path(), ""),
            ["Dockerfile", "flink", "link", "real", "real/file"]
        );
        assert_eq!(
            walked(dir.path(), "link"),
            ["Dockerfile", "flink", "real", "real/file"]
        );
    }

    #[test]
    fn walk_missing_context_is_an_error() {
        let dir = tree(&[]);
        let err = walk(&dir.path().join("nope"), &DockerIgnore::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
