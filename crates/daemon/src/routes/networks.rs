//! `/networks`: list, inspect, create, remove, connect, disconnect, prune.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use berth_api::models::{
    EndpointResource, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest, NetworkInspect,
    NetworkPruneResponse,
};

use crate::error::{ApiError, ApiResult};
use crate::network::{wire, CreateRequest, NetworkRecord};
use crate::server::{json, json_status, no_content, JsonBody, Params};
use crate::state::Daemon;

pub fn router() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

fn ipam_of(n: &NetworkRecord) -> Ipam {
    Ipam {
        driver: Some("default".into()),
        // dockerd reports no IPAM driver options as null (docker-py's tests check it).
        options: None,
        config: Some({
            let mut c: Vec<IpamConfig> = n
                .pool
                .iter()
                .map(|p| IpamConfig {
                    subnet: Some(p.subnet.to_string()),
                    gateway: Some(p.gateway.to_string()),
                    ip_range: p.range.map(|r| r.to_string()),
                    auxiliary_addresses: aux_of(&p.reserved),
                })
                .collect();
            // IPv4 first, then IPv6: the pool in use, else the configuration as given.
            if let Some(p) = n.pool6.as_ref().filter(|_| n.enable_ipv6) {
                c.push(IpamConfig {
                    subnet: Some(p.subnet.to_string()),
                    gateway: Some(p.gateway.to_string()),
                    ip_range: p.range.map(|r| r.to_string()),
                    auxiliary_addresses: aux_of(&p.reserved),
                });
            } else if let Some(v6) = &n.ipam6 {
                c.push(IpamConfig {
                    subnet: Some(v6.subnet.to_string()),
                    gateway: v6.gateway.map(|g| g.to_string()),
                    ip_range: v6.range.map(|r| r.to_string()),
                    auxiliary_addresses: aux_of(&v6.aux),
                });
            }
            c
        }),
    }
}

fn aux_of<T: std::fmt::Display>(
    aux: &std::collections::BTreeMap<String, T>,
) -> Option<HashMap<String, String>> {
    (!aux.is_empty()).then(|| {
        aux.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    })
}

pub fn to_api(d: &Daemon, n: &NetworkRecord, with_containers: bool) -> NetworkInspect {
    let prefix = n.subnet().map(|s| s.prefix_len()).unwrap_or(0);
    let prefix6 = n.subnet6().map(|s| s.prefix_len()).unwrap_or(0);
    let containers = with_containers.then(|| {
        n.endpoints
            .iter()
            .map(|(cid, ep)| {
                let name = d
                    .find(cid)
                    .map(|c| c.lock().name.clone())
                    .unwrap_or_else(|_| ep.name.clone());
                (
                    cid.clone(),
                    EndpointResource {
                        name: Some(name),
                        endpoint_id: Some(ep.endpoint_id.clone()),
                        mac_address: Some(ep.mac.clone()),
                        ipv4_address: Some(format!("{}/{prefix}", ep.ip)),
                        ipv6_address: Some(
                            ep.ip6
                                .map(|ip| format!("{ip}/{prefix6}"))
                                .unwrap_or_default(),
                        ),
                    },
                )
            })
            .collect()
    });
    NetworkInspect {
        name: Some(n.name.clone()),
        id: Some(n.id.clone()),
        created: Some(n.created.clone()),
        scope: Some("local".into()),
        driver: Some(n.driver.clone()),
        enable_ipv4: Some(n.driver == "bridge"),
        enable_ipv6: Some(n.enable_ipv6),
        ipam: Some(ipam_of(n)),
        internal: Some(n.internal),
        attachable: Some(n.attachable),
        ingress: Some(false),
        config_only: Some(false),
        config_from: Some(berth_api::models::ConfigReference {
            network: Some(String::new()),
        }),
        options: Some(n.options.clone()),
        labels: Some(n.labels.clone()),
        containers,
        ..Default::default()
    }
}

const LIST_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Active endpoints only, as dockerd: a stopped container still configured on the network does
/// not keep it (its next start then fails with `network … not found`).
fn in_use(_d: &Daemon, n: &NetworkRecord) -> bool {
    !n.endpoints.is_empty()
}

async fn list(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(LIST_FILTERS)?;
    for t in f.get("type") {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::invalid(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let dangling = match f.get("dangling").first().map(String::as_str) {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(v) => return Err(ApiError::invalid(format!("invalid filter 'dangling={v}'"))),
    };
    let mut out = Vec::new();
    for n in d.networks.all() {
        let keep = f.any_or_absent("driver", |s| n.driver == s)
            && f.any_or_absent("id", |s| n.id.starts_with(s))
            && f.any_or_absent("name", |s| n.name.contains(s))
            && f.any_or_absent("scope", |s| s == "local")
            && f.any_or_absent("type", |s| (s == "builtin") == n.predefined())
            && f.match_labels(&n.labels)
            && dangling.is_none_or(|want| want == (!n.predefined() && !in_use(&d, &n)));
        if keep {
            out.push(to_api(&d, &n, true));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(json(&out))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Response> {
    if let Some(s) = q.get("scope").filter(|s| !s.is_empty() && *s != "local") {
        return Err(ApiError::not_found(format!(
            "network {id} not found (scope {s})"
        )));
    }
    let n = d.networks.get(&id)?;
    Ok(json(&to_api(&d, &n, true)))
}

async fn create(
    State(d): State<Arc<Daemon>>,
    JsonBody(req): JsonBody<NetworkCreateRequest>,
) -> ApiResult<Response> {
    let driver = req
        .driver
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bridge".into());
    if let Some(ipd) = req
        .ipam
        .as_ref()
        .and_then(|i| i.driver.as_deref())
        .filter(|s| !s.is_empty() && *s != "default")
    {
        return Err(ApiError::not_found(format!("plugin \"{ipd}\" not found")));
    }
    let ipam = crate::network::parse_ipam(
        req.ipam
            .as_ref()
            .and_then(|i| i.config.as_deref())
            .unwrap_or_default(),
    )?;
    if matches!(req.name.as_str(), "bridge" | "host" | "none") {
        return Err(ApiError::forbidden(format!(
            "{} is a pre-defined network and cannot be created",
            req.name
        )));
    }
    let _admin = d.networks.admin.lock().await;
    let rec = d.networks.create(CreateRequest {
        name: req.name.clone(),
        driver,
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        labels: req.labels.clone().unwrap_or_default(),
        options: req.options.clone().unwrap_or_default(),
        subnet: ipam.subnet,
        gateway: ipam.gateway,
        ip_range: ipam.ip_range,
        aux: ipam.aux,
        enable_ipv6: req.enable_ipv6.unwrap_or(false),
        v6: ipam.v6,
    })?;
    if let Err(e) = wire::sync_firewall(&d).await {
        tracing::warn!("firewall after creating network {}: {e}", rec.name);
    }
    d.events.emit(
        "network",
        "create",
        &rec.id,
        HashMap::from([
            ("name".to_string(), rec.name.clone()),
            ("type".to_string(), rec.driver.clone()),
        ]),
    );
    Ok(json_status(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: rec.id,
            warning: String::new(),
        },
    ))
}

/// Removes a user network without endpoints or member containers.
async fn remove_one(d: &Arc<Daemon>, n: &NetworkRecord) -> ApiResult<()> {
    if n.predefined() {
        return Err(ApiError::forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            n.name
        )));
    }
    if in_use(d, n) {
        return Err(ApiError::forbidden(format!(
            "error while removing network: network {} id {} has active endpoints",
            n.name, n.id
        )));
    }
    d.networks.forget(&n.id)?;
    if let Err(e) = berth_network::link::delete_link(&n.bridge).await {
        tracing::warn!("delete bridge {}: {e}", n.bridge);
    }
    if let Err(e) = wire::sync_firewall(d).await {
        tracing::warn!("firewall after removing network {}: {e}", n.name);
    }
    d.events.emit(
        "network",
        "destroy",
        &n.id,
        HashMap::from([
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]),
    );
    Ok(())
}

async fn remove(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Response> {
    let _admin = d.networks.admin.lock().await;
    let n = d.networks.get(&id)?;
    remove_one(&d, &n).await?;
    Ok(no_content())
}

async fn connect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NetworkConnectRequest>,
) -> ApiResult<Response> {
    let n = d.networks.get(&id)?;
    let c = d.find(&req.container)?;
    let _op = c.op.lock().await;
    let settings = req.endpoint_config.unwrap_or_default();
    wire::connect(&d, &c, &n, &settings).await?;
    emit_membership(&d, &n, &c.id, "connect");
    Ok(json(&serde_json::json!({})))
}

async fn disconnect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NetworkDisconnectRequest>,
) -> ApiResult<Response> {
    let n = d.networks.get(&id)?;
    let c = match d.find(&req.container) {
        Ok(c) => c,
        Err(e) if req.force.unwrap_or(false) => {
            // A forced disconnect of a container that is gone drops its stale endpoint.
            let gone = n
                .endpoints
                .iter()
                .find(|(k, ep)| k.starts_with(&req.container) || ep.name == req.container)
                .map(|(k, _)| k.clone());
            let Some(cid) = gone else { return Err(e) };
            d.networks.modify(&n.id, true, |n| {
                n.endpoints.remove(&cid);
                n.retain_leases(|o| o != cid);
                Ok(())
            })?;
            return Ok(json(&serde_json::json!({})));
        }
        Err(e) => return Err(e),
    };
    let _op = c.op.lock().await;
    wire::disconnect(&d, &c, &n).await?;
    emit_membership(&d, &n, &c.id, "disconnect");
    Ok(json(&serde_json::json!({})))
}

fn emit_membership(d: &Daemon, n: &NetworkRecord, cid: &str, action: &str) {
    wire::emit(d, n, cid, action);
}

async fn prune(State(d): State<Arc<Daemon>>, q: Params) -> ApiResult<Response> {
    let f = q.filters()?;
    f.validate(&["label", "label!", "until"])?;
    let until = f
        .get("until")
        .first()
        .map(|u| {
            crate::events::parse_time_nanos(u)
                .ok_or_else(|| ApiError::invalid(format!("invalid filter 'until={u}'")))
        })
        .transpose()?;
    let _admin = d.networks.admin.lock().await;
    let mut deleted = Vec::new();
    for n in d.networks.all() {
        if n.predefined() || in_use(&d, &n) || !f.match_labels(&n.labels) {
            continue;
        }
        let neg = f.get("label!");
        if neg.iter().any(|l| match l.split_once('=') {
            Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
            None => n.labels.contains_key(l.as_str()),
        }) {
            continue;
        }
        if until.is_some_and(|u| crate::util::parse_rfc3339_nanos(&n.created).unwrap_or(0) >= u) {
            continue;
        }
        if remove_one(&d, &n).await.is_ok() {
            deleted.push(n.name.clone());
        }
    }
    Ok(json(&NetworkPruneResponse {
        networks_deleted: Some(deleted),
    }))
}

/// `NetworkSettings.Networks` of a container: its configured networks, with the live
/// endpoint's address when it runs.
pub fn endpoint_settings(
    d: &Daemon,
    rec: &crate::container::ContainerRecord,
) -> HashMap<String, EndpointSettings> {
    let mut out = HashMap::new();
    let mode = rec.host_config.network_mode.as_deref().unwrap_or("default");
    if rec.networks.is_empty() {
        let name = match mode {
            "host" | "none" => mode,
            "" | "default" | "bridge" => "none",
            _ => return out,
        };
        if let Ok(n) = d.networks.get(name) {
            out.insert(
                n.name.clone(),
                EndpointSettings {
                    network_id: Some(n.id.clone()),
                    ..Default::default()
                },
            );
        }
        return out;
    }
    for a in &rec.networks {
        let Ok(n) = d.networks.get(&a.network_id) else {
            continue;
        };
        let ep = n.endpoints.get(&rec.id);
        let pool = n.pool.as_ref();
        let mut dns_names = Vec::new();
        if !n.is_default_bridge() {
            dns_names.push(rec.name.clone());
            dns_names.push(crate::util::short(&rec.id).to_string());
            dns_names.extend(a.aliases.iter().cloned());
        }
        out.insert(
            n.name.clone(),
            EndpointSettings {
                ipam_config: (a.ipv4.is_some() || a.ipv6.is_some() || !a.link_local.is_empty())
                    .then(|| berth_api::models::EndpointIpamConfig {
                        ipv4_address: a.ipv4.map(|ip| ip.to_string()),
                        ipv6_address: a.ipv6.map(|ip| ip.to_string()),
                        link_local_ips: (!a.link_local.is_empty())
                            .then(|| a.link_local.iter().map(ToString::to_string).collect()),
                    }),
                links: (!a.links.is_empty()).then(|| a.links.clone()),
                mac_address: Some(
                    ep.map(|e| e.mac.clone())
                        .or_else(|| a.mac.clone())
                        .unwrap_or_default(),
                ),
                driver_opts: (!a.driver_opts.is_empty())
                    .then(|| a.driver_opts.clone().into_iter().collect()),
                aliases: (!a.aliases.is_empty()).then(|| a.aliases.clone()),
                network_id: Some(n.id.clone()),
                endpoint_id: Some(ep.map(|e| e.endpoint_id.clone()).unwrap_or_default()),
                gateway: Some(
                    ep.and(pool)
                        .map(|p| p.gateway.to_string())
                        .unwrap_or_default(),
                ),
                ip_address: Some(ep.map(|e| e.ip.to_string()).unwrap_or_default()),
                ip_prefix_len: Some(
                    ep.and(pool)
                        .map(|p| i64::from(p.subnet.prefix_len()))
                        .unwrap_or(0),
                ),
                ipv6_gateway: Some(
                    ep.and_then(|e| e.ip6)
                        .and(n.pool6.as_ref())
                        .map(|p| p.gateway.to_string())
                        .unwrap_or_default(),
                ),
                global_ipv6_address: Some(
                    ep.and_then(|e| e.ip6)
                        .map(|ip| ip.to_string())
                        .unwrap_or_default(),
                ),
                global_ipv6_prefix_len: Some(
                    ep.and_then(|e| e.ip6)
                        .and(n.pool6.as_ref())
                        .map(|p| i64::from(p.subnet.prefix_len()))
                        .unwrap_or(0),
                ),
                dns_names: (!dns_names.is_empty()).then_some(dns_names),
                ..Default::default()
            },
        );
    }
    out
}
