//! Authentication and authorization: htpasswd (bcrypt) users, per-repository access rules, and
//! bearer tokens from the built-in `/token` endpoint (HS256 JWTs signed with a key made at
//! start, so tokens do not outlive the process; clients simply fetch a new one).
//!
//! Decision per request: the action it needs (GET/HEAD pull, POST/PUT/PATCH push, DELETE
//! delete) on its repository. No or bad credentials: 401 with a challenge (Basic, or Bearer
//! naming the scope to ask for). Good credentials whose user may not do it: 403 DENIED. A token
//! that lacks the scope but whose user could get it: 401 with the challenge again, which is how
//! Docker's client learns to ask for more.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::config::{AccessRule, AuthConfig};
use super::error::{ApiError, ApiResult, Code};
use super::names::Route;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("read htpasswd file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("htpasswd file {path} line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
}

/// One grant in a token: actions on a named resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

const ISSUER: &str = "berth-registry";

/// Who made a request, and (with a token) what it was granted.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    /// None for basic auth (the rules decide); the token's grants otherwise.
    pub granted: Option<Vec<Access>>,
}

/// The live auth state.
pub struct Auth {
    config: AuthConfig,
    users: HashMap<String, String>,
    rules: Vec<AccessRule>,
    key: [u8; 32],
    /// sha256(user:password) of credentials that verified, so bcrypt (slow on purpose) runs
    /// once per user and password rather than on every request of a pull.
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .field("rules", &self.rules)
            .field("token", &self.config.token)
            .finish_non_exhaustive()
    }
}

/// Parses an htpasswd file: `user:hash` lines of bcrypt hashes; blank lines and `#` comments.
pub fn parse_htpasswd(path: &Path, text: &str) -> Result<HashMap<String, String>, AuthError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: &str| AuthError::Line {
            path: path.display().to_string(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let (user, hash) = line.split_once(':').ok_or_else(|| err("no ':'"))?;
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
            return Err(err("only bcrypt entries are supported (htpasswd -B)"));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

/// `*` matches any run of characters (slashes too); everything else matches itself.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let p = pattern.as_bytes();
    let s = s.as_bytes();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn sha(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The action a method needs.
pub fn action_of(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "push",
    }
}

impl Auth {
    pub fn load(config: AuthConfig, rules: Vec<AccessRule>) -> Result<Auth, AuthError> {
        let text = std::fs::read_to_string(&config.htpasswd).map_err(|source| AuthError::Read {
            path: config.htpasswd.display().to_string(),
            source,
        })?;
        let users = parse_htpasswd(&config.htpasswd, &text)?;
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Ok(Auth {
            config,
            users,
            rules,
            key,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Whether bearer tokens from `/token` are the way in.
    pub fn token_mode(&self) -> bool {
        self.config.token
    }

    /// Whether `user` may do `action` on `repo` under the rules (no rules: any user, anything).
    pub fn allows(&self, user: &str, repo: &str, action: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules.iter().any(|r| {
            (r.user == "*" || r.user == user)
                && glob_match(&r.repository, repo)
                && r.actions.iter().any(|a| a == action || a == "*")
        })
    }

    fn check_password(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let fp = sha(&format!("{user}:{password}"));
        if let Ok(v) = self.verified.lock() {
            if v.get(user) == Some(&fp) {
                return true;
            }
        }
        if bcrypt::verify(password, hash).unwrap_or(false) {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(user.to_string(), fp);
            }
            return true;
        }
        false
    }

    /// The user of valid basic credentials in `h`.
    pub fn basic_user(&self, h: &HeaderMap) -> Option<String> {
        let v = h.get("authorization")?.to_str().ok()?;
        let b64 = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, pass) = raw.split_once(':')?;
        self.check_password(user, pass).then(|| user.to_string())
    }

    fn bearer(&self, h: &HeaderMap) -> Option<Claims> {
        let v = h.get("authorization")?.to_str().ok()?;
        let t = v.strip_prefix("Bearer ")?;
        let mut val = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        val.set_audience(&[&self.config.service]);
        val.set_issuer(&[ISSUER]);
        let key = jsonwebtoken::DecodingKey::from_secret(&self.key);
        jsonwebtoken::decode::<Claims>(t.trim(), &key, &val)
            .ok()
            .map(|d| d.claims)
    }

    fn realm(&self, h: &HeaderMap, tls: bool) -> String {
        if let Some(r) = &self.config.realm {
            return r.clone();
        }
        let host = h
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{host}/token")
    }

    fn challenge(
        &self,
        h: &HeaderMap,
        tls: bool,
        scope: Option<String>,
        insufficient: bool,
    ) -> ApiError {
        let value = if self.config.token {
            let mut v = format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                self.realm(h, tls),
                self.config.service
            );
            if let Some(s) = &scope {
                v.push_str(&format!(",scope=\"{s}\""));
            }
            if insufficient {
                v.push_str(",error=\"insufficient_scope\"");
            }
            v
        } else {
            format!("Basic realm=\"{}\"", self.config.service)
        };
        let mut e = ApiError::new(Code::Unauthorized, "authentication required")
            .header("www-authenticate", value);
        if let Some(s) = scope {
            e = e.detail(serde_json::json!([{ "Type": "repository", "Name": s.split(':').nth(1).unwrap_or(""), "Action": s.rsplit(':').next().unwrap_or("") }]));
        }
        e
    }

    /// Checks a `/v2/` request; the identity on success.
    pub fn check(
        &self,
        route: &Route,
        method: &Method,
        h: &HeaderMap,
        tls: bool,
    ) -> ApiResult<Identity> {
        let need = route.name().map(|n| (n.to_string(), action_of(method)));
        let scope = need.as_ref().map(|(n, a)| {
            // Docker asks for pull and push together when it pushes.
            let actions = if *a == "push" { "pull,push" } else { a };
            format!("repository:{n}:{actions}")
        });
        if let Some(claims) = self.config.token.then(|| self.bearer(h)).flatten() {
            let id = Identity {
                user: claims.sub.clone(),
                granted: Some(claims.access),
            };
            let Some((name, action)) = need else {
                return Ok(id);
            };
            if id.may(self, &name, action) {
                return Ok(id);
            }
            if self.allows(&id.user, &name, action) {
                return Err(self.challenge(h, tls, scope, true));
            }
            return Err(denied(&name, action));
        }
        let Some(user) = self.basic_user(h) else {
            return Err(self.challenge(h, tls, scope, false));
        };
        let id = Identity {
            user,
            granted: None,
        };
        if let Some((name, action)) = need {
            if !self.allows(&id.user, &name, action) {
                return Err(denied(&name, action));
            }
        }
        Ok(id)
    }

    /// The `/token` endpoint: basic-auth'd; grants the requested scopes the rules allow.
    pub fn issue_token(&self, h: &HeaderMap, scopes: &[String]) -> ApiResult<serde_json::Value> {
        let Some(user) = self.basic_user(h) else {
            return Err(ApiError::new(
                Code::Unauthorized,
                "the token endpoint needs valid credentials",
            )
            .header(
                "www-authenticate",
                format!("Basic realm=\"{}\"", self.config.service),
            ));
        };
        let mut access = Vec::new();
        for s in scopes.iter().flat_map(|s| s.split(' ')) {
            // type:name:actions; names hold no ':', but split from both ends all the same.
            let (Some(kind), Some(actions)) = (s.split(':').next(), s.rsplit(':').next()) else {
                continue;
            };
            let name = s
                .strip_prefix(&format!("{kind}:"))
                .and_then(|r| r.strip_suffix(&format!(":{actions}")))
                .unwrap_or("");
            if name.is_empty() {
                continue;
            }
            let granted: Vec<String> = match kind {
                "repository" => actions
                    .split(',')
                    .flat_map(|a| {
                        if a == "*" {
                            vec!["pull", "push", "delete"]
                        } else {
                            vec![a]
                        }
                    })
                    .filter(|a| matches!(*a, "pull" | "push" | "delete"))
                    .filter(|a| self.allows(&user, name, a))
                    .map(str::to_string)
                    .collect(),
                "registry" if name == "catalog" => vec!["*".to_string()],
                _ => Vec::new(),
            };
            access.push(Access {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: granted,
            });
        }
        let now = super::storage::now_secs();
        let ttl = self.config.token_ttl.max(Duration::from_secs(60)).as_secs();
        let mut jti = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut jti);
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: user,
            aud: self.config.service.clone(),
            exp: now + ttl,
            nbf: now.saturating_sub(5),
            iat: now,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.key),
        )
        .map_err(ApiError::internal)?;
        Ok(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": ttl,
            "issued_at": rfc3339(now),
        }))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of unix seconds (Docker's client parses `issued_at` as RFC 3339).
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn denied(name: &str, action: &str) -> ApiError {
    ApiError::new(Code::Denied, format!("{action} on {name} is not allowed"))
        .detail(serde_json::json!({ "name": name, "action": action }))
        .with_status(StatusCode::FORBIDDEN)
}

impl Identity {
    /// Whether this identity may do `action` on `repo` (a token's grants, or the rules).
    pub fn may(&self, auth: &Auth, repo: &str, action: &str) -> bool {
        match &self.granted {
            Some(g) => g.iter().any(|a| {
                a.kind == "repository" && a.name == repo && a.actions.iter().any(|x| x == action)
            }),
            None => auth.allows(&self.user, repo, action),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_418_119), "2026-11-23T07:15:19Z");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "a/b"));
        assert!(glob_match("library/*", "library/busybox"));
        assert!(!glob_match("library/*", "other/busybox"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
        assert!(glob_match("exact", "exact"));
    }

    fn auth(rules: Vec<AccessRule>, token: bool) -> (Auth, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        let h = bcrypt::hash("secret", 4).unwrap();
        std::fs::write(&p, format!("# users\nalice:{h}\nbob:{h}\n")).unwrap();
        let cfg = AuthConfig {
            htpasswd: p,
            token,
            service: "reg".into(),
            realm: None,
            token_ttl: Duration::from_secs(300),
        };
        (Auth::load(cfg, rules).unwrap(), dir)
    }

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        h.insert("authorization", format!("Basic {v}").parse().unwrap());
        h.insert("host", "127.0.0.1:5000".parse().unwrap());
        h
    }

    #[test]
    fn basic_auth_and_rules() {
        let rules = vec![AccessRule {
            user: "alice".into(),
            repository: "team/*".into(),
            actions: vec!["pull".into(), "push".into()],
        }];
        let (a, _d) = auth(rules, false);
        let route = Route::Manifest {
            name: "team/app".into(),
            reference: "v1".into(),
        };
        assert_eq!(
            a.check(&route, &Method::PUT, &basic("alice", "secret"), false)
                .unwrap()
                .user,
            "alice"
        );
        let e = a
            .check(&route, &Method::PUT, &basic("alice", "wrong"), false)
            .unwrap_err();
        assert_eq!(e.code, Code::Unauthorized);
        assert!(e
            .headers
            .iter()
            .any(|(k, v)| *k == "www-authenticate" && v.starts_with("Basic realm=")));
        let e = a
            .check(&route, &Method::PUT, &basic("bob", "secret"), false)
            .unwrap_err();
        assert_eq!(e.code, Code::Denied);
        let e = a
            .check(&route, &Method::DELETE, &basic("alice", "secret"), false)
            .unwrap_err();
        assert_eq!(e.code, Code::Denied);
    }

    #[test]
    fn tokens_carry_only_allowed_scopes() {
        let rules = vec![AccessRule {
            user: "*".into(),
            repository: "pub/*".into(),
            actions: vec!["pull".into()],
        }];
        let (a, _d) = auth(rules, true);
        let route = Route::Manifest {
            name: "pub/x".into(),
            reference: "v1".into(),
        };
        let e = a
            .check(&route, &Method::GET, &HeaderMap::new(), false)
            .unwrap_err();
        let (_, ch) = e
            .headers
            .iter()
            .find(|(k, _)| *k == "www-authenticate")
            .unwrap();
        assert_eq!(
            ch,
            "Bearer realm=\"http://127.0.0.1/token\",service=\"reg\",scope=\"repository:pub/x:pull\""
        );
        let t = a
            .issue_token(
                &basic("bob", "secret"),
                &["repository:pub/x:pull,push".into()],
            )
            .unwrap();
        let tok = t["token"].as_str().unwrap();
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {tok}").parse().unwrap());
        assert_eq!(
            a.check(&route, &Method::GET, &h, false).unwrap().user,
            "bob"
        );
        // Push was not granted, and bob may never get it: denied.
        let e = a.check(&route, &Method::PUT, &h, false).unwrap_err();
        assert_eq!(e.code, Code::Denied);
        // A forged token is no token.
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {tok}x").parse().unwrap());
        assert_eq!(
            a.check(&route, &Method::GET, &h, false).unwrap_err().code,
            Code::Unauthorized
        );
        assert!(a.issue_token(&basic("bob", "nope"), &[]).is_err());
    }

    #[test]
    fn htpasswd_without_bcrypt_is_refused() {
        let e = parse_htpasswd(Path::new("h"), "u:{SHA}abc\n").unwrap_err();
        assert!(e.to_string().contains("only bcrypt"), "{e}");
    }
}
