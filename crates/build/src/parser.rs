//! Dockerfile text → [`crate::ast::Dockerfile`].
//!
//! Two passes, as Docker's frontend does them: the first turns physical lines into logical
//! instructions (directives, comments, continuations, here-documents), the second turns each
//! instruction's words and flags into a typed [`Instruction`]. Words stay raw (quotes, `$v`),
//! because Docker expands them at dispatch time with the stage's ARG/ENV in scope.

use crate::ast::{
    Command, Copy, Dockerfile, From, Healthcheck, Heredoc, Instruction, MountType, Run, RunMount,
    Spanned, Stage,
};

/// A syntax error, with the file name and 1-based line it was found on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses a Dockerfile. `file` names it in errors (e.g. `Dockerfile`).
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let wrap = |e: LineError| ParseError {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    };
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(ParseError {
            file: file.to_string(),
            line: 1,
            message: "the Dockerfile cannot be empty".to_string(),
        });
    }
    let logical = split_lines(text).map_err(wrap)?;
    build(logical).map_err(wrap)
}

#[derive(Debug)]
struct LineError {
    line: usize,
    message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        line,
        message: message.into(),
    })
}

/// One instruction after the line pass.
#[derive(Debug)]
struct Logical {
    line: usize,
    text: String,
    heredocs: Vec<Heredoc>,
    escape: char,
}

struct Lines {
    syntax: Option<String>,
    escape: char,
    instructions: Vec<Logical>,
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('#')
}

/// `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// Removes a trailing escape char (and blanks after it); false when the line goes on.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        // An escaped escape at the end (`foo \\`) is text, not a continuation.
        Some(joined) if !joined.ends_with(escape) || joined.is_empty() => (joined, false),
        _ => (line, true),
    }
}

fn split_lines(text: &str) -> Result<Lines, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = Lines {
        syntax: None,
        escape: '\\',
        instructions: Vec::new(),
    };
    let mut directives_done = false;
    let mut seen = std::collections::HashSet::new();
    let mut i = 0;
    while i < raw.len() {
        let start = i + 1;
        let first = raw[i].trim_start_matches([' ', '\t']);
        i += 1;
        if !directives_done {
            match directive(first) {
                Some((name, value)) if matches!(name.as_str(), "escape" | "syntax" | "check") => {
                    if !seen.insert(name.clone()) {
                        return err(
                            start,
                            format!("only one {name} parser directive can be used"),
                        );
                    }
                    match name.as_str() {
                        "escape" => {
                            out.escape = match value.as_str() {
                                "\\" => '\\',
                                "`" => '`',
                                _ => {
                                    return err(
                                        start,
                                        format!(
                                            "invalid escape token '{value}' does not match ` or \\"
                                        ),
                                    )
                                }
                            }
                        }
                        "syntax" => out.syntax = Some(value),
                        _ => {}
                    }
                }
                _ => directives_done = true,
            }
        }
        if is_comment(first) {
            continue;
        }
        let escape = out.escape;
        let (head, mut ended) = trim_continuation(first, escape);
        if ended && head.is_empty() {
            continue;
        }
        let mut line = head.to_string();
        while !ended && i < raw.len() {
            let next = raw[i];
            i += 1;
            if is_comment(next) {
                continue;
            }
            if next.trim_start_matches([' ', '\t']).is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(next, escape);
            line.push_str(part);
            ended = end;
        }
        let mut heredocs = Vec::new();
        if may_hold_heredocs(&line) {
            for (name, expand, chomp) in heredocs_in_line(&line) {
                let mut content = String::new();
                let mut terminated = false;
                while i < raw.len() {
                    let body = raw[i];
                    i += 1;
                    let candidate = if chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    content.push_str(if chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    });
                    content.push('\n');
                }
                if !terminated {
                    return err(start, format!("unterminated heredoc {name}"));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        out.instructions.push(Logical {
            line: start,
            text: line,
            heredocs,
            escape,
        });
    }
    Ok(out)
}

/// RUN, COPY and ADD in shell form may carry here-documents (Docker only looks there).
fn may_hold_heredocs(line: &str) -> bool {
    if !line.contains("<<") {
        return false;
    }
    let (mut cmd, _flags, mut rest) = split_command(line);
    if cmd.eq_ignore_ascii_case("onbuild") {
        (cmd, _, rest) = split_command(&rest);
    }
    matches!(cmd.to_ascii_lowercase().as_str(), "run" | "copy" | "add")
        && !matches!(parse_json(&rest), Json::Array(_) | Json::NotStrings)
}

/// Splits on unquoted whitespace, keeping quotes and escapes as written.
fn raw_shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                word.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == '\\' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`: (name, expand, chomp), or None when `word` is not a
/// here-document opener.
pub(crate) fn parse_heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    // `3<<EOF` feeds file descriptor 3; the shell handles that, the name is what matters here.
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.contains('<') {
        return None;
    }
    // Unquote like the shell would; a removed quote means the body is taken literally.
    let mut name = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$')) => name.push(n),
                Some(n) => {
                    name.push('\\');
                    name.push(n);
                }
                None => {}
            },
            (Some(_), c) => name.push(c),
            (None, '\'' | '"') => {
                quoted = true;
                quote = Some(c);
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    name.push(n);
                }
            }
            (None, c) if c.is_whitespace() => return None,
            (None, c) => name.push(c),
        }
    }
    if quote.is_some() || name.is_empty() {
        return None;
    }
    Some((name, !quoted, chomp))
}

fn heredocs_in_line(line: &str) -> Vec<(String, bool, bool)> {
    raw_shell_words(line)
        .iter()
        .filter_map(|w| parse_heredoc_word(w))
        .collect()
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// (keyword as written, flag words, the rest trimmed).
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    match line.find(is_blank) {
        None => (line.to_string(), Vec::new(), String::new()),
        Some(pos) => {
            let cmd = &line[..pos];
            let args = line[pos..].trim_start_matches(is_blank);
            let (rest, flags) = extract_flags(args);
            (cmd.to_string(), flags, rest.trim().to_string())
        }
    }
}

/// Leading `--name[=value]` words (quotes and `\` handled); stops at the first other word or `--`.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    loop {
        while k < bytes.len() && bytes[k].1.is_whitespace() {
            k += 1;
        }
        if k >= bytes.len() {
            return ("", flags);
        }
        let start = bytes[k].0;
        if !line[start..].starts_with("--") {
            return (&line[start..], flags);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while k < bytes.len() {
            let c = bytes[k].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if k + 1 < bytes.len() {
                        k += 1;
                        word.push(bytes[k].1);
                    }
                }
                _ => word.push(c),
            }
            k += 1;
        }
        if word == "--" {
            let end = bytes.get(k).map_or(line.len(), |b| b.0);
            return (&line[end..], flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

#[derive(Debug, Default)]
struct Flags {
    values: Vec<(String, String)>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

fn parse_flags(words: &[String], spec: &[(&str, FlagKind)]) -> Result<Flags, String> {
    let mut flags = Flags::default();
    for word in words {
        let Some(body) = word.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {word}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(with_suggestion(
                format!("unknown flag: {flag_name}"),
                name,
                &names,
                true,
            ));
        };
        if kind != FlagKind::Strs && flags.get(name).is_some() {
            return Err(format!("duplicate flag specified: {flag_name}"));
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some("")) => {
                return Err(format!("missing a value on flag: {flag_name}"))
            }
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => {
                    return Err(format!(
                        "expecting boolean value for flag {flag_name}, not: {v}"
                    ))
                }
            },
            (_, None) => return Err(format!("missing a value on flag: {flag_name}")),
            (_, Some(v)) => v.to_string(),
        };
        flags.values.push((name.to_string(), value));
    }
    Ok(flags)
}

enum Json {
    Array(Vec<String>),
    Other,
    NotStrings,
}

fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::Other;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => Json::Other,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
    }
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// Exec form when `rest` is a JSON string array, shell form otherwise (Docker's fallback).
fn maybe_json(rest: &str) -> Result<Command, String> {
    match parse_json(rest) {
        Json::Array(a) => Ok(Command::Exec(a)),
        Json::NotStrings => Err(NOT_STRINGS.to_string()),
        Json::Other => Ok(Command::Shell(rest.to_string())),
    }
}

fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// JSON array or whitespace-separated words (ADD, COPY, VOLUME).
fn maybe_json_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Json::Array(a) => Ok((a, true)),
        Json::NotStrings => Err(NOT_STRINGS.to_string()),
        Json::Other => Ok((whitespace_words(rest), false)),
    }
}

/// Docker's word splitter for ENV/LABEL/ARG: on unquoted blanks, quotes and escapes kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = rest.chars().collect();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        k += 1;
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if k == chars.len() {
                        continue;
                    }
                    word.push(c);
                    word.push(chars[k]);
                    k += 1;
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if k == chars.len() {
                        continue;
                    }
                    word.push(c);
                    word.push(chars[k]);
                    k += 1;
                    continue;
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `k=v k2="v 2"` or the legacy `k the rest`.
fn name_values(rest: &str, key: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{key} requires at least one argument"));
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_blank);
        let name = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .unwrap_or_default()
            .trim_start_matches(is_blank);
        if value.is_empty() {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![(name.to_string(), value.to_string())]);
    }
    let mut out = Vec::with_capacity(words.len());
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        if k.is_empty() {
            return Err(format!("{key} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Go's time.ParseDuration, in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    // Rounding is what Go does for fractional units such as 1.5ns.
    #[allow(clippy::cast_possible_truncation)]
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// go-units RAMInBytes: `64m`, `1g`, `512kb`, `1.5GiB`, plain bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let value: f64 = s[..num_len].parse().ok()?;
    let unit = s[num_len..].trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = value * mult;
    if bytes > u64::MAX as f64 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(bytes as u64)
}

/// Go encoding/csv for one record: `a,"b,c",d`.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("parse error: extraneous or missing \" in {s:?}")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(_) => return Err(format!("parse error: extraneous or missing \" in {s:?}")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(format!("parse error: bare \" in non-quoted field in {s:?}"))
                    }
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

/// Go's strconv.ParseBool.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn mount_type_name(t: MountType) -> &'static str {
    match t {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

/// One `--mount=` value, fields applied in order as BuildKit does (so `type=` should come
/// first: keys are checked against the type known so far).
fn parse_mount(value: &str, ssh_index: &mut usize) -> Result<RunMount, String> {
    let mut m = RunMount {
        typ: MountType::Bind,
        target: String::new(),
        source: None,
        from: None,
        id: None,
        sharing: None,
        readonly: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let fields = csv_fields(value).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut readonly: Option<bool> = None;
    for field in &fields {
        let unexpected = |key: &str, typ: MountType| {
            format!(
                "unexpected key '{key}' for mount type '{}'",
                mount_type_name(typ)
            )
        };
        let Some((key, v)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => readonly = Some(true),
                "readwrite" | "rw" => readonly = Some(false),
                "required" if matches!(m.typ, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => return Err(unexpected("required", m.typ)),
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let key = key.to_ascii_lowercase();
        let bool_value = || go_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"));
        match key.as_str() {
            "type" => {
                m.typ = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(with_suggestion(
                            format!("unsupported mount type {v:?}"),
                            v,
                            &["bind", "cache", "tmpfs", "secret", "ssh"],
                            true,
                        ))
                    }
                }
            }
            "from" => {
                if v.contains('$') {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .to_string(),
                    );
                }
                m.from = Some(v.to_string())
            }
            "source" | "src" => m.source = Some(v.to_string()),
            "target" | "dst" | "destination" => m.target = v.to_string(),
            "readonly" | "ro" => readonly = Some(bool_value()?),
            "readwrite" | "rw" => readonly = Some(!bool_value()?),
            "required" if matches!(m.typ, MountType::Secret | MountType::Ssh) => {
                m.required = bool_value()?
            }
            "required" => return Err(unexpected("required", m.typ)),
            "size" if m.typ == MountType::Tmpfs => {
                m.size = Some(parse_size(v).ok_or_else(|| format!("invalid value for size: {v}"))?)
            }
            "size" => return Err(unexpected("size", m.typ)),
            "env" if m.typ == MountType::Secret => m.env = Some(v.to_string()),
            "env" => return Err(unexpected("env", m.typ)),
            "id" => m.id = Some(v.to_string()),
            "sharing" => match v.to_ascii_lowercase().as_str() {
                s @ ("shared" | "private" | "locked") => m.sharing = Some(s.to_string()),
                _ => {
                    return Err(with_suggestion(
                        format!("unsupported sharing value {v:?}"),
                        v,
                        &["shared", "private", "locked"],
                        true,
                    ))
                }
            },
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(v, 8).map_err(|_| format!("invalid value {v} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for gid"))?,
                )
            }
            _ => {
                return Err(with_suggestion(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    &[
                        "type",
                        "from",
                        "source",
                        "target",
                        "readonly",
                        "id",
                        "sharing",
                        "required",
                        "mode",
                        "uid",
                        "gid",
                        "src",
                        "dst",
                        "ro",
                        "rw",
                        "readwrite",
                        "size",
                        "env",
                    ],
                    true,
                ))
            }
        }
    }
    let type_name = mount_type_name(m.typ);
    if !matches!(m.typ, MountType::Secret | MountType::Ssh | MountType::Cache) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!("{name} not allowed for {type_name:?} type mounts"));
            }
        }
    }
    m.readonly = readonly.unwrap_or(!matches!(m.typ, MountType::Cache | MountType::Tmpfs));
    if m.sharing.is_some() && m.typ != MountType::Cache {
        if m.typ == MountType::Secret {
            return Err("secret mount should not define sharing".to_string());
        }
        return Err(format!("invalid cache sharing set for {type_name} mount"));
    }
    match m.typ {
        MountType::Secret => {
            if m.from.is_some() {
                return Err("secret mount should not have a from".to_string());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".to_string());
            }
            if m.id.is_none() {
                m.id = m.source.clone().or_else(|| {
                    m.target
                        .rsplit('/')
                        .next()
                        .filter(|b| !b.is_empty())
                        .map(str::to_string)
                });
            }
            if m.target.is_empty() {
                match (&m.id, &m.env) {
                    (Some(id), _) => {
                        let base = id.rsplit('/').next().unwrap_or(id);
                        m.target = format!("/run/secrets/{base}");
                    }
                    (None, Some(_)) => {}
                    (None, None) => {
                        return Err("invalid secret mount. one of source, target required".into())
                    }
                }
            }
        }
        MountType::Ssh => {
            if m.id.is_none() {
                m.id = Some("default".to_string());
            }
            if m.target.is_empty() {
                m.target = format!("/run/buildkit/ssh_agent.{ssh_index}");
            }
            *ssh_index += 1;
        }
        _ => {
            if m.target.is_empty() {
                return Err("mount target is required (target=PATH)".to_string());
            }
        }
    }
    Ok(m)
}

/// BuildKit's "(did you mean x?)": the closest option within a Levenshtein distance of 2.
fn with_suggestion(message: String, value: &str, options: &[&str], case_sensitive: bool) -> String {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let val = fold(value);
    let mut best: Option<&str> = None;
    let mut min = 3;
    for opt in options {
        let o = fold(opt);
        if o == val {
            return message;
        }
        let d = levenshtein(&val, &o);
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    match best {
        None => message,
        Some(opt) => {
            let shown = if case_sensitive {
                opt.to_string()
            } else if value == value.to_ascii_lowercase() {
                opt.to_ascii_lowercase()
            } else if value == value.to_ascii_uppercase() {
                opt.to_ascii_uppercase()
            } else {
                opt.to_string()
            };
            format!("{message} (did you mean {shown}?)")
        }
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_heredoc_sources(words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|w| parse_heredoc_word(w).map_or_else(|| w.clone(), |(name, _, _)| name))
        .collect()
}

fn is_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

enum Parsed {
    From(From),
    Instr(Instruction),
}

const KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

fn flag_spec(keyword: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match keyword {
        "from" => &[("platform", Str)],
        "run" => &[("mount", Strs), ("network", Str)],
        "copy" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
        ],
        "add" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("checksum", Str),
            ("keep-git-dir", Bool),
        ],
        "healthcheck" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    }
}

fn parse_instruction(l: &Logical) -> Result<Parsed, String> {
    let (cmd, flag_words, rest) = split_command(&l.text);
    let kw = cmd.to_ascii_lowercase();
    if !KEYWORDS.contains(&kw.as_str()) {
        let names: Vec<String> = KEYWORDS.iter().map(|k| k.to_ascii_uppercase()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        return Err(with_suggestion(
            format!("unknown instruction: {cmd}"),
            &cmd,
            &names,
            false,
        ));
    }
    let upper = kw.to_ascii_uppercase();
    let flags = parse_flags(&flag_words, flag_spec(&kw))?;
    let at_least_one = || format!("{upper} requires at least one argument");
    let exactly_one = || format!("{upper} requires exactly one argument");
    let instr = match kw.as_str() {
        "from" => {
            let args = whitespace_words(&rest);
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_ascii_lowercase();
                    if !is_stage_name(&name) {
                        return Err(format!(
                            "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                            args[2]
                        ));
                    }
                    Some(name)
                }
                _ => return Err("FROM requires either one or three arguments".to_string()),
            };
            return Ok(Parsed::From(From {
                image: args[0].clone(),
                platform: flags.get("platform").map(str::to_string),
                name,
            }));
        }
        "run" => {
            let mut ssh_index = 0;
            let mounts = flags
                .all("mount")
                .map(|m| parse_mount(m, &mut ssh_index))
                .collect::<Result<Vec<_>, _>>()?;
            if rest.is_empty() {
                return Err(at_least_one());
            }
            let network = flags.get("network").map(str::to_string);
            if let Some(n) = &network {
                if !n.contains('$') && !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(format!("unsupported network mode {n:?}"));
                }
            }
            Instruction::Run(Run {
                command: maybe_json(&rest)?,
                heredocs: l.heredocs.clone(),
                mounts,
                network,
            })
        }
        "cmd" => Instruction::Cmd(maybe_json(&rest)?),
        "entrypoint" => Instruction::Entrypoint(maybe_json(&rest)?),
        "shell" => match parse_json(&rest) {
            _ if rest.is_empty() => return Err(at_least_one()),
            Json::Array(a) if a.is_empty() => return Err(at_least_one()),
            Json::Array(a) => Instruction::Shell(a),
            Json::NotStrings => return Err(NOT_STRINGS.to_string()),
            Json::Other => return Err("SHELL requires the arguments to be in JSON form".into()),
        },
        "label" => Instruction::Label(name_values(&rest, &upper, l.escape)?),
        "env" => Instruction::Env(name_values(&rest, &upper, l.escape)?),
        "expose" => {
            let ports = whitespace_words(&rest);
            if ports.is_empty() {
                return Err(at_least_one());
            }
            Instruction::Expose(ports)
        }
        "copy" | "add" => {
            let (args, _json) = maybe_json_list(&rest)?;
            if args.len() < 2 {
                return Err(format!(
                    "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
                ));
            }
            let (srcs, dest) = args.split_at(args.len() - 1);
            if parse_heredoc_word(&dest[0]).is_some() && !l.heredocs.is_empty() {
                return Err(format!("{upper} cannot accept a heredoc as a destination"));
            }
            let sources = if l.heredocs.is_empty() {
                srcs.to_vec()
            } else {
                parse_heredoc_sources(srcs)
            };
            let copy = Copy {
                sources,
                dest: dest[0].clone(),
                heredocs: l.heredocs.clone(),
                from: flags.get("from").map(str::to_string),
                chown: flags.get("chown").map(str::to_string),
                chmod: flags.get("chmod").map(str::to_string),
                link: flags.bool("link"),
                checksum: flags.get("checksum").map(str::to_string),
                keep_git_dir: flags.bool("keep-git-dir"),
            };
            if kw == "copy" {
                Instruction::Copy(copy)
            } else {
                Instruction::Add(copy)
            }
        }
        "volume" => {
            let (paths, _) = maybe_json_list(&rest)?;
            if paths.is_empty() {
                return Err(at_least_one());
            }
            let mut out = Vec::with_capacity(paths.len());
            for p in paths {
                let p = p.trim();
                if p.is_empty() {
                    return Err("VOLUME specified can not be an empty string".to_string());
                }
                out.push(p.to_string());
            }
            Instruction::Volume(out)
        }
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            if rest.is_empty() {
                return Err(exactly_one());
            }
            match kw.as_str() {
                "user" => Instruction::User(rest),
                "workdir" => Instruction::Workdir(rest),
                "stopsignal" => Instruction::StopSignal(rest),
                _ => Instruction::Maintainer(rest),
            }
        }
        "arg" => {
            let words = parse_words(&rest, l.escape);
            if words.is_empty() {
                return Err(at_least_one());
            }
            let mut args = Vec::with_capacity(words.len());
            for w in words {
                match w.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".to_string()),
                    Some((n, v)) => args.push((n.to_string(), Some(v.to_string()))),
                    None => args.push((w, None)),
                }
            }
            Instruction::Arg(args)
        }
        "onbuild" => {
            if rest.is_empty() {
                return Err(at_least_one());
            }
            let trigger = rest
                .split(is_blank)
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            // The trigger keeps its here-documents, so the child build can parse it again.
            let mut trigger_text = rest;
            for h in &l.heredocs {
                trigger_text.push('\n');
                trigger_text.push_str(&h.content);
                trigger_text.push_str(&h.name);
            }
            Instruction::Onbuild(trigger_text)
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(&rest, &flags)?),
        _ => return Err(format!("unknown instruction: {upper}")),
    };
    Ok(Parsed::Instr(instr))
}

fn parse_healthcheck(rest: &str, flags: &Flags) -> Result<Healthcheck, String> {
    let (typ, cmd) = match rest.find(char::is_whitespace) {
        Some(p) => (&rest[..p], rest[p..].trim_start()),
        None => (rest, ""),
    };
    if typ.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".to_string());
    }
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !cmd.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".to_string());
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            let test = match maybe_json(cmd)? {
                Command::Exec(a) if !a.is_empty() => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(a);
                    t
                }
                Command::Shell(s) if !s.is_empty() => vec!["CMD-SHELL".to_string(), s],
                _ => return Err("Missing command after HEALTHCHECK CMD".to_string()),
            };
            let duration = |name: &str| -> Result<Option<i64>, String> {
                let Some(v) = flags.get(name) else {
                    return Ok(None);
                };
                if v.is_empty() {
                    return Ok(None);
                }
                let d = parse_duration(v)
                    .ok_or_else(|| format!("time: invalid duration \"{v}\" for --{name}"))?;
                if d == 0 {
                    return Ok(None);
                }
                if d < 1_000_000 {
                    return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
                }
                Ok(Some(d))
            };
            let retries = match flags.get("retries") {
                None | Some("") => None,
                Some(v) => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("invalid value {v:?} for --retries"))?;
                    if n < 0 {
                        return Err(format!("--retries cannot be negative ({n})"));
                    }
                    (n != 0).then_some(n)
                }
            };
            Ok(Healthcheck::Check {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            })
        }
        _ => Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)")),
    }
}

fn build(lines: Lines) -> Result<Dockerfile, LineError> {
    if lines.instructions.is_empty() {
        return err(1, "file with no instructions");
    }
    let mut df = Dockerfile {
        syntax: lines.syntax,
        escape: lines.escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for l in &lines.instructions {
        let parsed = parse_instruction(l).map_err(|message| LineError {
            line: l.line,
            message,
        })?;
        let original = l.text.trim().to_string();
        match parsed {
            Parsed::From(from) => {
                if let Some(name) = &from.name {
                    if df.stages.iter().any(|s| s.name() == Some(name.as_str())) {
                        return err(l.line, format!("duplicate stage name {name:?}"));
                    }
                }
                df.stages.push(Stage {
                    index: df.stages.len(),
                    from: Spanned {
                        line: l.line,
                        original,
                        inner: from,
                    },
                    instructions: Vec::new(),
                });
            }
            Parsed::Instr(inner) => {
                let spanned = Spanned {
                    line: l.line,
                    original,
                    inner,
                };
                match df.stages.last_mut() {
                    Some(stage) => stage.instructions.push(spanned),
                    None if matches!(spanned.inner, Instruction::Arg(_)) => {
                        df.global_args.push(spanned)
                    }
                    None => {
                        return err(
                            l.line,
                            format!(
                                "no build stage in current context: {} before the first FROM",
                                spanned.inner.keyword()
                            ),
                        )
                    }
                }
            }
        }
    }
    if df.stages.is_empty() {
        return err(1, "dockerfile contains no stages to build");
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df(text: &str) -> Dockerfile {
        parse(text, "Dockerfile").unwrap_or_else(|e| panic!("parsing {text:?}: {e}"))
    }

    /// The instructions of the only stage of `FROM scratch\n<body>`.
    fn body(text: &str) -> Vec<Instruction> {
        let d = df(&format!("FROM scratch\n{text}"));
        d.stages[0]
            .instructions
            .iter()
            .map(|s| s.inner.clone())
            .collect()
    }

    fn one(text: &str) -> Instruction {
        let mut v = body(text);
        assert_eq!(v.len(), 1, "{text:?} gave {v:?}");
        v.remove(0)
    }

    fn fail(text: &str) -> ParseError {
        match parse(text, "Dockerfile") {
            Ok(d) => panic!("{text:?} parsed: {d:?}"),
            Err(e) => e,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn shell(c: &str) -> Command {
        Command::Shell(c.to_string())
    }

    fn exec(v: &[&str]) -> Command {
        Command::Exec(s(v))
    }

    fn run(i: Instruction) -> Run {
        match i {
            Instruction::Run(r) => r,
            other => panic!("not a RUN: {other:?}"),
        }
    }

    fn copy(i: Instruction) -> Copy {
        match i {
            Instruction::Copy(c) | Instruction::Add(c) => c,
            other => panic!("not a COPY/ADD: {other:?}"),
        }
    }

    #[test]
    fn commands_shell_and_exec_form() {
        let cases: &[(&str, Instruction)] = &[
            ("CMD echo hi", Instruction::Cmd(shell("echo hi"))),
            ("cmd   echo   hi  ", Instruction::Cmd(shell("echo   hi"))),
            (
                "CMD [\"echo\", \"hi\"]",
                Instruction::Cmd(exec(&["echo", "hi"])),
            ),
            ("CMD [ \"a\" ]  ", Instruction::Cmd(exec(&["a"]))),
            ("CMD []", Instruction::Cmd(exec(&[]))),
            ("CMD", Instruction::Cmd(shell(""))),
            // Invalid JSON falls back to the shell form, text kept as written.
            ("CMD [echo, hi]", Instruction::Cmd(shell("[echo, hi]"))),
            (
                "CMD ['echo', 'hi']",
                Instruction::Cmd(shell("['echo', 'hi']")),
            ),
            (
                "CMD [\"echo\" \"hi\"]",
                Instruction::Cmd(shell("[\"echo\" \"hi\"]")),
            ),
            (
                "CMD [\"unterminated\"",
                Instruction::Cmd(shell("[\"unterminated\"")),
            ),
            (
                "CMD [\"a\\tb\", \"\\u00e9\"]",
                Instruction::Cmd(exec(&["a\tb", "é"])),
            ),
            (
                "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
                Instruction::Entrypoint(exec(&["/bin/sh", "-c"])),
            ),
            (
                "Entrypoint top -b",
                Instruction::Entrypoint(shell("top -b")),
            ),
            (
                "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
                Instruction::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"])),
            ),
            (
                "RUN echo $HOME",
                Instruction::Run(Run {
                    command: shell("echo $HOME"),
                    heredocs: vec![],
                    mounts: vec![],
                    network: None,
                }),
            ),
            (
                "RUN [\"ls\", \"-l\"]",
                Instruction::Run(Run {
                    command: exec(&["ls", "-l"]),
                    heredocs: vec![],
                    mounts: vec![],
                    network: None,
                }),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text), want, "{text:?}");
        }
    }

    #[test]
    fn simple_instructions() {
        let cases: &[(&str, Instruction)] = &[
            ("USER app", Instruction::User("app".into())),
            ("USER 1000:1000", Instruction::User("1000:1000".into())),
            ("USER $U", Instruction::User("$U".into())),
            ("WORKDIR /app", Instruction::Workdir("/app".into())),
            (
                "WORKDIR \"/my dir\"",
                Instruction::Workdir("\"/my dir\"".into()),
            ),
            (
                "STOPSIGNAL SIGKILL",
                Instruction::StopSignal("SIGKILL".into()),
            ),
            (
                "MAINTAINER Jane Doe <jane@example.com>",
                Instruction::Maintainer("Jane Doe <jane@example.com>".into()),
            ),
            (
                "EXPOSE 80 443/tcp 53/udp",
                Instruction::Expose(s(&["80", "443/tcp", "53/udp"])),
            ),
            ("EXPOSE $PORT", Instruction::Expose(s(&["$PORT"]))),
            ("VOLUME /data", Instruction::Volume(s(&["/data"]))),
            ("VOLUME /a /b", Instruction::Volume(s(&["/a", "/b"]))),
            (
                "VOLUME [\"/a\", \" /b \"]",
                Instruction::Volume(s(&["/a", "/b"])),
            ),
            (
                "ONBUILD RUN echo hi",
                Instruction::Onbuild("RUN echo hi".into()),
            ),
            (
                "onbuild   COPY . /app",
                Instruction::Onbuild("COPY . /app".into()),
            ),
            ("ARG A", Instruction::Arg(vec![("A".into(), None)])),
            (
                "ARG A=1 B C=\"x y\"",
                Instruction::Arg(vec![
                    ("A".into(), Some("1".into())),
                    ("B".into(), None),
                    ("C".into(), Some("\"x y\"".into())),
                ]),
            ),
            (
                "ARG A=",
                Instruction::Arg(vec![("A".into(), Some(String::new()))]),
            ),
            (
                "ARG U=${X:-y}",
                Instruction::Arg(vec![("U".into(), Some("${X:-y}".into()))]),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text), want, "{text:?}");
        }
    }

    #[test]
    fn env_and_label() {
        let cases: &[(&str, Vec<(String, String)>)] = &[
            ("ENV A=1", kv(&[("A", "1")])),
            ("ENV A=1 B=2", kv(&[("A", "1"), ("B", "2")])),
            (
                "ENV A=\"x y\" B='z w'",
                kv(&[("A", "\"x y\""), ("B", "'z w'")]),
            ),
            ("ENV A=x\\ y", kv(&[("A", "x\\ y")])),
            ("ENV A=", kv(&[("A", "")])),
            ("ENV A=\"\"", kv(&[("A", "\"\"")])),
            ("ENV A=a=b", kv(&[("A", "a=b")])),
            ("ENV PATH=$PATH:/x", kv(&[("PATH", "$PATH:/x")])),
            // Legacy form: the rest of the line is the value, blanks kept.
            ("ENV A 1", kv(&[("A", "1")])),
            ("ENV A hello  world", kv(&[("A", "hello  world")])),
            ("ENV A x=y", kv(&[("A", "x=y")])),
            ("ENV A \"q\"", kv(&[("A", "\"q\"")])),
        ];
        for (text, want) in cases {
            assert_eq!(one(text), Instruction::Env(want.clone()), "{text:?}");
        }
        assert_eq!(
            one("LABEL a=b \"c d\"=\"e f\" version=1.0"),
            Instruction::Label(kv(&[
                ("a", "b"),
                ("\"c d\"", "\"e f\""),
                ("version", "1.0")
            ]))
        );
        assert_eq!(one("LABEL k v w"), Instruction::Label(kv(&[("k", "v w")])));
        assert_eq!(
            one("LABEL multi=1 \\\n      other=2"),
            Instruction::Label(kv(&[("multi", "1"), ("other", "2")]))
        );
    }

    #[test]
    fn from_lines_and_stages() {
        let d = df("ARG V=3.19\nARG REG\nFROM --platform=$BUILDPLATFORM alpine:$V AS Build\nRUN x\nfrom build as final\nCOPY --from=build /a /b\nFROM scratch\n");
        assert_eq!(d.global_args.len(), 2);
        assert_eq!(
            d.global_args[0].inner,
            Instruction::Arg(vec![("V".into(), Some("3.19".into()))])
        );
        assert_eq!(d.stages.len(), 3);
        let f = &d.stages[0].from;
        assert_eq!(f.inner.image, "alpine:$V");
        assert_eq!(f.inner.platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(f.inner.name.as_deref(), Some("build"));
        assert_eq!(f.line, 3);
        assert_eq!(
            f.original,
            "FROM --platform=$BUILDPLATFORM alpine:$V AS Build"
        );
        assert_eq!(d.stages[0].instructions.len(), 1);
        assert_eq!(d.stages[1].index, 1);
        assert_eq!(d.stages[1].name(), Some("final"));
        assert_eq!(d.stages[1].from.inner.image, "build");
        assert_eq!(d.stages[2].name(), None);
        assert_eq!(d.stages[2].instructions.len(), 0);
        assert_eq!(d.escape, '\\');
        assert_eq!(d.syntax, None);
        for name in ["a", "a1", "my-stage", "my_stage.2", "UPPER"] {
            let d = df(&format!("FROM x AS {name}"));
            assert_eq!(d.stages[0].name(), Some(name.to_ascii_lowercase().as_str()));
        }
    }

    #[test]
    fn run_flags_and_mounts() {
        let r = run(one("RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000 --network=none pip install x"));
        assert_eq!(r.command, shell("pip install x"));
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(
            r.mounts,
            vec![RunMount {
                typ: MountType::Cache,
                target: "/root/.cache".into(),
                source: None,
                from: None,
                id: Some("pip".into()),
                sharing: Some("locked".into()),
                readonly: false,
                mode: Some(0o700),
                uid: Some(1000),
                gid: Some(1000),
                size: None,
                required: false,
                env: None,
            }]
        );
        let r = run(one("RUN --mount=target=/src --mount=type=bind,from=build,source=/out,dst=/in,rw --mount=type=tmpfs,target=/tmp,size=64m make"));
        assert_eq!(r.mounts.len(), 3);
        assert_eq!(
            (
                r.mounts[0].typ,
                r.mounts[0].target.as_str(),
                r.mounts[0].readonly
            ),
            (MountType::Bind, "/src", true)
        );
        let m = &r.mounts[1];
        assert_eq!(
            (
                m.from.as_deref(),
                m.source.as_deref(),
                m.target.as_str(),
                m.readonly
            ),
            (Some("build"), Some("/out"), "/in", false)
        );
        assert_eq!(
            (r.mounts[2].typ, r.mounts[2].size),
            (MountType::Tmpfs, Some(64 << 20))
        );
        let r = run(one("RUN --mount=type=secret,id=tok --mount=type=secret,target=/etc/key,required --mount=type=ssh --mount=type=ssh,id=gh cat"));
        assert_eq!(
            (r.mounts[0].id.as_deref(), r.mounts[0].target.as_str()),
            (Some("tok"), "/run/secrets/tok")
        );
        assert_eq!(
            (r.mounts[1].id.as_deref(), r.mounts[1].required),
            (Some("key"), true)
        );
        assert_eq!(
            (r.mounts[2].id.as_deref(), r.mounts[2].target.as_str()),
            (Some("default"), "/run/buildkit/ssh_agent.0")
        );
        assert_eq!(r.mounts[3].target, "/run/buildkit/ssh_agent.1");
        let r = run(one("RUN --mount=\"type=bind,target=/a,source=x\" ls"));
        assert_eq!(r.mounts[0].source.as_deref(), Some("x"));
        let r = run(one("RUN --mount=type=cache,target=/c,ro=false,readonly ls"));
        assert!(r.mounts[0].readonly);
        // `--` ends the flags.
        assert_eq!(run(one("RUN -- --version")).command, shell("--version"));
        assert_eq!(run(one("RUN --network=host [\"a\"]")).command, exec(&["a"]));
        for (size, bytes) in [
            ("1024", 1024u64),
            ("1k", 1024),
            ("2KiB", 2048),
            ("1g", 1 << 30),
            ("1.5m", 3 << 19),
        ] {
            let r = run(one(&format!(
                "RUN --mount=type=tmpfs,target=/t,size={size} x"
            )));
            assert_eq!(r.mounts[0].size, Some(bytes), "{size}");
        }
    }

    #[test]
    fn copy_and_add() {
        let c = copy(one(
            "COPY --from=build --chown=app:app --chmod=0644 --link a b* /dst/",
        ));
        assert_eq!(c.sources, s(&["a", "b*"]));
        assert_eq!(c.dest, "/dst/");
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.chown.as_deref(), Some("app:app"));
        assert_eq!(c.chmod.as_deref(), Some("0644"));
        assert!(c.link);
        let c = copy(one("COPY --link=false [\"a b\", \"/c d/\"]"));
        assert_eq!(
            (c.sources, c.dest, c.link),
            (s(&["a b"]), "/c d/".to_string(), false)
        );
        let c = copy(one(
            "ADD --checksum=sha256:abc --keep-git-dir=true https://example.com/x.tar /x",
        ));
        assert!(matches!(one("ADD a b"), Instruction::Add(_)));
        assert_eq!(c.checksum.as_deref(), Some("sha256:abc"));
        assert!(c.keep_git_dir);
        assert_eq!(c.sources, s(&["https://example.com/x.tar"]));
        let c = copy(one("COPY --chown=\"a b\" x y"));
        assert_eq!(c.chown.as_deref(), Some("a b"));
    }

    #[test]
    fn healthcheck() {
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Instruction::Healthcheck(Healthcheck::None)
        );
        assert_eq!(
            one("healthcheck none"),
            Instruction::Healthcheck(Healthcheck::None)
        );
        assert_eq!(
            one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/"),
            Instruction::Healthcheck(Healthcheck::Check {
                test: s(&["CMD-SHELL", "curl -f http://localhost/"]),
                interval: Some(30_000_000_000),
                timeout: Some(90_000_000_000),
                start_period: Some(500_000_000),
                start_interval: Some(2_000_000_000),
                retries: Some(3),
            })
        );
        assert_eq!(
            one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]"),
            Instruction::Healthcheck(Healthcheck::Check {
                test: s(&["CMD", "/bin/check", "-q"]),
                interval: None,
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: None,
            })
        );
        let cases = [
            ("1h", 3_600_000_000_000i64),
            ("1.5s", 1_500_000_000),
            ("10ms", 10_000_000),
            ("2m3s", 123_000_000_000),
            ("1000us", 1_000_000),
            ("0", 0),
            ("-1s", -1_000_000_000),
        ];
        for (text, ns) in cases {
            assert_eq!(parse_duration(text), Some(ns), "{text}");
        }
        for bad in ["", "1", "s", "1x", "1.2.3s", "--1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn heredocs() {
        let r = run(one("RUN <<EOF\necho $HOME\n  indented\nEOF"));
        assert_eq!(r.command, shell("<<EOF"));
        assert_eq!(
            r.heredocs,
            vec![Heredoc {
                name: "EOF".into(),
                content: "echo $HOME\n  indented\n".into(),
                expand: true
            }]
        );
        let r = run(one("RUN <<-EOT bash\n\t\tone\n\ttwo\n\tEOT\n"));
        assert_eq!(r.command, shell("<<-EOT bash"));
        assert_eq!(r.heredocs[0].content, "one\ntwo\n");
        let r = run(one("RUN <<'EOF'\n$NOT\nEOF"));
        assert_eq!(
            (r.heredocs[0].name.as_str(), r.heredocs[0].expand),
            ("EOF", false)
        );
        let r = run(one("RUN <<\"EOF\"\n$NOT\nEOF"));
        assert!(!r.heredocs[0].expand);
        let r =
            run(body("RUN cat <<A >/a && cat <<B >/b\nfirst\nA\nsecond\nB\nRUN after").remove(0));
        assert_eq!(r.heredocs.len(), 2);
        assert_eq!(
            (r.heredocs[0].name.as_str(), r.heredocs[0].content.as_str()),
            ("A", "first\n")
        );
        assert_eq!(
            (r.heredocs[1].name.as_str(), r.heredocs[1].content.as_str()),
            ("B", "second\n")
        );
        // Body lines are taken raw: no comments, continuations or blank-line skipping.
        let r = run(one("RUN <<EOF\n# not a comment\n\nline \\\nEOF"));
        assert_eq!(r.heredocs[0].content, "# not a comment\n\nline \\\n");
        // Empty body.
        assert_eq!(run(one("RUN <<EOF\nEOF")).heredocs[0].content, "");
        let c = copy(one(
            "COPY --chmod=755 <<EOF /usr/local/bin/hello\n#!/bin/sh\necho hi\nEOF",
        ));
        assert_eq!(c.sources, s(&["EOF"]));
        assert_eq!(c.dest, "/usr/local/bin/hello");
        assert_eq!(c.heredocs[0].content, "#!/bin/sh\necho hi\n");
        let c = copy(one("COPY <<one <<two /dst/\n1\none\n2\ntwo"));
        assert_eq!(c.sources, s(&["one", "two"]));
        assert_eq!(c.heredocs.len(), 2);
        let c = copy(one("ADD <<EOF /x\ny\nEOF"));
        assert_eq!(c.heredocs[0].content, "y\n");
        // Not heredocs: exec form, other instructions, `<< EOF` with a blank.
        assert!(run(one("RUN [\"cat\", \"<<EOF\"]")).heredocs.is_empty());
        assert!(run(one("RUN echo << EOF")).heredocs.is_empty());
        assert_eq!(one("CMD cat <<EOF"), Instruction::Cmd(shell("cat <<EOF")));
        // Lines after the heredoc are instructions again, numbered right.
        let d = df("FROM scratch\nRUN <<EOF\na\nb\nEOF\nUSER x\n");
        assert_eq!(d.stages[0].instructions[1].line, 6);
        assert_eq!(
            parse_heredoc_word("<<E\"O\"F"),
            Some(("EOF".into(), false, false))
        );
        assert_eq!(
            parse_heredoc_word("<<-'X'"),
            Some(("X".into(), false, true))
        );
        assert_eq!(parse_heredoc_word("<<"), None);
        assert_eq!(parse_heredoc_word("<<<x"), None);
        assert_eq!(parse_heredoc_word("x<<EOF"), None);
    }

    #[test]
    fn lines_comments_continuations() {
        let text = "# a comment\n\nFROM scratch\n  # indented comment\nRUN echo a \\\n  # comment inside\n\n    b \\\n  c\n\tRUN   tab\r\nENV A=1 \\   \n B=2\n";
        let d = df(text);
        let ins = &d.stages[0].instructions;
        assert_eq!(ins.len(), 3);
        assert_eq!(
            ins[0].inner,
            Instruction::Run(Run {
                command: shell("echo a     b   c"),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
        assert_eq!(ins[0].line, 5);
        assert_eq!(ins[0].original, "RUN echo a     b   c");
        assert_eq!(ins[1].line, 10);
        assert_eq!(
            ins[1].inner,
            Instruction::Run(Run {
                command: shell("tab"),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
        assert_eq!(
            ins[2].inner,
            Instruction::Env(kv(&[("A", "1"), ("B", "2")]))
        );
        assert_eq!(ins[2].line, 11);
        // A continuation at the end of the file just ends the instruction.
        assert_eq!(
            one("RUN a \\"),
            Instruction::Run(Run {
                command: shell("a"),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
        // A `#` after the start of an instruction is not a comment.
        assert_eq!(
            one("RUN echo # hi"),
            Instruction::Run(Run {
                command: shell("echo # hi"),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
        // BOM.
        assert_eq!(df("\u{feff}FROM x").stages.len(), 1);
        // Instructions are case-insensitive.
        assert!(matches!(one("wOrKdIr /x"), Instruction::Workdir(_)));
    }

    #[test]
    fn directives() {
        let d = df("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM scratch\nRUN echo a `\n  b\nCOPY a\\b c\\d\n");
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.7"));
        assert_eq!(d.escape, '`');
        let ins = &d.stages[0].instructions;
        assert_eq!(
            ins[0].inner,
            Instruction::Run(Run {
                command: shell("echo a   b"),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
        assert_eq!(copy(ins[1].inner.clone()).sources, s(&["a\\b"]));
        // Case-insensitive, blanks around `=`.
        assert_eq!(df("#  ESCAPE = `\nFROM x").escape, '`');
        assert_eq!(df("#Syntax=a\nFROM x").syntax.as_deref(), Some("a"));
        // After a comment, a blank line or an instruction, directives are plain comments.
        for text in [
            "# hello\n# escape=`\nFROM x",
            "\n# escape=`\nFROM x",
            "FROM x\n# escape=`",
            "# unknown=1\n# escape=`\nFROM x",
        ] {
            assert_eq!(df(text).escape, '\\', "{text:?}");
        }
        assert_eq!(df("# check=skip=all\n# escape=`\nFROM x").escape, '`');
        assert_eq!(
            fail("# escape=x\nFROM x").message,
            "invalid escape token 'x' does not match ` or \\"
        );
        assert_eq!(
            fail("# escape=\\\n# escape=`\nFROM x").message,
            "only one escape parser directive can be used"
        );
        assert_eq!(fail("# escape=`\n# ESCAPE=`\nFROM x").line, 2);
    }

    #[test]
    fn errors_with_lines() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "the Dockerfile cannot be empty"),
            ("  \n\n", 1, "the Dockerfile cannot be empty"),
            ("# only a comment\n", 1, "file with no instructions"),
            ("ARG A\n", 1, "dockerfile contains no stages to build"),
            ("FROM x\nFOO bar", 2, "unknown instruction: FOO"),
            ("FROM x\nrunn echo", 2, "unknown instruction: runn (did you mean run?)"),
            ("FROM x\nCOPPY a b", 2, "unknown instruction: COPPY (did you mean COPY?)"),
            ("FROM x\nFrobnicate a", 2, "unknown instruction: Frobnicate"),
            ("FROM x\nCOPY --chmode=644 a b", 2, "unknown flag: --chmode (did you mean chmod?)"),
            ("FROM x\nRUN --mount=type=cahce,target=/x x", 2, "unsupported mount type \"cahce\" (did you mean cache?)"),
            ("FROM x\nRUN --mount=type=bind,target=/x,mode=0700 x", 2, "mode not allowed for \"bind\" type mounts"),
            ("FROM x\nRUN --mount=type=tmpfs,target=/x,uid=1 x", 2, "uid not allowed for \"tmpfs\" type mounts"),
            ("FROM x\nRUN --mount=type=tmpfs,target=/x,sharing=locked x", 2, "invalid cache sharing set for tmpfs mount"),
            ("FROM x\nRUN --mount=type=secret,id=a,sharing=locked x", 2, "secret mount should not define sharing"),
            ("FROM x\nRUN --mount=type=secret,id=a,from=b x", 2, "secret mount should not have a from"),
            ("FROM x\nRUN --mount=type=secret,id=a,source=b x", 2, "both source and id can't be set"),
            ("FROM x\nRUN --mount=type=bind,target=/x,from=$STAGE x", 2, "'from' doesn't support variable expansion"),
            ("FROM x\nRUN --mount=type=cache,target=/x,required x", 2, "unexpected key 'required' for mount type 'cache'"),
            ("FROM x\nRUN --mount=type=cache,target=/x,targt=/y x", 2, "unexpected key 'targt' in 'targt=/y' (did you mean target?)"),
            ("RUN echo\nFROM x", 1, "no build stage in current context"),
            ("ENV A=1\nFROM x", 1, "no build stage in current context"),
            ("FROM x\nRUN", 2, "RUN requires at least one argument"),
            ("FROM x\nRUN --network=none", 2, "RUN requires at least one argument"),
            ("FROM x\nENV", 2, "ENV requires at least one argument"),
            ("FROM x\nENV A", 2, "ENV must have two arguments"),
            ("FROM x\nENV A=1 B", 2, "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
            ("FROM x\nENV =1", 2, "ENV names can not be blank"),
            ("FROM x\nLABEL", 2, "LABEL requires at least one argument"),
            ("FROM x\nLABEL a", 2, "LABEL must have two arguments"),
            ("FROM x\nARG", 2, "ARG requires at least one argument"),
            ("FROM x\nARG =x", 2, "ARG names can not be blank"),
            ("FROM x\nEXPOSE", 2, "EXPOSE requires at least one argument"),
            ("FROM x\nVOLUME", 2, "VOLUME requires at least one argument"),
            ("FROM x\nVOLUME [\"\"]", 2, "VOLUME specified can not be an empty string"),
            ("FROM x\nUSER", 2, "USER requires exactly one argument"),
            ("FROM x\nWORKDIR", 2, "WORKDIR requires exactly one argument"),
            ("FROM x\nSTOPSIGNAL", 2, "STOPSIGNAL requires exactly one argument"),
            ("FROM x\nMAINTAINER", 2, "MAINTAINER requires exactly one argument"),
            ("FROM x\nCOPY a", 2, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("FROM x\nADD", 2, "ADD requires at least two arguments"),
            ("FROM x\nCOPY <<EOF <<A\nx\nEOF\ny\nA", 2, "COPY cannot accept a heredoc as a destination"),
            ("FROM x\nSHELL", 2, "SHELL requires at least one argument"),
            ("FROM x\nSHELL []", 2, "SHELL requires at least one argument"),
            ("FROM x\nSHELL /bin/sh -c", 2, "SHELL requires the arguments to be in JSON form"),
            ("FROM x\nSHELL [\"sh\", 1]", 2, "arrays must be comprised of strings only"),
            ("FROM x\nCMD [\"a\", 1]", 2, "arrays must be comprised of strings only"),
            ("FROM x\nONBUILD", 2, "ONBUILD requires at least one argument"),
            ("FROM x\nONBUILD ONBUILD RUN x", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
            ("FROM x\nONBUILD from y", 2, "FROM isn't allowed as an ONBUILD trigger"),
            ("FROM x\nONBUILD MAINTAINER me", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
            ("FROM x\nHEALTHCHECK", 2, "HEALTHCHECK requires at least one argument"),
            ("FROM x\nHEALTHCHECK NONE x", 2, "HEALTHCHECK NONE takes no arguments"),
            ("FROM x\nHEALTHCHECK CMD", 2, "Missing command after HEALTHCHECK CMD"),
            ("FROM x\nHEALTHCHECK RUN x", 2, "Unknown type \"RUN\" in HEALTHCHECK (try CMD)"),
            ("FROM x\nHEALTHCHECK --interval=1us CMD x", 2, "Interval \"interval\" cannot be less than 1ms"),
            ("FROM x\nHEALTHCHECK --timeout=-1s CMD x", 2, "cannot be less than 1ms"),
            ("FROM x\nHEALTHCHECK --interval=soon CMD x", 2, "invalid duration"),
            ("FROM x\nHEALTHCHECK --retries=-1 CMD x", 2, "--retries cannot be negative (-1)"),
            ("FROM x\nHEALTHCHECK --retries=x CMD x", 2, "invalid value"),
            ("FROM", 1, "FROM requires either one or three arguments"),
            ("FROM a b", 1, "FROM requires either one or three arguments"),
            ("FROM a AS b c", 1, "FROM requires either one or three arguments"),
            ("FROM a IS b", 1, "FROM requires either one or three arguments"),
            ("FROM a AS 1st", 1, "invalid name for build stage: \"1st\""),
            ("FROM a AS my/stage", 1, "invalid name for build stage"),
            ("FROM a AS b\nFROM c AS B", 2, "duplicate stage name \"b\""),
            ("FROM --foo=bar x", 1, "unknown flag: --foo"),
            ("FROM x\nRUN --foo echo", 2, "unknown flag: --foo"),
            ("FROM x\nCOPY --checksum=x a b", 2, "unknown flag: --checksum"),
            ("FROM x\nADD --from=y a b", 2, "unknown flag: --from"),
            ("FROM x\nCMD --help", 2, "unknown flag: --help"),
            ("FROM x\nCOPY --from a b", 2, "missing a value on flag: --from"),
            ("FROM x\nCOPY --from=a --from=b a b", 2, "duplicate flag specified: --from"),
            ("FROM x\nCOPY --link=maybe a b", 2, "expecting boolean value for flag --link, not: maybe"),
            ("FROM x\nCOPY --link= a b", 2, "missing a value on flag: --link"),
            ("FROM x\nRUN --network=bridge x", 2, "unsupported network mode \"bridge\""),
            ("FROM x\nRUN --mount=type=nfs,target=/x x", 2, "unsupported mount type \"nfs\""),
            ("FROM x\nRUN --mount=type=cache x", 2, "mount target is required"),
            ("FROM x\nRUN --mount=type=cache,target=/x,bogus=1 x", 2, "unexpected key 'bogus' in 'bogus=1'"),
            ("FROM x\nRUN --mount=type=cache,target=/x,what x", 2, "invalid field 'what' must be a key=value pair"),
            ("FROM x\nRUN --mount=type=cache,target=/x,sharing=all x", 2, "unsupported sharing value \"all\""),
            ("FROM x\nRUN --mount=type=cache,target=/x,mode=999 x", 2, "invalid value 999 for mode"),
            ("FROM x\nRUN --mount=type=cache,target=/x,uid=me x", 2, "invalid value me for uid"),
            ("FROM x\nRUN --mount=type=tmpfs,target=/x,size=lots x", 2, "invalid value for size: lots"),
            ("FROM x\nRUN --mount=type=bind,target=/x,size=1 x", 2, "unexpected key 'size' for mount type 'bind'"),
            ("FROM x\nRUN --mount=type=secret x", 2, "one of source, target required"),
            ("FROM x\nRUN --mount=type=cache,target=/x,ro=perhaps x", 2, "invalid value for ro: perhaps"),
            ("FROM x\nRUN --mount=type=cache,target=/x\\\"y ls", 2, "bare \" in non-quoted field"),
            ("FROM x\nRUN --mount=\\\"type=cache,target=/x\\\"y ls", 2, "extraneous or missing \""),
            ("FROM x\nRUN --mount=\"type=cache x", 2, "unsupported mount type \"cache x\""),
            ("FROM x\nRUN <<EOF\nno end\n", 2, "unterminated heredoc EOF"),
            ("FROM x\nRUN ok\nCOPY <<A <<B /d\na\nA\nb\n", 3, "unterminated heredoc B"),
        ];
        for (text, line, msg) in cases {
            let e = fail(text);
            assert!(
                e.message.contains(msg),
                "{text:?}: got {:?}, wanted {msg:?}",
                e.message
            );
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert_eq!(e.file, "Dockerfile");
        }
        let e = fail("FROM x\n\n\nXYZZY");
        assert_eq!(e.to_string(), "Dockerfile:4: unknown instruction: XYZZY");
    }

    #[test]
    fn flag_extraction() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("--a=1 --b rest", "rest", &["--a=1", "--b"]),
            ("rest --a", "rest --a", &[]),
            ("--a='x y' z", "z", &["--a=x y"]),
            ("--a=\"x y\" z", "z", &["--a=x y"]),
            ("--a=x\\ y z", "z", &["--a=x y"]),
            ("-- --b", " --b", &[]),
            ("--a", "", &["--a"]),
            ("-a", "-a", &[]),
            ("", "", &[]),
        ];
        for (line, rest, flags) in cases {
            let (r, f) = extract_flags(line);
            assert_eq!((r, f), (*rest, s(flags)), "{line:?}");
        }
        assert_eq!(
            parse_words("a=\"b c\" d\\ e 'f g'", '\\'),
            s(&["a=\"b c\"", "d\\ e", "'f g'"])
        );
        assert_eq!(parse_words("a\\", '\\'), s(&["a"]));
        assert_eq!(parse_words("\"\" x", '\\'), s(&["\"\"", "x"]));
    }

    #[test]
    fn docker_parser_corners() {
        // An escaped escape at the end of a line is not a continuation.
        let ins = body("RUN echo a\\\\\nRUN echo b");
        assert_eq!(ins.len(), 2);
        assert_eq!(run(ins[0].clone()).command, shell("echo a\\\\"));
        // A lone escape on a line continues.
        assert_eq!(run(one("RUN a \\\n\\\n b")).command, shell("a  b"));
        // `3<<EOF` is a here-document too.
        let r = run(one("RUN cat 3<<EOF\nx\nEOF"));
        assert_eq!(r.heredocs[0].name, "EOF");
        // ONBUILD keeps the here-document in its trigger text.
        let ins = body("ONBUILD RUN <<EOF\necho hi\nEOF\nUSER x");
        assert_eq!(
            ins[0],
            Instruction::Onbuild("RUN <<EOF\necho hi\nEOF".into())
        );
        assert_eq!(ins[1], Instruction::User("x".into()));
        // Read-only defaults: bind/secret/ssh read-only, cache/tmpfs writable.
        let r = run(one("RUN --mount=type=secret,id=s --mount=type=ssh --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --mount=target=/b x"));
        let ro: Vec<bool> = r.mounts.iter().map(|m| m.readonly).collect();
        assert_eq!(ro, [true, true, false, false, true]);
        // Fields apply in order; type may come anywhere before the keys that need it.
        let r = run(one("RUN --mount=target=/t,type=tmpfs,size=1k x"));
        assert_eq!(r.mounts[0].size, Some(1024));
        let r = run(one(
            "RUN --mount=type=secret,id=tok,env=TOKEN,required=true x",
        ));
        assert_eq!(
            (r.mounts[0].env.as_deref(), r.mounts[0].required),
            (Some("TOKEN"), true)
        );
        // Flags on instructions without flags are refused, as Docker does.
        assert_eq!(fail("FROM x\nENTRYPOINT --x").message, "unknown flag: --x");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }

    #[test]
    fn originals_and_serde() {
        let d = df("FROM alpine\nRUN apk add \\\n    curl\nONBUILD RUN make\n");
        assert_eq!(d.stages[0].instructions[0].original, "RUN apk add     curl");
        assert_eq!(d.stages[0].instructions[1].original, "ONBUILD RUN make");
        assert_eq!(d.stages[0].instructions[0].inner.keyword(), "RUN");
        let json = serde_json::to_string(&d).expect("serialize");
        let back: Dockerfile = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, d);
    }
}
