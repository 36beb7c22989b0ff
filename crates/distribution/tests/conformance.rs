//! The registry conformance suite (tests/conformance_support) run against berth-registry and,
//! to prove the suite, against Debian's docker-registry (distribution 2.8), which must pass
//! everything except what it does not implement (declared per target below).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod conformance_support;
mod registry_support;

use conformance_support::{
    run_auth_basic, run_auth_token, run_core, BerthOptions, BerthRegistry, Feature, Target,
    TokenCase,
};
use registry_support::{Auth, Registry, TokenServer};

/// What distribution 2.8 does not implement: OCI 1.1 (referrers, tag deletion), single-POST
/// uploads, tag-list pagination and order (added in distribution 3), Content-Range checks on
/// PATCH (it ignores the header), strict tag validation (`a:b` is a 500), BLOB_UPLOAD_INVALID for
/// a PATCH cut short (its own 499 UNKNOWN), NAME_INVALID (it accepts upper case and answers a
/// 256-character name with a 500), and 403 DENIED (a missing scope is a 401 challenge).
const DISTRIBUTION_UNSUPPORTED: &[Feature] = &[
    Feature::Referrers,
    Feature::SinglePostUpload,
    Feature::TagsPagination,
    Feature::TagDelete,
    Feature::ChunkRangeCheck,
    Feature::SortedTags,
    Feature::StrictTagValidation,
    Feature::UploadInvalidOnCut,
    Feature::NameInvalidCode,
    Feature::Denied403,
];

fn distribution_target(reg: &Registry) -> Target {
    Target {
        name: "distribution 2.8".into(),
        host: reg.host.clone(),
        auth: None,
        unsupported: DISTRIBUTION_UNSUPPORTED.to_vec(),
        root: Some(reg.dir.path().join("storage")),
    }
}

#[test]
fn conformance_distribution() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::None);
    let t = distribution_target(&reg);
    run_core(&t).finish(&t);
}

#[test]
fn conformance_distribution_basic_auth() {
    registry_support::require_registry();
    let reg = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let t = distribution_target(&reg);
    run_auth_basic(&t, "alice", "s3cret").finish(&t);
}

#[test]
fn conformance_distribution_token_auth() {
    registry_support::require_registry();
    let ts = TokenServer::start("alice", "s3cret");
    let reg = Registry::start(Auth::Token {
        realm: ts.realm.clone(),
        service: ts.service.clone(),
        issuer: ts.issuer.clone(),
        cert: ts.cert.clone(),
    });
    let t = distribution_target(&reg);
    // The test token server grants anonymous callers pull (only) under public/.
    let case = TokenCase {
        repo: "public/conformance".into(),
        creds: None,
    };
    run_auth_token(&t, &case).finish(&t);
}

fn berth_target(reg: &BerthRegistry) -> Target {
    Target {
        name: "berth-registry".into(),
        host: reg.host.clone(),
        auth: None,
        // berth-registry implements all of it.
        unsupported: Vec::new(),
        root: Some(reg.root.clone()),
    }
}

#[test]
fn conformance_berth_registry() {
    let reg = BerthRegistry::start(BerthOptions::default());
    let t = berth_target(&reg);
    let rep = run_core(&t);
    if rep
        .rows
        .iter()
        .any(|r| !matches!(r.2, conformance_support::Outcome::Pass))
    {
        eprintln!("registry log:\n{}", reg.log());
    }
    rep.finish(&t);
}

#[test]
fn conformance_berth_registry_basic_auth() {
    let reg = BerthRegistry::start(BerthOptions {
        users: vec![("alice".into(), "s3cret".into())],
        ..Default::default()
    });
    let t = berth_target(&reg);
    run_auth_basic(&t, "alice", "s3cret").finish(&t);
}

#[test]
fn conformance_berth_registry_token_auth() {
    let reg = BerthRegistry::start(BerthOptions {
        users: vec![
            ("alice".into(), "s3cret".into()),
            ("reader".into(), "r3ad".into()),
        ],
        token: true,
        access: vec![
            (
                "alice".into(),
                "*".into(),
                vec!["pull".into(), "push".into(), "delete".into()],
            ),
            ("reader".into(), "*".into(), vec!["pull".into()]),
        ],
        ..Default::default()
    });
    let t = berth_target(&reg);
    let case = TokenCase {
        repo: "conformance/readonly".into(),
        creds: Some(("reader".into(), "r3ad".into())),
    };
    run_auth_token(&t, &case).finish(&t);
}
