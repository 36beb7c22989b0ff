//! Small helpers: ids, times, atomic writes.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A new 64-hex container or exec id.
pub fn new_id() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    hex::encode(b)
}

/// Writes `data` to `path` through a temp file, fsync and rename: a crash leaves the old
/// file or the new one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_replace(path, data, true)
}

/// As [`write_atomic`]; without `durable` the data is not fsynced, so a power loss may keep
/// the old version (never a torn one: the rename is atomic). Used on the hot path for what
/// can be recomputed: a container's status is reconciled with its shim when berthd starts.
pub fn write_replace(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The 12-character short form of an id (the whole id when shorter, as a record read from
/// disk may be: slicing must not panic, berthd is built with panic=abort).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A container id as berthd makes them: 64 lowercase hex digits. Records whose id is not one
/// are refused at load, so an id never names a path outside the container directories.
pub fn is_container_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn now_rfc3339() -> String {
    rfc3339_of(SystemTime::now())
}

/// A time (e.g. a file's mtime) as RFC 3339 in UTC.
pub fn rfc3339_of(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    berth_runtime::state::rfc3339(d.as_secs(), d.subsec_nanos())
}

/// The zero time as Go prints it, which clients expect for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses RFC 3339 (UTC `Z` or an offset) into unix nanoseconds.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if s.as_bytes()
        .get(10)
        .is_none_or(|c| *c != b'T' && *c != b't' && *c != b' ')
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        rest = &r[digits.len()..];
        let mut d9 = digits.clone();
        d9.truncate(9);
        while d9.len() < 9 {
            d9.push('0');
        }
        nanos = d9.parse().ok()?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86400 + h * 3600 + mi * 60 + sec - offset) * 1_000_000_000 + nanos)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Unix seconds of an RFC 3339 time (0 when it does not parse).
pub fn rfc3339_secs(s: &str) -> i64 {
    parse_rfc3339_nanos(s).map_or(0, |n| n / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_rfc3339_nanos("1970-01-01T00:00:01Z"),
            Some(1_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_nanos("2026-11-23T04:01:15.5Z"),
            Some(1795406475 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_nanos("yesterday"), None);
        let now = now_rfc3339();
        assert!(parse_rfc3339_nanos(&now).is_some(), "{now}");
        assert_eq!(new_id().len(), 64);
        assert!(is_container_id(&new_id()));
        assert!(!is_container_id("../../etc"));
        assert!(!is_container_id(&"A".repeat(64)));
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(&"a".repeat(64)), "a".repeat(12));
    }
}
