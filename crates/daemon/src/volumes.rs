//! Named and anonymous volumes of the `local` driver: `volumes/<name>/_data`, with the
//! volume's metadata beside it in `volume.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub created_at: String,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
    pub anonymous: bool,
    /// The image content at the first mount point was copied in (or the volume was used).
    pub seeded: bool,
}

#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    lock: Mutex<()>,
}

const META: &str = "volume.json";

pub fn validate_name(name: &str) -> ApiResult<()> {
    let ok = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    // The name is a directory name: longer than NAME_MAX (255) the mkdir fails with
    // ENAMETOOLONG, which is the caller's mistake, not a 500.
    if ok && name.len() > 255 {
        return Err(ApiError::invalid(format!(
            "create {}...: volume name is longer than 255 characters",
            &name[..32]
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

impl Volumes {
    pub fn open(root: &Path) -> ApiResult<Volumes> {
        std::fs::create_dir_all(root)
            .map_err(|e| ApiError::internal(format!("create {}: {e}", root.display())))?;
        Ok(Volumes {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
        })
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> ApiResult<VolumeRecord> {
        let p = self.root.join(name).join(META);
        if name.contains('/') || name == ".." || name == "." {
            return Err(ApiError::not_found(format!("get {name}: no such volume")));
        }
        let bytes = std::fs::read(&p)
            .map_err(|_| ApiError::not_found(format!("get {name}: no such volume")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("corrupt volume record {}: {e}", p.display())))
    }

    /// Creates the volume, or returns the existing one of that name (as Docker does).
    pub fn create(
        &self,
        name: Option<&str>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> ApiResult<(VolumeRecord, bool)> {
        let _g = self.lock.lock();
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(n)?;
                (n.to_string(), false)
            }
            None => (crate::util::new_id(), true),
        };
        if let Some(k) = options
            .keys()
            .find(|k| !["type", "device", "o", "size"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(format!(
                "create {name}: invalid option key: {k:?}"
            )));
        }
        if let Ok(v) = self.get(&name) {
            return Ok((v, false));
        }
        let dir = self.root.join(&name);
        std::fs::create_dir_all(dir.join("_data"))
            .map_err(|e| ApiError::internal(format!("create volume {name}: {e}")))?;
        let rec = VolumeRecord {
            name: name.clone(),
            created_at: crate::util::now_rfc3339(),
            labels,
            options,
            anonymous,
            seeded: false,
        };
        self.save(&rec)?;
        Ok((rec, true))
    }

    pub fn save(&self, rec: &VolumeRecord) -> ApiResult<()> {
        let bytes = serde_json::to_vec_pretty(rec)
            .map_err(|e| ApiError::internal(format!("encode volume {}: {e}", rec.name)))?;
        crate::util::write_atomic(&self.root.join(&rec.name).join(META), &bytes)
            .map_err(|e| ApiError::internal(format!("save volume {}: {e}", rec.name)))
    }

    pub fn list(&self) -> ApiResult<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.root)
            .map_err(|e| ApiError::internal(format!("list volumes: {e}")))?;
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if let Ok(v) = self.get(n) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the volume and its data; the caller checks that no container uses it.
    pub fn remove(&self, name: &str) -> ApiResult<u64> {
        let _g = self.lock.lock();
        self.get(name)?;
        let dir = self.root.join(name);
        let size = dir_size(&dir.join("_data"));
        // Rename first so a crash never leaves a half-deleted volume that still lists.
        let trash = self.root.join(format!(".trash-{}", crate::util::new_id()));
        std::fs::rename(&dir, &trash)
            .map_err(|e| ApiError::internal(format!("remove volume {name}: {e}")))?;
        std::fs::remove_dir_all(&trash)
            .map_err(|e| ApiError::internal(format!("remove volume {name}: {e}")))?;
        Ok(size)
    }
}

/// Bytes used by the files under `dir` (not following symlinks).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        assert!(validate_name("data").is_ok());
        assert!(validate_name(&"a".repeat(255)).is_ok());
        let long = validate_name(&"a".repeat(256)).unwrap_err();
        assert_eq!(long.kind, crate::error::Kind::InvalidInput);
        assert!(long.message.contains("longer than 255"), "{}", long.message);
        assert!(validate_name("bad/name").is_err());
        assert!(validate_name("x").is_err());
    }

    #[test]
    fn create_get_list_remove() {
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::open(t.path()).unwrap();
        let (a, created) = v
            .create(Some("data"), HashMap::new(), HashMap::new())
            .unwrap();
        assert!(created);
        let (_, again) = v
            .create(Some("data"), HashMap::new(), HashMap::new())
            .unwrap();
        assert!(!again);
        let (anon, _) = v.create(None, HashMap::new(), HashMap::new()).unwrap();
        assert!(anon.anonymous);
        assert_eq!(v.list().unwrap().len(), 2);
        std::fs::write(v.data_dir("data").join("f"), b"1234").unwrap();
        assert_eq!(v.remove("data").unwrap(), 4);
        assert!(v.get(&a.name).is_err());
        assert!(v
            .create(Some("../x"), HashMap::new(), HashMap::new())
            .is_err());
        assert!(v.get("../etc").is_err());
        assert!(v
            .create(
                Some("o"),
                HashMap::new(),
                HashMap::from([("bogus".into(), "1".into())])
            )
            .is_err());
    }
}
