//! `login`/`logout` and the credentials of `~/.docker/config.json` (as docker writes it: base64
//! `auth` per registry, or a credential helper named by `credsStore`/`credHelpers`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use base64::Engine;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::LoginArgs;
use crate::client::Client;
use crate::Exit;

/// Docker Hub's key in config.json.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".docker")
        });
    dir.join("config.json")
}

fn load_config() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

fn save_config(v: &Value) -> Result<()> {
    let p = config_path();
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let tmp = p.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(v)?;
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("rename to {}", p.display()))?;
    Ok(())
}

/// The registry an image name lives on, as config.json keys it.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "docker.io" || first == "index.docker.io" {
                INDEX_SERVER.to_string()
            } else {
                first.to_string()
            }
        }
        _ => INDEX_SERVER.to_string(),
    }
}

fn helper_for(cfg: &Value, server: &str) -> Option<String> {
    cfg["credHelpers"][server]
        .as_str()
        .or(cfg["credsStore"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn helper_call(helper: &str, verb: &str, input: &str) -> Result<String> {
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run credential helper {bin}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{bin} {verb}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (username, password) stored for `server`, if any.
pub fn credentials(server: &str) -> Option<(String, String)> {
    let cfg = load_config();
    if let Some(h) = helper_for(&cfg, server) {
        let out = helper_call(&h, "get", server).ok()?;
        let v: Value = serde_json::from_str(&out).ok()?;
        return Some((
            v["Username"].as_str()?.to_string(),
            v["Secret"].as_str()?.to_string(),
        ));
    }
    let auth = cfg["auths"][server]["auth"].as_str()?;
    let dec = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let s = String::from_utf8(dec).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `X-Registry-Auth` for an image: base64url of the credentials, `e30=` (`{}`) without any.
pub fn auth_header(image: &str) -> String {
    let server = registry_of(image);
    let v = match credentials(&server) {
        Some((u, p)) => json!({"username": u, "password": p, "serveraddress": server}),
        None => json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<()> {
    let server = a
        .server
        .clone()
        .map(|s| {
            let s = s
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let s = s.trim_end_matches('/');
            if s == "docker.io" || s == "index.docker.io" || s.starts_with("index.docker.io/") {
                INDEX_SERVER.to_string()
            } else {
                s.to_string()
            }
        })
        .unwrap_or_else(|| INDEX_SERVER.to_string());
    let username = match a.username {
        Some(u) => u,
        None => {
            print!("Username: ");
            std::io::stdout().flush()?;
            let mut l = String::new();
            std::io::stdin().lock().read_line(&mut l)?;
            l.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            return Err(
                Exit::msg(1, "--password and --password-stdin are mutually exclusive").into(),
            );
        }
        let mut l = String::new();
        std::io::stdin().lock().read_line(&mut l)?;
        l.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        print!("Password: ");
        std::io::stdout().flush()?;
        let mut l = String::new();
        std::io::stdin().lock().read_line(&mut l)?;
        l.trim_end_matches(['\n', '\r']).to_string()
    };
    if username.is_empty() || password.is_empty() {
        return Err(Exit::msg(1, "Error: Username and password are required").into());
    }
    let body = json!({"username": username, "password": password, "serveraddress": server});
    let v: Value = c.json(Method::POST, "/auth", Some(&body)).await?;
    let mut cfg = load_config();
    let token = v["IdentityToken"].as_str().unwrap_or("").to_string();
    if let Some(h) = helper_for(&cfg, &server) {
        let input = json!({"ServerURL": server, "Username": username, "Secret": password});
        helper_call(&h, "store", &input.to_string())?;
    } else {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut entry = json!({"auth": auth});
        if !token.is_empty() {
            entry["identitytoken"] = json!(token);
        }
        if !cfg["auths"].is_object() {
            cfg["auths"] = json!({});
        }
        cfg["auths"][&server] = entry;
        save_config(&cfg)?;
    }
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(server: Option<String>) -> Result<()> {
    let server = server
        .map(|s| {
            let s = s
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            s.trim_end_matches('/').to_string()
        })
        .filter(|s| s != "docker.io" && s != "index.docker.io")
        .unwrap_or_else(|| INDEX_SERVER.to_string());
    let mut cfg = load_config();
    let mut found = cfg["auths"].get(&server).is_some();
    if let Some(h) = helper_for(&cfg, &server) {
        found |= helper_call(&h, "erase", &server).is_ok();
    }
    if !found {
        println!("Not logged in to {server}");
        return Ok(());
    }
    println!("Removing login credentials for {server}");
    if let Some(a) = cfg["auths"].as_object_mut() {
        a.remove(&server);
    }
    save_config(&cfg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), INDEX_SERVER);
        assert_eq!(registry_of("library/busybox"), INDEX_SERVER);
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
        assert_eq!(registry_of("ghcr.io/a/b:1"), "ghcr.io");
        assert_eq!(registry_of("docker.io/library/x"), INDEX_SERVER);
    }
}
