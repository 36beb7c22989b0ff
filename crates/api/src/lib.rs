//! The Docker Engine API as berthd serves it and the berth CLI speaks it.
//!
//! JSON shapes are bollard's generated types (from moby's swagger), re-exported as [`models`],
//! so field names and nesting are the published ones, not guesses. This crate adds what the
//! swagger does not describe: the API version range, the multiplexed stream framing of attach,
//! logs and exec, the two shapes of `filters`, and Docker's reading of boolean query values.

pub mod filters;
pub mod stream;
pub mod version;

pub use bollard_stubs::models;

/// `{"message": "..."}`, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// Docker's reading of a boolean query value: empty, `0`, `no`, `false` and `none` (any case)
/// are false; anything else is true.
pub fn query_bool(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_as_docker_reads_them() {
        for f in ["", "0", "no", "False", "NONE", "false"] {
            assert!(!query_bool(f), "{f}");
        }
        for t in ["1", "true", "True", "yes", "x"] {
            assert!(query_bool(t), "{t}");
        }
    }
}

/// `GET /system/df` in the shape API ≤ 1.51 clients (docker CLI 28, docker-py) decode; the
/// generated types follow 1.52's regrouped `ImageUsage`/`ContainerUsage` form instead.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DiskUsage {
    #[serde(rename = "LayersSize")]
    pub layers_size: i64,
    #[serde(rename = "Images")]
    pub images: Vec<models::ImageSummary>,
    #[serde(rename = "Containers")]
    pub containers: Vec<models::ContainerSummary>,
    #[serde(rename = "Volumes")]
    pub volumes: Vec<models::Volume>,
    #[serde(rename = "BuildCache")]
    pub build_cache: Vec<models::BuildCache>,
}
