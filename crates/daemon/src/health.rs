//! Health checks: the image's or the create request's HEALTHCHECK, run through the shim on an
//! interval; status in inspect and `health_status` events, as Docker does.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::HealthConfig;

use crate::container::{HealthLog, Status};
use crate::state::{Container, Daemon};

const DEFAULT: Duration = Duration::from_secs(30);
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

pub fn enabled(h: &HealthConfig) -> bool {
    h.test
        .as_ref()
        .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(u64::try_from(n).unwrap_or(0)),
        _ => default,
    }
}

fn command(h: &HealthConfig) -> Vec<String> {
    let t = h.test.clone().unwrap_or_default();
    match t.first().map(String::as_str) {
        Some("CMD") => t[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), t[1..].join(" ")],
        _ => Vec::new(),
    }
}

/// Starts the checker for the container's current run (it ends when the run ends).
pub fn spawn(d: Arc<Daemon>, c: Arc<Container>) {
    let rec = c.snapshot();
    let Some(h) = rec.config.healthcheck.clone().filter(enabled) else {
        return;
    };
    let starts = c.lifecycle.borrow().starts;
    tokio::spawn(async move {
        let interval = dur(h.interval, DEFAULT);
        let timeout = dur(h.timeout, DEFAULT);
        let start_period = dur(h.start_period, Duration::ZERO);
        let start_interval = dur(h.start_interval, Duration::from_secs(5));
        let retries = h.retries.filter(|r| *r > 0).unwrap_or(3);
        let began = std::time::Instant::now();
        let cmd = command(&h);
        loop {
            let in_start = began.elapsed() < start_period;
            tokio::time::sleep(if in_start {
                start_interval.min(interval)
            } else {
                interval
            })
            .await;
            let lc = c.lifecycle.borrow().clone();
            if lc.starts != starts || !lc.running || lc.removed || c.status() != Status::Running {
                return;
            }
            let t0 = crate::util::now_rfc3339();
            let spec = crate::exec::ExecSpec {
                cmd: cmd.clone(),
                ..Default::default()
            };
            let (code, output) = match tokio::time::timeout(
                timeout,
                crate::exec::run_capture(&d, &c, &spec, MAX_OUTPUT),
            )
            .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => (-1, e.message),
                Err(_) => (-1, format!("Health check exceeded timeout ({timeout:?})")),
            };
            let t1 = crate::util::now_rfc3339();
            let ok = code == 0;
            let mut changed = None;
            let _ = c.update(|r| {
                let Some(hs) = r.state.health.as_mut() else {
                    return;
                };
                hs.log.push(HealthLog {
                    start: t0,
                    end: t1,
                    exit_code: code,
                    output,
                });
                if hs.log.len() > MAX_LOG {
                    hs.log.remove(0);
                }
                let before = hs.status.clone();
                if ok {
                    hs.failing_streak = 0;
                    hs.status = "healthy".into();
                } else if !in_start {
                    hs.failing_streak += 1;
                    if hs.failing_streak >= retries {
                        hs.status = "unhealthy".into();
                    }
                }
                if hs.status != before {
                    changed = Some(hs.status.clone());
                }
            });
            if let Some(s) = changed {
                let rec = c.snapshot();
                d.emit_container(&rec, &format!("health_status: {s}"));
            }
        }
    });
}
