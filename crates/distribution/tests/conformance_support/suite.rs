//! The checks, in the spec's four groups plus names and auth.

use berth_image::digest::Digest;

use super::{
    Feature, Report, Resp, Target, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};

type R = Result<(), String>;

fn status(r: &Resp, want: &[u16]) -> R {
    if want.contains(&r.status) {
        Ok(())
    } else {
        Err(format!("{}: want {want:?}; body {:?}", r.what(), r.text()))
    }
}

/// A spec error: `status` and `code` among the body's error codes.
fn error(r: &Resp, want_status: u16, code: &str) -> R {
    status(r, &[want_status])?;
    let codes = r.error_codes();
    if codes.iter().any(|c| c == code) {
        Ok(())
    } else {
        Err(format!("{}: want code {code}, got {codes:?}", r.what()))
    }
}

fn header<'a>(r: &'a Resp, name: &str) -> Result<&'a str, String> {
    r.header(name)
        .ok_or_else(|| format!("{}: no {name} header", r.what()))
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> R {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The path and query of a Location header, absolute or relative.
fn location_path(r: &Resp) -> Result<String, String> {
    let loc = header(r, "Location")?;
    let rest = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"));
    Ok(match rest {
        Some(rest) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_default(),
        None => loc.to_string(),
    })
}

/// Appends a query parameter to a Location (which may already carry `?_state=`).
fn with_query(loc: &str, kv: &str) -> String {
    if loc.contains('?') {
        format!("{loc}&{kv}")
    } else {
        format!("{loc}?{kv}")
    }
}

/// Deterministic bytes, different per seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn octet() -> (&'static str, String) {
    ("Content-Type", "application/octet-stream".to_string())
}

impl Target {
    fn start_upload(&self, repo: &str) -> Result<String, String> {
        let r = self.req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")?;
        status(&r, &[202])?;
        location_path(&r)
    }

    /// POST then PUT with the whole blob (the spec's "monolithic" upload).
    fn push_blob(&self, repo: &str, blob: &[u8]) -> Result<Digest, String> {
        let d = Digest::sha256_of(blob);
        let loc = self.start_upload(repo)?;
        let r = self.req(
            "PUT",
            &with_query(&loc, &format!("digest={d}")),
            &[octet()],
            blob,
        )?;
        status(&r, &[201])?;
        Ok(d)
    }

    fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        mt: &str,
        body: &[u8],
    ) -> Result<Resp, String> {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", mt.to_string())],
            body,
        )
    }

    fn get_manifest(&self, repo: &str, reference: &str, accept: &str) -> Result<Resp, String> {
        self.req(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept.to_string())],
            b"",
        )
    }

    /// Pushes a config and one layer; returns an OCI image manifest naming them.
    fn image(&self, repo: &str, seed: u64) -> Result<Image, String> {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seed":{seed}}}"#
        )
        .into_bytes();
        let layer = data(2048 + usize::from(u8::try_from(seed).unwrap_or(0)), seed);
        let cd = self.push_blob(repo, &config)?;
        let ld = self.push_blob(repo, &layer)?;
        let manifest = manifest_json(
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER,
            (&cd, config.len()),
            &[(&ld, layer.len())],
            None,
        );
        Ok(Image {
            digest: Digest::sha256_of(&manifest),
            manifest,
            config: cd,
            layer: ld,
            layer_bytes: layer,
        })
    }
}

pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub config: Digest,
    pub layer: Digest,
    pub layer_bytes: Vec<u8>,
}

fn manifest_json(
    mt: &str,
    config_mt: &str,
    layer_mt: &str,
    config: (&Digest, usize),
    layers: &[(&Digest, usize)],
    extra: Option<(&str, serde_json::Value)>,
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, n)| serde_json::json!({"mediaType": layer_mt, "digest": d.as_str(), "size": n}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "digest": config.0.as_str(), "size": config.1},
        "layers": layers,
    });
    if let Some((k, v)) = extra {
        m[k] = v;
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

/// The core suite against an open (no auth) target: pull, push, discovery, management, names.
pub fn run_core(t: &Target) -> Report {
    let mut rep = Report::default();
    pull(t, &mut rep);
    push(t, &mut rep);
    discovery(t, &mut rep);
    management(t, &mut rep);
    names(t, &mut rep);
    rep
}

fn pull(t: &Target, rep: &mut Report) {
    const G: &str = "pull";
    let repo = "conformance/pull";
    rep.check(t, G, "GET /v2/ is 200", None, || {
        let r = t.req("GET", "/v2/", &[], b"")?;
        status(&r, &[200])
    });
    let img = match t.image(repo, 1).and_then(|img| {
        let r = t.put_manifest(repo, "v1", OCI_MANIFEST, &img.manifest)?;
        status(&r, &[201])?;
        Ok(img)
    }) {
        Ok(i) => i,
        Err(e) => {
            rep.check(t, G, "setup: push an image", None, || Err(e));
            return;
        }
    };
    let len = img.manifest.len().to_string();
    for (name, reference) in [
        ("GET manifest by tag", "v1".to_string()),
        ("GET manifest by digest", img.digest.to_string()),
    ] {
        rep.check(t, G, name, None, || {
            let r = t.get_manifest(repo, &reference, OCI_MANIFEST)?;
            status(&r, &[200])?;
            eq("body", &r.body, &img.manifest)?;
            eq("Content-Type", header(&r, "Content-Type")?, OCI_MANIFEST)?;
            eq(
                "Docker-Content-Digest",
                header(&r, "Docker-Content-Digest")?,
                img.digest.as_str(),
            )
        });
    }
    for (name, reference) in [
        ("HEAD manifest by tag", "v1".to_string()),
        ("HEAD manifest by digest", img.digest.to_string()),
    ] {
        rep.check(t, G, name, None, || {
            let r = t.req(
                "HEAD",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", OCI_MANIFEST.to_string())],
                b"",
            )?;
            status(&r, &[200])?;
            eq(
                "Content-Length",
                header(&r, "Content-Length")?,
                len.as_str(),
            )?;
            eq(
                "Docker-Content-Digest",
                header(&r, "Docker-Content-Digest")?,
                img.digest.as_str(),
            )
        });
    }
    rep.check(t, G, "Accept negotiation: Docker schema2 and OCI index", None, || {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cd = t.push_blob(repo, config)?;
        let m = manifest_json(
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            DOCKER_LAYER,
            (&cd, config.len()),
            &[(&img.layer, img.layer_bytes.len())],
            None,
        );
        status(&t.put_manifest(repo, "docker", DOCKER_MANIFEST, &m)?, &[201])?;
        let accept = format!("{OCI_MANIFEST}, {DOCKER_MANIFEST};q=0.9, {OCI_INDEX}");
        let r = t.get_manifest(repo, "docker", &accept)?;
        status(&r, &[200])?;
        eq("Content-Type", header(&r, "Content-Type")?, DOCKER_MANIFEST)?;
        eq("body", &r.body, &m)?;
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.digest.as_str(),
                           "size": img.manifest.len(),
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }))
        .unwrap();
        status(&t.put_manifest(repo, "index", OCI_INDEX, &index)?, &[201])?;
        let r = t.get_manifest(repo, "index", &accept)?;
        status(&r, &[200])?;
        eq("Content-Type", header(&r, "Content-Type")?, OCI_INDEX)?;
        eq("body", &r.body, &index)
    });
    rep.check(t, G, "GET blob", None, || {
        let r = t.req("GET", &format!("/v2/{repo}/blobs/{}", img.layer), &[], b"")?;
        status(&r, &[200])?;
        eq("body", &r.body, &img.layer_bytes)?;
        eq(
            "Docker-Content-Digest",
            header(&r, "Docker-Content-Digest")?,
            img.layer.as_str(),
        )?;
        eq(
            "Content-Length",
            header(&r, "Content-Length")?,
            img.layer_bytes.len().to_string().as_str(),
        )
    });
    rep.check(t, G, "HEAD blob", None, || {
        let r = t.req("HEAD", &format!("/v2/{repo}/blobs/{}", img.layer), &[], b"")?;
        status(&r, &[200])?;
        ensure(r.body.is_empty(), || "HEAD has a body".into())?;
        eq(
            "Content-Length",
            header(&r, "Content-Length")?,
            img.layer_bytes.len().to_string().as_str(),
        )?;
        eq(
            "Docker-Content-Digest",
            header(&r, "Docker-Content-Digest")?,
            img.layer.as_str(),
        )
    });
    rep.check(
        t,
        G,
        "Range GET of a blob (206, Content-Range)",
        None,
        || {
            let n = img.layer_bytes.len();
            let r = t.req(
                "GET",
                &format!("/v2/{repo}/blobs/{}", img.layer),
                &[("Range", "bytes=10-99".into())],
                b"",
            )?;
            status(&r, &[206])?;
            eq("body", &r.body[..], &img.layer_bytes[10..100])?;
            eq(
                "Content-Range",
                header(&r, "Content-Range")?,
                format!("bytes 10-99/{n}").as_str(),
            )?;
            let r = t.req(
                "GET",
                &format!("/v2/{repo}/blobs/{}", img.layer),
                &[("Range", "bytes=1000-".into())],
                b"",
            )?;
            status(&r, &[206])?;
            eq(
                "open-ended range body",
                &r.body[..],
                &img.layer_bytes[1000..],
            )?;
            // A range past the end cannot be satisfied.
            let r = t.req(
                "GET",
                &format!("/v2/{repo}/blobs/{}", img.layer),
                &[("Range", format!("bytes={}-{}", n + 10, n + 20))],
                b"",
            )?;
            status(&r, &[416])
        },
    );
    rep.check(t, G, "unknown blob: 404 BLOB_UNKNOWN", None, || {
        let d = Digest::sha256_of(b"never pushed");
        error(
            &t.req("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?,
            404,
            "BLOB_UNKNOWN",
        )?;
        let r = t.req("HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?;
        status(&r, &[404])
    });
    rep.check(t, G, "unknown manifest: 404 MANIFEST_UNKNOWN", None, || {
        error(
            &t.get_manifest(repo, "nope", OCI_MANIFEST)?,
            404,
            "MANIFEST_UNKNOWN",
        )?;
        let d = Digest::sha256_of(b"no such manifest");
        error(
            &t.get_manifest(repo, d.as_str(), OCI_MANIFEST)?,
            404,
            "MANIFEST_UNKNOWN",
        )?;
        status(
            &t.req("HEAD", &format!("/v2/{repo}/manifests/nope"), &[], b"")?,
            &[404],
        )
    });
    rep.check(t, G, "unknown repository: 404 NAME_UNKNOWN", None, || {
        error(
            &t.req("GET", "/v2/conformance/never-pushed/tags/list", &[], b"")?,
            404,
            "NAME_UNKNOWN",
        )
    });
}

fn push(t: &Target, rep: &mut Report) {
    const G: &str = "push";
    let repo = "conformance/push";
    rep.check(
        t,
        G,
        "POST opens a session; GET status is 204 + Range",
        None,
        || {
            let r = t.req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")?;
            status(&r, &[202])?;
            let loc = location_path(&r)?;
            ensure(
                loc.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
                || format!("Location {loc:?} is not under the repository's uploads"),
            )?;
            let r = t.req("GET", &loc, &[], b"")?;
            status(&r, &[204])?;
            header(&r, "Range")?;
            header(&r, "Docker-Upload-UUID").map(|_| ())
        },
    );
    rep.check(
        t,
        G,
        "monolithic upload: POST then PUT ?digest=",
        None,
        || {
            let blob = data(5000, 11);
            let d = Digest::sha256_of(&blob);
            let loc = t.start_upload(repo)?;
            let r = t.req(
                "PUT",
                &with_query(&loc, &format!("digest={d}")),
                &[octet()],
                &blob,
            )?;
            status(&r, &[201])?;
            eq(
                "Docker-Content-Digest",
                header(&r, "Docker-Content-Digest")?,
                d.as_str(),
            )?;
            let l = location_path(&r)?;
            let g = t.req("GET", &l, &[], b"")?;
            status(&g, &[200])?;
            eq("blob at Location", &g.body, &blob)
        },
    );
    rep.check(
        t,
        G,
        "single POST ?digest= with the blob",
        Some(Feature::SinglePostUpload),
        || {
            let blob = data(3000, 12);
            let d = Digest::sha256_of(&blob);
            let r = t.req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[octet()],
                &blob,
            )?;
            status(&r, &[201])?;
            location_path(&r)?;
            let g = t.req("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?;
            status(&g, &[200])?;
            eq("blob", &g.body, &blob)
        },
    );
    rep.check(
        t,
        G,
        "chunked upload: PATCH with Content-Range, PUT",
        None,
        || {
            let blob = data(300_000, 13);
            let d = Digest::sha256_of(&blob);
            let mut loc = t.start_upload(repo)?;
            for (i, c) in blob.chunks(100_000).enumerate() {
                let start = i * 100_000;
                let end = start + c.len() - 1;
                let r = t.req(
                    "PATCH",
                    &loc,
                    &[octet(), ("Content-Range", format!("{start}-{end}"))],
                    c,
                )?;
                status(&r, &[202])?;
                eq("Range", header(&r, "Range")?, format!("0-{end}").as_str())?;
                loc = location_path(&r)?;
                let s = t.req("GET", &loc, &[], b"")?;
                status(&s, &[204])?;
                eq(
                    "status Range",
                    header(&s, "Range")?,
                    format!("0-{end}").as_str(),
                )?;
            }
            let r = t.req("PUT", &with_query(&loc, &format!("digest={d}")), &[], b"")?;
            status(&r, &[201])?;
            eq(
                "Docker-Content-Digest",
                header(&r, "Docker-Content-Digest")?,
                d.as_str(),
            )?;
            let g = t.req("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?;
            eq("blob", &g.body, &blob)
        },
    );
    rep.check(
        t,
        G,
        "chunked upload with the last chunk in the PUT",
        None,
        || {
            let blob = data(20_000, 14);
            let d = Digest::sha256_of(&blob);
            let loc = t.start_upload(repo)?;
            let r = t.req(
                "PATCH",
                &loc,
                &[octet(), ("Content-Range", "0-9999".into())],
                &blob[..10_000],
            )?;
            status(&r, &[202])?;
            let loc = location_path(&r)?;
            let r = t.req(
                "PUT",
                &with_query(&loc, &format!("digest={d}")),
                &[octet(), ("Content-Range", "10000-19999".into())],
                &blob[10_000..],
            )?;
            status(&r, &[201])?;
            let g = t.req("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?;
            eq("blob", &g.body, &blob)
        },
    );
    rep.check(
        t,
        G,
        "out-of-order chunk: 416",
        Some(Feature::ChunkRangeCheck),
        || {
            let blob = data(4000, 15);
            let loc = t.start_upload(repo)?;
            let r = t.req(
                "PATCH",
                &loc,
                &[octet(), ("Content-Range", "0-999".into())],
                &blob[..1000],
            )?;
            status(&r, &[202])?;
            let loc = location_path(&r)?;
            let r = t.req(
                "PATCH",
                &loc,
                &[octet(), ("Content-Range", "2000-2999".into())],
                &blob[2000..3000],
            )?;
            status(&r, &[416])?;
            // The session survives and still holds the first chunk.
            let s = t.req("GET", &loc, &[], b"")?;
            status(&s, &[204])?;
            eq("Range after a refused chunk", header(&s, "Range")?, "0-999")
        },
    );
    rep.check(
        t,
        G,
        "streamed upload: PATCH without Content-Range",
        None,
        || {
            let blob = data(150_000, 16);
            let d = Digest::sha256_of(&blob);
            let loc = t.start_upload(repo)?;
            let r = t.req("PATCH", &loc, &[octet()], &blob)?;
            status(&r, &[202])?;
            eq(
                "Range",
                header(&r, "Range")?,
                format!("0-{}", blob.len() - 1).as_str(),
            )?;
            let loc = location_path(&r)?;
            let r = t.req("PUT", &with_query(&loc, &format!("digest={d}")), &[], b"")?;
            status(&r, &[201])?;
            let g = t.req("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?;
            eq("blob", &g.body, &blob)
        },
    );
    rep.check(
        t,
        G,
        "unknown upload: 404 BLOB_UPLOAD_UNKNOWN",
        None,
        || {
            // A finished session is gone.
            let blob = b"finished upload";
            let d = Digest::sha256_of(blob);
            let loc = t.start_upload(repo)?;
            status(
                &t.req(
                    "PUT",
                    &with_query(&loc, &format!("digest={d}")),
                    &[octet()],
                    blob,
                )?,
                &[201],
            )?;
            error(&t.req("GET", &loc, &[], b"")?, 404, "BLOB_UPLOAD_UNKNOWN")?;
            error(
                &t.req("PATCH", &loc, &[octet()], b"more")?,
                404,
                "BLOB_UPLOAD_UNKNOWN",
            )?;
            // A session id never issued: distribution keeps session state in a signed query
            // parameter, so it cannot tell a made-up session from a tampered one and says
            // BLOB_UPLOAD_INVALID; either code is the spec's answer to "no such upload".
            let u = format!("/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000");
            for r in [
                t.req("GET", &u, &[], b"")?,
                t.req("PATCH", &u, &[octet()], b"abc")?,
                t.req("PUT", &format!("{u}?digest={d}"), &[octet()], blob)?,
            ] {
                status(&r, &[404])?;
                let codes = r.error_codes();
                ensure(
                    codes
                        .iter()
                        .any(|c| c == "BLOB_UPLOAD_UNKNOWN" || c == "BLOB_UPLOAD_INVALID"),
                    || format!("{}: want BLOB_UPLOAD_UNKNOWN, got {codes:?}", r.what()),
                )?;
            }
            Ok(())
        },
    );
    rep.check(
        t,
        G,
        "PATCH body cut short: 400 BLOB_UPLOAD_INVALID",
        Some(Feature::UploadInvalidOnCut),
        || {
            let blob = data(64 * 1024, 19);
            let loc = t.start_upload(repo)?;
            let mut h = vec![octet()];
            if let Some(a) = &t.auth {
                h.push(("Authorization", a.clone()));
            }
            let r = super::http::request_cut(&t.host, "PATCH", &loc, &h, &blob, Some(1000))?;
            error(&r, 400, "BLOB_UPLOAD_INVALID")?;
            // Nothing of it counts: the session, if it survives, did not take the cut chunk as a blob.
            let d = Digest::sha256_of(&blob[..1000]);
            status(
                &t.req("HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?,
                &[404],
            )
        },
    );
    rep.check(
        t,
        G,
        "cancel an upload: DELETE 204, then unknown",
        None,
        || {
            let loc = t.start_upload(repo)?;
            let r = t.req("PATCH", &loc, &[octet()], b"half a blob")?;
            status(&r, &[202])?;
            let loc = location_path(&r)?;
            status(&t.req("DELETE", &loc, &[], b"")?, &[204])?;
            error(&t.req("GET", &loc, &[], b"")?, 404, "BLOB_UPLOAD_UNKNOWN")
        },
    );
    rep.check(
        t,
        G,
        "digest mismatch at PUT: 400 DIGEST_INVALID, nothing stored",
        None,
        || {
            let blob = data(6000, 17);
            let claimed = Digest::sha256_of(b"something else");
            let loc = t.start_upload(repo)?;
            let r = t.req(
                "PUT",
                &with_query(&loc, &format!("digest={claimed}")),
                &[octet()],
                &blob,
            )?;
            error(&r, 400, "DIGEST_INVALID")?;
            for d in [claimed, Digest::sha256_of(&blob)] {
                status(
                    &t.req("HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?,
                    &[404],
                )?;
            }
            Ok(())
        },
    );
    rep.check(t, G, "malformed digest: 400 DIGEST_INVALID", None, || {
        let loc = t.start_upload(repo)?;
        let r = t.req(
            "PUT",
            &with_query(&loc, "digest=sha256:xyz"),
            &[octet()],
            b"x",
        )?;
        error(&r, 400, "DIGEST_INVALID")?;
        // No digest at all is the same error.
        let loc = t.start_upload(repo)?;
        error(
            &t.req("PUT", &loc, &[octet()], b"x")?,
            400,
            "DIGEST_INVALID",
        )
    });
    rep.check(
        t,
        G,
        "cross-repository mount (201) and mount of an unknown blob (202)",
        None,
        || {
            let blob = data(7000, 18);
            let d = t.push_blob(repo, &blob)?;
            let r = t.req(
                "POST",
                &format!("/v2/conformance/mounted/blobs/uploads/?mount={d}&from={repo}"),
                &[],
                b"",
            )?;
            status(&r, &[201])?;
            eq(
                "Docker-Content-Digest",
                header(&r, "Docker-Content-Digest")?,
                d.as_str(),
            )?;
            location_path(&r)?;
            let g = t.req(
                "GET",
                &format!("/v2/conformance/mounted/blobs/{d}"),
                &[],
                b"",
            )?;
            status(&g, &[200])?;
            eq("mounted blob", &g.body, &blob)?;
            let unknown = Digest::sha256_of(b"not anywhere");
            let r = t.req(
                "POST",
                &format!("/v2/conformance/mounted/blobs/uploads/?mount={unknown}&from={repo}"),
                &[],
                b"",
            )?;
            status(&r, &[202])?;
            location_path(&r).map(|_| ())
        },
    );
    let img = t.image(repo, 2);
    rep.check(t, G, "PUT manifest by tag and by digest: 201", None, || {
        let img = img.as_ref().map_err(Clone::clone)?;
        let r = t.put_manifest(repo, "latest", OCI_MANIFEST, &img.manifest)?;
        status(&r, &[201])?;
        eq(
            "Docker-Content-Digest",
            header(&r, "Docker-Content-Digest")?,
            img.digest.as_str(),
        )?;
        location_path(&r)?;
        let r = t.put_manifest(repo, img.digest.as_str(), OCI_MANIFEST, &img.manifest)?;
        status(&r, &[201])?;
        eq(
            "Docker-Content-Digest",
            header(&r, "Docker-Content-Digest")?,
            img.digest.as_str(),
        )
    });
    rep.check(
        t,
        G,
        "manifest naming a missing blob: 400 MANIFEST_BLOB_UNKNOWN",
        None,
        || {
            let img = img.as_ref().map_err(Clone::clone)?;
            let missing = Digest::sha256_of(b"missing layer");
            let m = manifest_json(
                OCI_MANIFEST,
                OCI_CONFIG,
                OCI_LAYER,
                (&img.config, 100),
                &[(&missing, 13)],
                None,
            );
            error(
                &t.put_manifest(repo, "missing", OCI_MANIFEST, &m)?,
                400,
                "MANIFEST_BLOB_UNKNOWN",
            )?;
            status(&t.get_manifest(repo, "missing", OCI_MANIFEST)?, &[404])?;
            // An index whose child manifest is missing.
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing.as_str(), "size": 13}],
            }))
            .unwrap();
            error(
                &t.put_manifest(repo, "missing-index", OCI_INDEX, &index)?,
                400,
                "MANIFEST_BLOB_UNKNOWN",
            )
        },
    );
    rep.check(t, G, "invalid manifest: 400 MANIFEST_INVALID", None, || {
        let r = t.put_manifest(repo, "bad", OCI_MANIFEST, b"{not json")?;
        error(&r, 400, "MANIFEST_INVALID")?;
        status(&t.get_manifest(repo, "bad", OCI_MANIFEST)?, &[404])
    });
    rep.check(
        t,
        G,
        "manifest PUT by a digest it does not have: 400 DIGEST_INVALID",
        None,
        || {
            let img = img.as_ref().map_err(Clone::clone)?;
            let wrong = Digest::sha256_of(b"not this manifest");
            error(
                &t.put_manifest(repo, wrong.as_str(), OCI_MANIFEST, &img.manifest)?,
                400,
                "DIGEST_INVALID",
            )
        },
    );
    rep.check(
        t,
        G,
        "manifest over 4 MiB: 413/400 SIZE_INVALID",
        Some(Feature::ManifestSizeLimit),
        || {
            let img = img.as_ref().map_err(Clone::clone)?;
            let m = manifest_json(
                OCI_MANIFEST,
                OCI_CONFIG,
                OCI_LAYER,
                (&img.config, 100),
                &[(&img.layer, img.layer_bytes.len())],
                Some((
                    "annotations",
                    serde_json::json!({"pad": "x".repeat(5 << 20)}),
                )),
            );
            let r = t.put_manifest(repo, "huge", OCI_MANIFEST, &m)?;
            status(&r, &[413, 400])?;
            let codes = r.error_codes();
            ensure(
                codes
                    .iter()
                    .any(|c| c == "SIZE_INVALID" || c == "MANIFEST_INVALID")
                    || r.status == 413,
                || format!("{}: want SIZE_INVALID, got {codes:?}", r.what()),
            )?;
            status(&t.get_manifest(repo, "huge", OCI_MANIFEST)?, &[404])
        },
    );
}

fn discovery(t: &Target, rep: &mut Report) {
    const G: &str = "discovery";
    let repo = "conformance/tags";
    let tags = ["t-a", "t-b", "t-c", "t-d", "t-e"];
    let setup = t.image(repo, 3).and_then(|img| {
        for tag in tags {
            status(
                &t.put_manifest(repo, tag, OCI_MANIFEST, &img.manifest)?,
                &[201],
            )?;
        }
        Ok(img)
    });
    let img = match setup {
        Ok(i) => i,
        Err(e) => {
            rep.check(t, G, "setup: push tags", None, || Err(e));
            return;
        }
    };
    let list = |q: &str| -> Result<(Vec<String>, Option<String>), String> {
        let r = t.req("GET", &format!("/v2/{repo}/tags/list{q}"), &[], b"")?;
        status(&r, &[200])?;
        let v = r.json()?;
        eq("name", v["name"].as_str(), Some(repo))?;
        let tags = v["tags"]
            .as_array()
            .ok_or_else(|| format!("{}: no tags array: {v}", r.what()))?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        Ok((tags, r.header("Link").map(str::to_string)))
    };
    rep.check(t, G, "tags list", None, || {
        let (mut got, _) = list("")?;
        got.sort();
        eq("tags", got, tags.iter().map(|s| s.to_string()).collect())
    });
    rep.check(
        t,
        G,
        "tags list in lexical order",
        Some(Feature::SortedTags),
        || {
            let (got, _) = list("")?;
            eq("tags", got, tags.iter().map(|s| s.to_string()).collect())
        },
    );
    rep.check(
        t,
        G,
        "tags list pagination: n, last, Link",
        Some(Feature::TagsPagination),
        || {
            let (got, link) = list("?n=2")?;
            eq("first page", got, vec!["t-a".to_string(), "t-b".into()])?;
            let link = link.ok_or("first page: no Link header")?;
            ensure(link.contains("rel=\"next\""), || {
                format!("Link {link:?} has no rel=\"next\"")
            })?;
            let next = link
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(u, _)| u.to_string())
                .ok_or_else(|| format!("Link {link:?} has no <url>"))?;
            let q = next
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            ensure(q.contains("n=2") && q.contains("last=t-b"), || {
                format!("Link {link:?} does not carry n=2 and last=t-b")
            })?;
            let (got, _) = list(&q)?;
            eq("second page", got, vec!["t-c".to_string(), "t-d".into()])?;
            let (got, link) = list("?n=2&last=t-d")?;
            eq("last page", got, vec!["t-e".to_string()])?;
            ensure(link.is_none(), || format!("last page has a Link: {link:?}"))?;
            let (got, _) = list("?last=t-b")?;
            eq(
                "after t-b",
                got,
                vec!["t-c".to_string(), "t-d".into(), "t-e".into()],
            )
        },
    );
    rep.check(t, G, "_catalog with n, last and Link", None, || {
        let r = t.req("GET", "/v2/_catalog", &[], b"")?;
        status(&r, &[200])?;
        let all: Vec<String> = r.json()?["repositories"]
            .as_array()
            .ok_or("no repositories array")?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        for want in ["conformance/pull", "conformance/push", "conformance/tags"] {
            ensure(all.iter().any(|r| r == want), || {
                format!("{want} not in catalog {all:?}")
            })?;
        }
        let mut sorted = all.clone();
        sorted.sort();
        eq("catalog order", &all, &sorted)?;
        let r = t.req("GET", "/v2/_catalog?n=1", &[], b"")?;
        status(&r, &[200])?;
        let page = r.json()?["repositories"].clone();
        eq("first catalog page", page, serde_json::json!([all[0]]))?;
        let link = header(&r, "Link")?;
        ensure(
            link.contains("rel=\"next\"") && link.contains("n=1"),
            || format!("catalog Link {link:?}"),
        )?;
        let r = t.req(
            "GET",
            &format!("/v2/_catalog?n=1&last={}", all[0]),
            &[],
            b"",
        )?;
        let page = r.json()?["repositories"].clone();
        eq("second catalog page", page, serde_json::json!([all[1]]))
    });
    rep.check(t, G, "referrers API and OCI-Subject", Some(Feature::Referrers), || {
        let empty = t.push_blob(repo, b"{}")?;
        let blob = data(512, 21);
        let bd = t.push_blob(repo, &blob)?;
        let subject = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": img.digest.as_str(),
                                        "size": img.manifest.len()});
        let mut artifacts = Vec::new();
        for (i, at) in ["application/vnd.example.sbom", "application/vnd.example.sig"]
            .iter()
            .enumerate()
        {
            let m = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": empty.as_str(), "size": 2},
                "layers": [{"mediaType": "application/octet-stream", "digest": bd.as_str(),
                            "size": blob.len()}],
                "subject": subject,
                "annotations": {"n": i.to_string()},
            }))
            .unwrap();
            let md = Digest::sha256_of(&m);
            let r = t.put_manifest(repo, md.as_str(), OCI_MANIFEST, &m)?;
            status(&r, &[201])?;
            eq("OCI-Subject", header(&r, "OCI-Subject")?, img.digest.as_str())?;
            artifacts.push((md, m.len(), *at));
        }
        let r = t.req("GET", &format!("/v2/{repo}/referrers/{}", img.digest), &[], b"")?;
        status(&r, &[200])?;
        eq("Content-Type", header(&r, "Content-Type")?, OCI_INDEX)?;
        let v = r.json()?;
        let ms = v["manifests"].as_array().ok_or("referrers: no manifests")?;
        eq("referrers count", ms.len(), 2)?;
        for (d, n, at) in &artifacts {
            let m = ms
                .iter()
                .find(|m| m["digest"] == d.as_str())
                .ok_or_else(|| format!("{d} not among referrers {v}"))?;
            eq("size", m["size"].as_u64(), Some(*n as u64))?;
            eq("artifactType", m["artifactType"].as_str(), Some(*at))?;
            eq("mediaType", m["mediaType"].as_str(), Some(OCI_MANIFEST))?;
        }
        let r = t.req(
            "GET",
            &format!("/v2/{repo}/referrers/{}?artifactType=application/vnd.example.sig", img.digest),
            &[],
            b"",
        )?;
        status(&r, &[200])?;
        let v = r.json()?;
        eq("filtered count", v["manifests"].as_array().map(Vec::len), Some(1))?;
        eq("OCI-Filters-Applied", header(&r, "OCI-Filters-Applied")?, "artifactType")?;
        // A digest nothing refers to: an empty index, not a 404.
        let none = Digest::sha256_of(b"no referrers");
        let r = t.req("GET", &format!("/v2/{repo}/referrers/{none}"), &[], b"")?;
        status(&r, &[200])?;
        eq("empty referrers", r.json()?["manifests"].clone(), serde_json::json!([]))
    });
}

fn management(t: &Target, rep: &mut Report) {
    const G: &str = "management";
    let repo = "conformance/manage";
    let img = match t.image(repo, 4).and_then(|img| {
        for tag in ["keep", "drop"] {
            status(
                &t.put_manifest(repo, tag, OCI_MANIFEST, &img.manifest)?,
                &[201],
            )?;
        }
        Ok(img)
    }) {
        Ok(i) => i,
        Err(e) => {
            rep.check(t, G, "setup: push an image", None, || Err(e));
            return;
        }
    };
    let tags = || -> Result<Vec<String>, String> {
        let r = t.req("GET", &format!("/v2/{repo}/tags/list"), &[], b"")?;
        if r.status == 404 {
            return Ok(Vec::new());
        }
        status(&r, &[200])?;
        Ok(r.json()?["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    };
    rep.check(
        t,
        G,
        "DELETE a tag: 202, the manifest stays",
        Some(Feature::TagDelete),
        || {
            status(
                &t.req("DELETE", &format!("/v2/{repo}/manifests/drop"), &[], b"")?,
                &[202],
            )?;
            eq("tags after delete", tags()?, vec!["keep".to_string()])?;
            status(&t.get_manifest(repo, "drop", OCI_MANIFEST)?, &[404])?;
            status(
                &t.get_manifest(repo, img.digest.as_str(), OCI_MANIFEST)?,
                &[200],
            )
        },
    );
    rep.check(
        t,
        G,
        "DELETE a manifest by digest: 202, then 404, tags gone",
        None,
        || {
            let r = t.req(
                "DELETE",
                &format!("/v2/{repo}/manifests/{}", img.digest),
                &[],
                b"",
            )?;
            status(&r, &[202])?;
            error(
                &t.get_manifest(repo, img.digest.as_str(), OCI_MANIFEST)?,
                404,
                "MANIFEST_UNKNOWN",
            )?;
            error(
                &t.get_manifest(repo, "keep", OCI_MANIFEST)?,
                404,
                "MANIFEST_UNKNOWN",
            )?;
            eq(
                "tags after deleting their manifest",
                tags()?,
                Vec::<String>::new(),
            )
        },
    );
    rep.check(
        t,
        G,
        "DELETE an unknown manifest: 404 MANIFEST_UNKNOWN",
        None,
        || {
            let d = Digest::sha256_of(b"never a manifest");
            error(
                &t.req("DELETE", &format!("/v2/{repo}/manifests/{d}"), &[], b"")?,
                404,
                "MANIFEST_UNKNOWN",
            )
        },
    );
    rep.check(
        t,
        G,
        "DELETE a blob: 202, then 404 BLOB_UNKNOWN",
        None,
        || {
            let r = t.req(
                "DELETE",
                &format!("/v2/{repo}/blobs/{}", img.layer),
                &[],
                b"",
            )?;
            status(&r, &[202])?;
            status(
                &t.req("HEAD", &format!("/v2/{repo}/blobs/{}", img.layer), &[], b"")?,
                &[404],
            )?;
            error(
                &t.req("GET", &format!("/v2/{repo}/blobs/{}", img.layer), &[], b"")?,
                404,
                "BLOB_UNKNOWN",
            )
        },
    );
    rep.check(
        t,
        G,
        "DELETE an unknown blob: 404 BLOB_UNKNOWN",
        None,
        || {
            let d = Digest::sha256_of(b"never a blob");
            error(
                &t.req("DELETE", &format!("/v2/{repo}/blobs/{d}"), &[], b"")?,
                404,
                "BLOB_UNKNOWN",
            )
        },
    );
}

/// Entries beside the registry's root (where a traversal would land).
fn beside_root(t: &Target) -> Vec<String> {
    let Some(root) = &t.root else {
        return Vec::new();
    };
    let mut v: Vec<String> = root
        .parent()
        .and_then(|p| std::fs::read_dir(p).ok())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn names(t: &Target, rep: &mut Report) {
    const G: &str = "names";
    rep.check(
        t,
        G,
        "invalid names: 400 NAME_INVALID",
        Some(Feature::NameInvalidCode),
        || {
            for name in [
                "Upper/case",
                "a//b",
                "-lead",
                "trail-",
                "a__-b",
                &"x".repeat(256),
            ] {
                let r = t.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"")?;
                error(&r, 400, "NAME_INVALID")?;
            }
            Ok(())
        },
    );
    rep.check(
        t,
        G,
        "invalid names are refused (400 or unrouted 404)",
        None,
        || {
            // (distribution 2.8 accepts upper case and answers a 256-character name with a 500:
            // those are only in the strict check above.)
            for name in ["a//b", "-lead", "trail-", "a/-b"] {
                let r = t.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"")?;
                // Go's mux redirects `a//b` to its cleaned path: refused as given.
                if matches!(r.status, 301 | 308) {
                    continue;
                }
                status(&r, &[400, 404])?;
                let codes = r.error_codes();
                ensure(
                    r.status == 404 || codes.iter().any(|c| c == "NAME_INVALID"),
                    || format!("{}: 400 without NAME_INVALID: {codes:?}", r.what()),
                )?;
            }
            Ok(())
        },
    );
    rep.check(
        t,
        G,
        "path traversal attempts touch nothing outside the root",
        None,
        || {
            let before = beside_root(t);
            let blob = b"traversal payload";
            let d = Digest::sha256_of(blob);
            let attempts = [
                ("POST", "/v2/../../../escape/blobs/uploads/".to_string()),
                ("POST", "/v2/a/../../escape/blobs/uploads/".to_string()),
                (
                    "POST",
                    "/v2/%2e%2e/%2e%2e/escape/blobs/uploads/".to_string(),
                ),
                (
                    "POST",
                    "/v2/a%2f..%2f..%2fescape/blobs/uploads/".to_string(),
                ),
                (
                    "POST",
                    "/v2/%2E%2E%2F%2E%2E%2Fescape/blobs/uploads/".to_string(),
                ),
                (
                    "GET",
                    "/v2/a/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd".to_string(),
                ),
                ("GET", "/v2/a/blobs/uploads/..%2f..%2f..%2fetc".to_string()),
                ("PUT", "/v2/../escape/manifests/latest".to_string()),
                ("PUT", "/v2/a/manifests/..%2f..%2fescape".to_string()),
                (
                    "PUT",
                    format!("/v2/%2e%2e/escape/blobs/uploads/x?digest={d}"),
                ),
            ];
            for (m, p) in &attempts {
                let r = t.req(
                    m,
                    p,
                    &[octet(), ("Content-Type", OCI_MANIFEST.into())],
                    blob,
                )?;
                // A redirect to the cleaned path (Go's mux does that for literal `..`) serves
                // nothing and leaves /v2/: as good as a refusal.
                let redirect_out = matches!(r.status, 301 | 307 | 308)
                    && r.header("Location")
                        .is_some_and(|l| !l.contains("/v2/") || !l.contains(".."));
                ensure(matches!(r.status, 400 | 404 | 405) || redirect_out, || {
                    format!("{}: want 400/404/405; body {:?}", r.what(), r.text())
                })?;
                ensure(!r.text().contains("root:x:0:0"), || {
                    format!("{}: leaked /etc/passwd", r.what())
                })?;
            }
            eq("entries beside the root", beside_root(t), before)
        },
    );
    let tag_img = t.image("conformance/tagcheck", 5);
    for (strict, tags) in [
        (
            false,
            vec!["-lead".to_string(), ".dot".into(), "x".repeat(129)],
        ),
        (
            true,
            vec![
                "-lead".to_string(),
                ".dot".into(),
                "x".repeat(129),
                "a:b".into(),
                "a%2fb".into(),
            ],
        ),
    ] {
        let (name, feature) = if strict {
            (
                "invalid tags: 400 TAG_INVALID (incl. a:b)",
                Some(Feature::StrictTagValidation),
            )
        } else {
            ("invalid tags are refused (400 or unrouted 404)", None)
        };
        rep.check(t, G, name, feature, || {
            let img = tag_img.as_ref().map_err(Clone::clone)?;
            for tag in &tags {
                let r = t.put_manifest("conformance/tagcheck", tag, OCI_MANIFEST, &img.manifest)?;
                status(&r, if strict { &[400] } else { &[400, 404] })?;
                let codes = r.error_codes();
                // `a:b` has a digest's shape: DIGEST_INVALID is as right as TAG_INVALID.
                ensure(
                    r.status == 404
                        || codes
                            .iter()
                            .any(|c| c == "TAG_INVALID" || c == "MANIFEST_INVALID")
                        || (tag.contains(':') && codes.iter().any(|c| c == "DIGEST_INVALID")),
                    || format!("{}: 400 without TAG_INVALID: {codes:?}", r.what()),
                )?;
            }
            let r = t.req("GET", "/v2/conformance/tagcheck/tags/list", &[], b"")?;
            status(&r, &[404, 200])?;
            if r.status == 200 {
                let tags = r.json()?["tags"].clone();
                ensure(tags.is_null() || tags == serde_json::json!([]), || {
                    format!("invalid tags were stored: {tags}")
                })?;
            }
            Ok(())
        });
    }
}

/// Basic auth: `t` carries no credentials; `user`/`password` are valid.
pub fn run_auth_basic(t: &Target, user: &str, password: &str) -> Report {
    use base64::Engine as _;
    const G: &str = "auth";
    let mut rep = Report::default();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    rep.check(
        t,
        G,
        "no credentials: 401 UNAUTHORIZED with a Basic challenge",
        None,
        || {
            let r = t.req("GET", "/v2/", &[], b"")?;
            error(&r, 401, "UNAUTHORIZED")?;
            let c = header(&r, "WWW-Authenticate")?;
            ensure(c.starts_with("Basic ") && c.contains("realm="), || {
                format!("challenge {c:?} is not Basic with a realm")
            })?;
            let r = t.req("GET", "/v2/conformance/x/tags/list", &[], b"")?;
            error(&r, 401, "UNAUTHORIZED")
        },
    );
    rep.check(t, G, "wrong password: 401", None, || {
        let bad = format!("Basic {}", b64(format!("{user}:not-{password}")));
        let r = t.req("GET", "/v2/", &[("Authorization", bad.clone())], b"")?;
        error(&r, 401, "UNAUTHORIZED")?;
        let r = t.req(
            "POST",
            "/v2/conformance/x/blobs/uploads/",
            &[("Authorization", bad)],
            b"",
        )?;
        status(&r, &[401])
    });
    rep.check(t, G, "right password: 200 and a push works", None, || {
        let mut good = t.clone();
        good.auth = Some(format!("Basic {}", b64(format!("{user}:{password}"))));
        status(&good.req("GET", "/v2/", &[], b"")?, &[200])?;
        let d = good.push_blob("conformance/authed", b"authed blob")?;
        let r = good.req(
            "GET",
            &format!("/v2/conformance/authed/blobs/{d}"),
            &[],
            b"",
        )?;
        status(&r, &[200])
    });
    rep
}

/// Token auth: credentials that may pull `repo` but not push to it.
#[derive(Debug, Clone)]
pub struct TokenCase {
    pub repo: String,
    /// `None`: anonymous.
    pub creds: Option<(String, String)>,
}

fn param<'a>(challenge: &'a str, key: &str) -> Option<&'a str> {
    let i = challenge.find(&format!("{key}=\""))?;
    let rest = &challenge[i + key.len() + 2..];
    rest.split_once('"').map(|(v, _)| v)
}

pub fn run_auth_token(t: &Target, case: &TokenCase) -> Report {
    use base64::Engine as _;
    const G: &str = "auth";
    let mut rep = Report::default();
    let repo = case.repo.as_str();
    let mut challenge = String::new();
    rep.check(
        t,
        G,
        "no token: 401 UNAUTHORIZED with a Bearer challenge and scope",
        None,
        || {
            let r = t.req("GET", "/v2/", &[], b"")?;
            error(&r, 401, "UNAUTHORIZED")?;
            let c = header(&r, "WWW-Authenticate")?;
            ensure(
                c.starts_with("Bearer ")
                    && param(c, "realm").is_some()
                    && param(c, "service").is_some(),
                || format!("challenge {c:?} is not Bearer with realm and service"),
            )?;
            let r = t.req("GET", &format!("/v2/{repo}/manifests/latest"), &[], b"")?;
            error(&r, 401, "UNAUTHORIZED")?;
            let c = header(&r, "WWW-Authenticate")?;
            eq(
                "scope",
                param(c, "scope"),
                Some(format!("repository:{repo}:pull").as_str()),
            )?;
            challenge = c.to_string();
            Ok(())
        },
    );
    rep.check(t, G, "a pull-only token cannot push: DENIED", None, || {
        let realm = param(&challenge, "realm").ok_or("no challenge from the previous check")?;
        let service = param(&challenge, "service").unwrap_or_default();
        let realm_hostpath = realm
            .strip_prefix("http://")
            .ok_or_else(|| format!("realm {realm:?} is not http://"))?;
        let (host, path) = realm_hostpath
            .find('/')
            .map(|i| (&realm_hostpath[..i], &realm_hostpath[i..]))
            .unwrap_or((realm_hostpath, "/"));
        let mut h = Vec::new();
        if let Some((u, p)) = &case.creds {
            h.push((
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ),
            ));
        }
        let tr = super::request(
            host,
            "GET",
            &format!("{path}?service={service}&scope=repository:{repo}:pull,push"),
            &h,
            b"",
        )?;
        status(&tr, &[200])?;
        let tv = tr.json()?;
        let token = tv["token"]
            .as_str()
            .or(tv["access_token"].as_str())
            .ok_or_else(|| format!("token response without a token: {tv}"))?;
        let mut tt = t.clone();
        tt.auth = Some(format!("Bearer {token}"));
        // Pulling is allowed: the answer is about the manifest, not about access.
        let r = tt.get_manifest(repo, "latest", OCI_MANIFEST)?;
        status(&r, &[404, 200])?;
        let r = tt.req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")?;
        if t.supports(Feature::Denied403) {
            error(&r, 403, "DENIED")
        } else {
            // distribution answers an insufficient scope with a fresh challenge.
            error(&r, 401, "UNAUTHORIZED")?;
            let c = header(&r, "WWW-Authenticate")?;
            ensure(
                c.contains("insufficient_scope") || c.contains("push"),
                || format!("challenge {c:?} does not ask for push"),
            )
        }
    });
    rep
}
