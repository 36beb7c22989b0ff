//! The event bus: every container, image, volume and network action, kept in a ring for
//! `since` and broadcast to `/events` subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::filters::Filters;
use serde::Serialize;
use tokio::sync::broadcast;

const RING: usize = 1024;

/// One event, with the legacy `status`/`id`/`from` fields compose still reads.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "status", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "from", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: HashMap<String, String>,
}

#[derive(Debug)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(RING);
        Events {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            tx,
        }
    }
}

pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Events {
    /// Publishes `action` on an object of type `typ` ("container", "image", "volume", …).
    pub fn emit(&self, typ: &str, action: &str, id: &str, attributes: HashMap<String, String>) {
        let nanos = now_nanos();
        let legacy = typ == "container" || typ == "image";
        let ev = Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if typ == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local",
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        };
        if let Ok(mut r) = self.ring.lock() {
            if r.len() == RING {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Past events at or after `since_nanos` and a receiver for the ones to come; the lock
    /// makes the two meet without a gap.
    pub fn subscribe(&self, since_nanos: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ring = self.ring.lock();
        let rx = self.tx.subscribe();
        let past = match (since_nanos, ring) {
            (Some(s), Ok(r)) => r.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            _ => Vec::new(),
        };
        (past, rx)
    }
}

/// Parses Docker's `since`/`until`: unix seconds (maybe fractional), or RFC 3339.
pub fn parse_time_nanos(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 9.2e9 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // bounded just above
        return Some((f * 1e9) as i64);
    }
    crate::util::parse_rfc3339_nanos(s)
}

pub const EVENT_FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "volume",
    "network",
    "daemon",
    "scope",
];

/// Whether an event passes `/events` filters.
pub fn matches(f: &Filters, e: &Event) -> bool {
    let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
    let name = attr("name").unwrap_or("");
    f.any_or_absent("type", |t| t == e.typ)
        && f.any_or_absent("event", |a| {
            a == e.action || e.action.split(':').next() == Some(a)
        })
        && f.any_or_absent("container", |c| {
            e.typ == "container" && (e.actor.id.starts_with(c) || name == c)
        })
        && f.any_or_absent("image", |i| {
            attr("image") == Some(i) || (e.typ == "image" && (e.actor.id == i || name == i))
        })
        && f.any_or_absent("volume", |v| e.typ == "volume" && e.actor.id == v)
        && f.any_or_absent("network", |n| {
            e.typ == "network" && (e.actor.id == n || name == n)
        })
        && f.any_or_absent("scope", |s| s == "local")
        && f.match_labels(&e.actor.attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_replay() {
        let ev = Events::default();
        let (_, mut rx) = ev.subscribe(None);
        ev.emit(
            "container",
            "start",
            "abc",
            HashMap::from([
                ("name".into(), "web".into()),
                ("image".into(), "busybox".into()),
            ]),
        );
        let got = rx.try_recv().unwrap();
        let f = Filters::parse(Some(r#"{"type":["container"],"container":["web"]}"#)).unwrap();
        assert!(matches(&f, &got));
        let f = Filters::parse(Some(r#"{"event":["die"]}"#)).unwrap();
        assert!(!matches(&f, &got));
        let line = serde_json::to_value(&got).unwrap();
        assert_eq!(line["status"], "start");
        assert_eq!(line["id"], "abc");
        assert_eq!(line["from"], "busybox");
        let (past, _) = ev.subscribe(Some(0));
        assert_eq!(past.len(), 1);
        assert_eq!(parse_time_nanos("1.5"), Some(1_500_000_000));
    }
}
