//! Output as docker prints it: `--format` Go templates (gtmpl, with docker's extra functions),
//! `table` formats aligned by Go-style elastic tabstops, human sizes ("12.3MB") and durations
//! ("2 minutes ago").

// Go's int() of a float truncates, and so do docker's size and duration helpers ported here.
#![allow(
    clippy::cast_possible_truncation,
    reason = "truncation is the Go semantics being matched"
)]

use std::collections::HashMap;
use std::io::Write;

use gtmpl_value::{FuncError, Value};

/// A `--format` value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("failed to parse template: template: :1: {0}")]
    Parse(String),
    #[error("template: :1: executing \"\" {0}")]
    Exec(String),
    #[error("write output: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed `--format`: table or not, and the template text with `\t`/`\n` unescaped.
pub struct Format {
    pub table: bool,
    tmpl: gtmpl::Template,
    /// The header row (for tables), from the header context.
    header_tmpl: Option<gtmpl::Template>,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Format")
            .field("table", &self.table)
            .finish()
    }
}

fn docker_funcs(t: &mut gtmpl::Template, header: bool) {
    let funcs: [(&str, gtmpl::Func); 8] = if header {
        [
            ("json", header_ident),
            ("join", header_ident),
            ("split", header_ident),
            ("lower", header_ident),
            ("upper", header_ident),
            ("title", header_ident),
            ("truncate", header_ident),
            ("pad", header_ident),
        ]
    } else {
        [
            ("json", f_json),
            ("join", f_join),
            ("split", f_split),
            ("lower", f_lower),
            ("upper", f_upper),
            ("title", f_title),
            ("truncate", f_truncate),
            ("pad", f_pad),
        ]
    };
    t.add_funcs(&funcs);
    t.add_func("__print", if header { header_ident } else { f_print });
    t.add_func("__label", if header { header_label } else { f_label });
}

fn header_label(_args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String("LABEL".into()))
}

/// docker's `{{.Label "key"}}` method on ps/images/volume rows (rewritten to `__label . "key"`).
fn f_label(args: &[Value]) -> Result<Value, FuncError> {
    let key = arg_str(args, 1, "Label")?;
    match args.first() {
        Some(Value::Object(m)) | Some(Value::Map(m)) => match m.get("__labels") {
            Some(Value::Map(l)) => Ok(l.get(&key).cloned().unwrap_or(Value::String(String::new()))),
            _ => Ok(Value::String(String::new())),
        },
        _ => Ok(Value::String(String::new())),
    }
}

fn f_print(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        args.first().map(go_string).unwrap_or_default(),
    ))
}

/// Makes every printing action end in `| __print`, so values print as Go's fmt prints them
/// (`[a b]`, `map[k:v]`, `<nil>`) rather than as gtmpl's Debug form. Control actions, comments
/// and variable declarations are left alone.
fn wrap_print_actions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // Find the closing braces outside of quoted strings.
        let bytes = after.as_bytes();
        let mut i = 0;
        let mut quote: Option<u8> = None;
        let mut end = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) => {
                    if b == b'\\' && q == b'"' {
                        i += 1;
                    } else if b == q {
                        quote = None;
                    }
                }
                None => {
                    if b == b'"' || b == b'`' || b == b'\'' {
                        quote = Some(b);
                    } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                        end = Some(i);
                        break;
                    }
                }
            }
            i += 1;
        }
        let Some(end) = end else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (lead, body) = match inner.strip_prefix('-') {
            Some(b) if b.starts_with(char::is_whitespace) => ("-", b),
            _ => ("", inner),
        };
        let (body, trail) = match body.strip_suffix('-') {
            Some(b) if b.ends_with(char::is_whitespace) => (b, "-"),
            _ => (body, ""),
        };
        let t = body.trim();
        let first = t
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        let control = matches!(
            first,
            "if" | "else"
                | "end"
                | "range"
                | "with"
                | "define"
                | "template"
                | "block"
                | "break"
                | "continue"
        ) || t.starts_with("/*")
            || t.is_empty()
            || (t.starts_with('$') && (t.contains(":=") || t.contains(" = ")));
        out.push_str("{{");
        if control {
            out.push_str(inner);
        } else {
            out.push_str(lead);
            out.push_str(body);
            out.push_str(" | __print ");
            out.push_str(trail);
        }
        out.push_str("}}");
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

impl Format {
    /// Parses a `--format` value. `default_table` is used for a bare `table`.
    pub fn parse(format: &str, default_table: &str) -> Result<Format, FormatError> {
        let mut text = format.to_string();
        let mut table = false;
        if let Some(rest) = text.strip_prefix("table") {
            table = true;
            text = if rest.trim().is_empty() {
                default_table
                    .strip_prefix("table")
                    .unwrap_or(default_table)
                    .to_string()
            } else {
                rest.to_string()
            };
        }
        let text = text
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let text = wrap_print_actions(
            &text
                .replace("{{.Label ", "{{__label . ")
                .replace(" .Label ", " __label . "),
        );
        let mut tmpl = gtmpl::Template::default();
        docker_funcs(&mut tmpl, false);
        tmpl.parse(text.as_str())
            .map_err(|e| FormatError::Parse(parse_msg(&e.to_string())))?;
        let header_tmpl = if table {
            let mut h = gtmpl::Template::default();
            docker_funcs(&mut h, true);
            h.parse(text.as_str())
                .map_err(|e| FormatError::Parse(parse_msg(&e.to_string())))?;
            Some(h)
        } else {
            None
        };
        Ok(Format {
            table,
            tmpl,
            header_tmpl,
        })
    }

    /// Renders one value with this template.
    pub fn render(&self, v: &Value) -> Result<String, FormatError> {
        let ctx = gtmpl::Context::from(v.clone());
        self.tmpl
            .render(&ctx)
            .map_err(|e| FormatError::Exec(e.to_string()))
    }

    /// Renders rows; for a table, a header row from `headers` (field name → column title) and
    /// everything aligned as docker's tabwriter (min width 10, padding 3).
    pub fn write_rows(
        &self,
        out: &mut dyn Write,
        headers: &[(&str, &str)],
        rows: &[Value],
    ) -> Result<(), FormatError> {
        let mut text = String::new();
        if let Some(h) = &self.header_tmpl {
            let map: HashMap<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            let ctx = gtmpl::Context::from(Value::Map(map));
            let line = h
                .render(&ctx)
                .map_err(|e| FormatError::Exec(e.to_string()))?;
            text.push_str(&line.replace("<no value>", ""));
            text.push('\n');
        }
        for r in rows {
            text.push_str(&self.render(r)?);
            text.push('\n');
        }
        if self.table {
            let mut tw = go_tabwriter(10, 3);
            tw.write_all(text.as_bytes())?;
            tw.flush()?;
            let bytes = tw
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            out.write_all(&bytes)?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

/// A tabwriter that pads as Go's text/tabwriter does: Go's minimum width counts the padding,
/// the tabwriter crate's does not.
pub fn go_tabwriter(minwidth: usize, padding: usize) -> tabwriter::TabWriter<Vec<u8>> {
    tabwriter::TabWriter::new(Vec::new())
        .minwidth(minwidth.saturating_sub(padding))
        .padding(padding)
}

/// gtmpl's parse errors name the line as `line 1`; docker's read `template: :1: ...`.
fn parse_msg(e: &str) -> String {
    let e = e.trim();
    if e.contains("unclosed action") || e.contains("unexpected EOF") {
        return "unclosed action".into();
    }
    e.to_string()
}

fn header_ident(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args
        .first()
        .cloned()
        .unwrap_or(Value::String(String::new())))
}

fn arg_str(args: &[Value], i: usize, name: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Ok(go_string(v)),
        None => Err(FuncError::AtLeastXArgs(name.into(), i + 1)),
    }
}

fn f_json(args: &[Value]) -> Result<Value, FuncError> {
    let v = args
        .first()
        .ok_or_else(|| FuncError::AtLeastXArgs("json".into(), 1))?;
    Ok(Value::String(to_json(v).to_string()))
}

fn f_join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = arg_str(args, 1, "join")?;
    let items: Vec<String> = match args.first() {
        Some(Value::Array(a)) => a.iter().map(go_string).collect(),
        Some(v) => vec![go_string(v)],
        None => return Err(FuncError::AtLeastXArgs("join".into(), 2)),
    };
    Ok(Value::String(items.join(&sep)))
}

fn f_split(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "split")?;
    let sep = arg_str(args, 1, "split")?;
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn f_lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "lower")?.to_lowercase()))
}

fn f_upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(arg_str(args, 0, "upper")?.to_uppercase()))
}

fn f_title(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "title")?;
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    Ok(Value::String(out))
}

fn f_truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "truncate")?;
    let n = match args.get(1) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        _ => return Err(FuncError::AtLeastXArgs("truncate".into(), 2)),
    };
    Ok(Value::String(s.chars().take(n).collect()))
}

fn f_pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "pad")?;
    let num = |i: usize| match args.get(i) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        _ => 0,
    };
    Ok(Value::String(format!(
        "{}{}{}",
        " ".repeat(num(1)),
        s,
        " ".repeat(num(2))
    )))
}

/// How Go's fmt prints a value with `%v` (arrays `[a b]`, maps `map[k:v]`).
pub fn go_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Map(m) | Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !k.starts_with("__")).collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_string(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Nil => "<nil>".into(),
        Value::NoValue => "<no value>".into(),
        other => other.to_string(),
    }
}

/// A gtmpl value back to JSON (for `{{json .}}`).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                n.as_f64()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Map(m) | Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !k.starts_with("__")).collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&m[k])))
                    .collect(),
            )
        }
    }
}

/// JSON (an inspect result) as a template value. Objects are maps, so a missing field prints
/// `<no value>` as Go's templates do on maps.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A row of string fields (ps, images, volume ls...) as a template value.
pub fn row(fields: Vec<(&str, String)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect(),
    )
}

/// Go's `%.Ng`: `prec` significant digits, trailing zeros dropped, exponent form for large or
/// tiny values.
pub fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units' HumanSizeWithPrecision: decimal units ("12.3MB").
pub fn human_size_prec(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (v, u) = scale(size, 1000.0, &UNITS);
    format!("{}{}", go_g(v, prec), u)
}

/// go-units' HumanSize (4 significant digits).
pub fn human_size(size: i64) -> String {
    human_size_prec(size as f64, 4)
}

/// go-units' BytesSize: binary units ("1.52MiB").
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let (v, u) = scale(size, 1024.0, &UNITS);
    format!("{}{}", go_g(v, 4), u)
}

fn scale<'a>(mut size: f64, base: f64, units: &[&'a str]) -> (f64, &'a str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units' HumanDuration.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the epoch, now.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whole seconds since the epoch, now.
pub fn now_secs() -> i64 {
    now_unix() as i64
}

/// "5 minutes ago" for a unix time.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now_unix() - unix as f64))
}

/// An RFC 3339 time (the daemon's `Created`) as unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// Docker's "2026-01-01 00:00:00 +0000 UTC" for a unix time.
pub fn go_time(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} +0000 UTC", s.trim_end_matches('Z').replace('T', " "))
}

/// docker's Ellipsis: at most `max` chars, the last one an ellipsis when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's strconv.Quote (enough for commands: quotes, backslashes and control bytes escaped).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The 12-hex short form of an id (`sha256:` dropped).
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Prints JSON as docker's inspect does: an indented array.
pub fn print_json_indented(out: &mut dyn Write, v: &serde_json::Value) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).map_err(std::io::Error::other)?;
    out.write_all(&buf)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size_prec(12_345_678.0, 3), "12.3MB");
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(4_000.0, 3), "4kB");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(1_234_567_890.0, 3), "1.23GB");
        assert_eq!(bytes_size(1_593_835.0), "1.52MiB");
        assert_eq!(bytes_size(8_348_160_000.0), "7.775GiB");
        assert_eq!(go_g(999.9, 3), "1e+03");
    }

    #[test]
    fn durations_as_go_units() {
        assert_eq!(human_duration(0.2), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(42.0), "42 seconds");
        assert_eq!(human_duration(61.0), "About a minute");
        assert_eq!(human_duration(150.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn templates_as_docker() {
        let r = row(vec![("ID", "abc".into()), ("Names", "web".into())]);
        let f = Format::parse("{{.Names}}", "").unwrap();
        assert_eq!(f.render(&r).unwrap(), "web");
        let f = Format::parse("{{json .}}", "").unwrap();
        assert_eq!(f.render(&r).unwrap(), r#"{"ID":"abc","Names":"web"}"#);
        let f = Format::parse("table {{.ID}}\\t{{.Names}}", "").unwrap();
        let mut out = Vec::new();
        f.write_rows(
            &mut out,
            &[("ID", "CONTAINER ID"), ("Names", "NAMES")],
            &[r],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        assert!(Format::parse("{{.Foo", "").is_err());
        let j = from_json(&serde_json::json!({"State": {"Status": "running", "Pid": 12}}));
        let f = Format::parse("{{.State.Status}} {{.State.Pid}}", "").unwrap();
        assert_eq!(f.render(&j).unwrap(), "running 12");
        let f = Format::parse("{{join .A \",\"}}", "").unwrap();
        assert_eq!(
            f.render(&from_json(&serde_json::json!({"A": ["x", "y"]})))
                .unwrap(),
            "x,y"
        );
    }

    #[test]
    fn values_print_as_go() {
        let j =
            from_json(&serde_json::json!({"Cmd": ["sleep", "100"], "L": {"a": "b"}, "N": null}));
        let f = Format::parse("{{.Cmd}} {{.L}} {{.N}} {{.Missing}}", "").unwrap();
        assert_eq!(
            f.render(&j).unwrap(),
            "[sleep 100] map[a:b] <nil> <no value>"
        );
        let f = Format::parse("{{range .Cmd}}<{{.}}>{{end}}{{if .L}} yes{{end}}", "").unwrap();
        assert_eq!(f.render(&j).unwrap(), "<sleep><100> yes");
        let f = Format::parse("{{- index .Cmd 1 -}} {{$x := .Cmd}}{{len $x}}", "").unwrap();
        assert_eq!(f.render(&j).unwrap(), "1002");
        assert_eq!(
            wrap_print_actions("a {{\"}}\"}} b"),
            "a {{\"}}\" | __print }} b"
        );
    }

    #[test]
    fn text_helpers() {
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(go_quote("echo \"hi\""), "\"echo \\\"hi\\\"\"");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.123456789Z"),
            Some(1_767_225_600)
        );
        assert_eq!(go_time(1_767_225_600), "2026-01-01 00:00:00 +0000 UTC");
    }
}
