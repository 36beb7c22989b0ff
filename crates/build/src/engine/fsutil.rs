//! File-system helpers of the engine: paths resolved inside a root, tree copies with COPY's
//! ownership and mode rules, Go-style globs, users from /etc/passwd, mtime clamping.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::BuildError;

/// How many symlinks one resolution may follow (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Resolves `path` inside `root` as if `root` were `/`: `..` stops at the root and symlinks
/// (absolute or relative) are followed within it, so the result never names a place outside
/// `root`. The last component is followed too unless `follow_last` is false. The result may
/// not exist.
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, BuildError> {
    let mut todo: Vec<Vec<u8>> = split(path.as_bytes());
    todo.reverse();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == b".." {
            cur.pop();
            continue;
        }
        let candidate = join(root, &cur).join(OsStr::from_bytes(&c));
        let last = todo.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() && (!last || follow_last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(BuildError::Invalid(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| BuildError::io("readlink", &candidate, e))?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    cur.clear();
                }
                let mut parts = split(t);
                parts.reverse();
                todo.extend(parts);
            }
            _ => cur.push(c),
        }
    }
    Ok(join(root, &cur))
}

fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|b| *b == b'/')
        .filter(|s| !s.is_empty() && *s != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(root: &Path, parts: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in parts {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// Cleans a path the way Go's path.Clean does, always relative (no leading `/`); "" for the root.
pub fn clean_rel(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// Go's filepath.Match for one path (`*` and `?` never match `/`, `[...]` classes, `\` escapes).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        let (mut pi, mut si) = (0, 0);
        let (mut star_p, mut star_s) = (usize::MAX, 0);
        while si < s.len() {
            if pi < p.len() {
                match p[pi] {
                    b'*' => {
                        star_p = pi;
                        star_s = si;
                        pi += 1;
                        continue;
                    }
                    b'?' if s[si] != b'/' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    b'[' => {
                        if let Some((ok, len)) = class(&p[pi..], s[si]) {
                            if ok && s[si] != b'/' {
                                pi += len;
                                si += 1;
                                continue;
                            }
                        }
                    }
                    b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                    c if c == s[si] && c != b'?' && c != b'\\' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            if star_p != usize::MAX && s[star_s] != b'/' {
                star_s += 1;
                si = star_s;
                pi = star_p + 1;
                continue;
            }
            return false;
        }
        p[pi..].iter().all(|c| *c == b'*')
    }
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = p.get(1).is_some_and(|b| *b == b'^' || *b == b'!');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == b']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                if lo <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if lo == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    m(pattern.as_bytes(), name.as_bytes())
}

/// Whether a source word holds glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands a glob (relative to `root`, `/`-separated) to the matching paths, sorted; symlinks
/// in directory parts are not followed out of the root (the walk uses lstat).
pub fn glob(root: &Path, pattern: &str) -> Result<Vec<String>, BuildError> {
    let pat = clean_rel(pattern);
    let segs: Vec<&str> = pat.split('/').filter(|s| !s.is_empty()).collect();
    let mut found = vec![String::new()];
    for seg in &segs {
        let mut next = Vec::new();
        for base in &found {
            let dir = if base.is_empty() {
                root.to_path_buf()
            } else {
                root.join(base)
            };
            if !has_glob(seg) {
                let cand = dir.join(seg);
                if std::fs::symlink_metadata(&cand).is_ok() {
                    next.push(rel_join(base, seg));
                }
                continue;
            }
            let md = match std::fs::symlink_metadata(&dir) {
                Ok(m) => m,
                Err(_) => continue,
            };
            if !md.is_dir() {
                continue;
            }
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|e| BuildError::io("read directory", &dir, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                if glob_match(seg, &n) {
                    next.push(rel_join(base, &n));
                }
            }
        }
        found = next;
    }
    found.retain(|f| !f.is_empty());
    found.sort();
    Ok(found)
}

fn rel_join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Owner and mode rules of one COPY.
#[derive(Debug, Clone, Copy)]
pub struct CopyAttrs {
    /// None keeps the source's owner (ADD of a tar), Some sets it.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, for files and directories alike.
    pub mode: Option<u32>,
    /// SOURCE_DATE_EPOCH: mtimes newer than it are clamped.
    pub clamp: Option<i64>,
}

/// Creates `dir` and its missing parents (0755, root-owned as Docker's), inside the rootfs
/// (the caller resolved `dir` with [`secure_join`]).
pub fn mkdir_all(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), BuildError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_all(parent, owner)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(BuildError::io("create directory", dir, e)),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io("chmod", dir, e))?;
    let (u, g) = owner.unwrap_or((0, 0));
    lchown(dir, u, g)
}

pub fn lchown(p: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(|e| BuildError::io("chown", p, e))
}

fn set_mtime(p: &Path, secs: i64, nsecs: i64) -> Result<(), BuildError> {
    let ts = nix::sys::time::TimeSpec::new(secs, nsecs);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| BuildError::io("set mtime", p, e.into()))
}

/// Copies `src` (file, symlink or directory, never followed) to `dst`; a directory's contents
/// are merged into an existing directory at `dst`.
pub fn copy_tree(src: &Path, dst: &Path, a: &CopyAttrs) -> Result<(), BuildError> {
    let md = std::fs::symlink_metadata(src).map_err(|e| BuildError::io("stat", src, e))?;
    let ft = md.file_type();
    let (uid, gid) = a.owner.unwrap_or((md.uid(), md.gid()));
    if ft.is_dir() {
        let existed = match std::fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => true,
            Ok(_) => {
                std::fs::remove_file(dst).map_err(|e| BuildError::io("remove", dst, e))?;
                false
            }
            Err(_) => false,
        };
        if !existed {
            std::fs::create_dir(dst).map_err(|e| BuildError::io("create directory", dst, e))?;
        }
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| BuildError::io("read directory", src, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), a)?;
        }
        let mode = a.mode.unwrap_or(md.mode() & 0o7777);
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
            .map_err(|e| BuildError::io("chmod", dst, e))?;
        lchown(dst, uid, gid)?;
        finish_mtime(dst, &md, a.clamp)?;
        return Ok(());
    }
    if let Ok(d) = std::fs::symlink_metadata(dst) {
        if d.is_dir() {
            std::fs::remove_dir_all(dst).map_err(|e| BuildError::io("remove", dst, e))?;
        } else {
            std::fs::remove_file(dst).map_err(|e| BuildError::io("remove", dst, e))?;
        }
    }
    if ft.is_symlink() {
        let t = std::fs::read_link(src).map_err(|e| BuildError::io("readlink", src, e))?;
        std::os::unix::fs::symlink(&t, dst).map_err(|e| BuildError::io("symlink", dst, e))?;
        lchown(dst, uid, gid)?;
        finish_mtime(dst, &md, a.clamp)?;
        return Ok(());
    }
    if !ft.is_file() {
        return Err(BuildError::Invalid(format!(
            "cannot copy {}: not a regular file, directory or symlink",
            src.display()
        )));
    }
    std::fs::copy(src, dst).map_err(|e| BuildError::io("copy", dst, e))?;
    let mode = a.mode.unwrap_or(md.mode() & 0o7777);
    lchown(dst, uid, gid)?;
    // chmod after chown: chown clears setuid/setgid bits.
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io("chmod", dst, e))?;
    finish_mtime(dst, &md, a.clamp)
}

fn finish_mtime(dst: &Path, src: &std::fs::Metadata, clamp: Option<i64>) -> Result<(), BuildError> {
    let (mut s, mut ns) = (src.mtime(), src.mtime_nsec());
    if let Some(c) = clamp {
        if s >= c {
            (s, ns) = (c, 0);
        }
    }
    set_mtime(dst, s, ns)
}

/// Sets every mtime under `dir` newer than `epoch` to it (SOURCE_DATE_EPOCH), the directory
/// itself included, so a layer tar does not depend on when the build ran.
pub fn clamp_mtimes(dir: &Path, epoch: i64) -> Result<(), BuildError> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| BuildError::io("stat", dir, e))?;
    if md.is_dir() {
        for e in std::fs::read_dir(dir).map_err(|e| BuildError::io("read directory", dir, e))? {
            let e = e.map_err(|e| BuildError::io("read directory", dir, e))?;
            clamp_mtimes(&e.path(), epoch)?;
        }
    }
    if md.mtime() > epoch || (md.mtime() == epoch && md.mtime_nsec() != 0) {
        set_mtime(dir, epoch, 0)?;
    }
    Ok(())
}

/// A resolved user: uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Reads a file of the rootfs (passwd, group) without following links out of it; "" when
/// it is missing.
pub fn read_in_root(root: &Path, path: &str) -> String {
    match secure_join(root, path, true) {
        Ok(p) => std::fs::read_to_string(p).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Resolves `user[:group]` (names or ids) against /etc/passwd and /etc/group of `root`, as
/// Docker does: a numeric id needs no entry; a name must exist.
pub fn resolve_user(spec: &str, root: &Path, with_groups: bool) -> Result<User, BuildError> {
    let passwd = read_in_root(root, "/etc/passwd");
    let group = read_in_root(root, "/etc/group");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    // No user is uid 0, looked up like any number (runc's GetExecUser).
    let u = if u.is_empty() { "0" } else { u };
    let (uid, mut gid, name) = if let Ok(n) = u.parse::<u32>() {
        match pw.iter().find(|f| f[2] == u) {
            Some(f) => (n, f[3].parse().unwrap_or(0), Some(f[0].to_string())),
            None => (n, 0, None),
        }
    } else {
        let f = pw.iter().find(|f| f[0] == u).ok_or_else(|| {
            BuildError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        let uid = f[2]
            .parse::<u32>()
            .map_err(|_| BuildError::Invalid(format!("invalid uid {:?} for user {u}", f[2])))?;
        (uid, f[3].parse().unwrap_or(0), Some(u.to_string()))
    };
    let g = g.filter(|g| !g.is_empty());
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    // Docker's getUser: the primary group first, then (only when no group was given and the
    // user has a passwd entry) the groups that list the user as a member, in file order.
    let mut additional = Vec::new();
    if with_groups {
        additional.push(gid);
        if let (Some(n), None) = (&name, g) {
            additional.extend(
                gr.iter()
                    .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == n))
                    .filter_map(|f| f[2].parse::<u32>().ok()),
            );
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// Whether a path names something inside the root (for messages): components only.
pub fn is_plain_rel(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("a/up")).unwrap();
        assert_eq!(secure_join(r, "../../x", true).unwrap(), r.join("x"));
        assert_eq!(
            secure_join(r, "abs/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(secure_join(r, "a/up/etc", true).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, "abs", false).unwrap(), r.join("abs"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(secure_join(r, "loop/x", true).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("f*", "f"));
        let d = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "c.md", "sub/d.txt"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        assert_eq!(glob(d.path(), "*.txt").unwrap(), vec!["a.txt", "b.txt"]);
        assert_eq!(glob(d.path(), "s*/*.txt").unwrap(), vec!["sub/d.txt"]);
        assert!(glob(d.path(), "*.none").unwrap().is_empty());
    }

    #[test]
    fn users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nappg:x:1001:\nextra:x:2000:app\n",
        )
        .unwrap();
        let u = resolve_user("app", d.path(), true).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids),
            (1000, 1001, vec![1001, 2000])
        );
        // A numeric user with a passwd entry gets its groups as a named one does.
        let u = resolve_user("1000", d.path(), true).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids),
            (1000, 1001, vec![1001, 2000])
        );
        // An explicit group: only the primary group.
        let u = resolve_user("app:extra", d.path(), true).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 2000, vec![2000]));
        let u = resolve_user("app:extra", d.path(), false).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 2000, vec![]));
        let u = resolve_user("5:6", d.path(), true).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (5, 6, vec![6]));
        let u = resolve_user("7", d.path(), true).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (7, 0, vec![0]));
        let u = resolve_user("", d.path(), true).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (0, 0, vec![0]));
        let e = resolve_user("nobody", d.path(), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unable to find user nobody"), "{e}");
    }
}
