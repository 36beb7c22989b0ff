//! Docker's word processing at dispatch time: quotes, escapes and `$var` substitution.
//!
//! This follows the shell lexer of Docker's Dockerfile frontend, which is a small subset of
//! POSIX sh: no command substitution, no globbing, no arithmetic. Unquoted results of `$v` are
//! split into words by [`expand_words`] (EXPOSE, VOLUME...), quoted ones are not.

/// A word that could not be expanded (unterminated quote, bad `${...}`, `${v:?msg}` unset).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WordError(pub String);

/// Expands one raw word: removes quotes, applies `escape`, substitutes `$v`, `${v}`,
/// `${v:-x}`, `${v-x}`, `${v:+x}`, `${v+x}`, `${v:?msg}` from `lookup`; unset names become "".
/// Also `${v#pat}`, `${v##pat}`, `${v%pat}`, `${v%%pat}`, `${v/pat/rep}`, `${v//pat/rep}`
/// (patterns with `*` and `?`) as Docker does. Errors read like BuildKit's:
/// `failed to process "${A:?}": A: is not allowed to be empty`.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let (result, _) = Lexer::new(word, escape, lookup, Mode::Word).run(word)?;
    Ok(result)
}

/// Splits a raw string into words on unquoted whitespace, then expands each (EXPOSE, VOLUME,
/// the shell-form of instructions whose arguments are lists).
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    let (_, words) = Lexer::new(text, escape, lookup, Mode::Word).run(text)?;
    Ok(words)
}

/// Expands the body of a here-document whose delimiter was not quoted (`COPY <<EOF`) the way
/// BuildKit does: `$` substitutions, quotes stay as written, and the escape char still escapes
/// the next char and is dropped (`\$HOME` gives `$HOME`, but `\n` gives `n` too, unlike sh).
/// BuildKit uses `\` here whatever the `# escape=` directive says: pass `'\\'` to match it.
pub fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let (result, _) = Lexer::new(body, escape, lookup, Mode::Heredoc).run(body)?;
    Ok(result)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Word,
    Heredoc,
}

/// Words being assembled: unquoted blanks split, quoted text never does.
#[derive(Debug, Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    mode: Mode,
    /// Keep escapes in the result (pattern words of `${v#p}`, `${v/p/r}`), as BuildKit does.
    raw_escapes: bool,
}

fn bad(msg: impl Into<String>) -> WordError {
    WordError(msg.into())
}

/// BuildKit wraps every lexer error with the word being processed.
fn wrap(word: &str, e: WordError) -> WordError {
    WordError(format!("failed to process {word:?}: {}", e.0))
}

impl<'a> Lexer<'a> {
    fn new(
        text: &str,
        escape: char,
        lookup: &'a dyn Fn(&str) -> Option<String>,
        mode: Mode,
    ) -> Lexer<'a> {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            mode,
            raw_escapes: false,
        }
    }

    fn run(&mut self, text: &str) -> Result<(String, Vec<String>), WordError> {
        self.process_until(None, false).map_err(|e| wrap(text, e))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end; returns the joined result and the words.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), WordError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), WordError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' if self.mode == Mode::Word => {
                    let value = self.single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' if self.mode == Mode::Word => {
                    let value = self.double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    if self.raw_escapes {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                    match self.next() {
                        None => break,
                        Some(n) => {
                            words.add_raw_char(n);
                            result.push(n);
                        }
                    }
                }
                c => {
                    self.pos += 1;
                    words.add_char(c);
                    result.push(c);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(bad(format!(
                "unexpected end of statement while looking for matching {stop}"
            )));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            // A trailing escape inside an unterminated quote: the error follows.
                            None => continue,
                            // Only these are escaped inside double quotes; others stay as-is.
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            Some(_) if self.raw_escapes => {}
                            Some(_) => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    /// A name after `$`: letters, digits and `_`; or a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The rest of a `${...}` up to `stop`; running out of input is a missing `stop_name`.
    fn modifier_word(
        &mut self,
        stop: char,
        raw_escapes: bool,
        missing: &str,
    ) -> Result<String, WordError> {
        match self.process_until(Some(stop), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(bad(missing.to_string())),
            Err(e) => Err(e),
        }
    }

    fn dollar(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(bad("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(bad("syntax error: bad substitution")),
            _ => {}
        }
        let name = self.name();
        let missing = "syntax error: missing '}'";
        let mut op = self.next();
        let mut shown = op.map(String::from).unwrap_or_default();
        let null_is_unset = op == Some(':');
        match op {
            Some('}') => return Ok(self.get(&name).unwrap_or_default()),
            Some('/') => return self.substitute(&name),
            Some(':') => {
                op = self.next();
                if let Some(c) = op {
                    shown.push(c);
                }
            }
            Some('+' | '-' | '?' | '#' | '%') => {}
            None => return Err(bad(missing)),
            Some(_) => {
                return Err(bad(format!(
                    "unsupported modifier ({shown}) in substitution"
                )))
            }
        }
        let raw = matches!(op, Some('#' | '%'));
        let word = self.modifier_word('}', raw, missing)?;
        let value = self.get(&name);
        let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
        match op {
            Some('-') => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if unset { String::new() } else { word }),
            Some('?') => match value {
                None => Err(bad(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                ))),
                Some(v) if null_is_unset && v.is_empty() => Err(bad(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    }
                ))),
                Some(v) => Ok(v),
            },
            Some(c @ ('#' | '%')) => {
                let (longest, pattern) = match word.strip_prefix(c) {
                    Some(p) => (true, p.to_string()),
                    None => (false, word),
                };
                let pat = compile_pattern(&pattern)?;
                let value = value.unwrap_or_default();
                Ok(trim_pattern(&value, &pat, c == '#', longest))
            }
            _ => Err(bad(format!(
                "unsupported modifier ({shown}) in substitution"
            ))),
        }
    }

    /// `${v/pattern/replacement}` and `${v//pattern/replacement}`.
    fn substitute(&mut self, name: &str) -> Result<String, WordError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self.modifier_word('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.modifier_word('}', true, "syntax error: missing '}'")?;
        let pat = compile_pattern(&pattern)?;
        let value: Vec<char> = self.get(name).unwrap_or_default().chars().collect();
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= value.len() {
            let Some((start, end)) = find(&pat, &value, search) else {
                break;
            };
            out.extend(&value[last_end..start]);
            // Go never replaces an empty match right after another match.
            if end > last_end || start == 0 {
                out.push_str(&replacement);
            }
            last_end = end;
            search = if end > search { end } else { search + 1 };
            if !all {
                break;
            }
        }
        out.extend(&value[last_end..]);
        Ok(out)
    }
}

/// A shell pattern of `${v#p}` and `${v/p/r}`: `*`, `?`, and `\` escaping `*`, `?`, `\`
/// (`\}` and `\/` stand for themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatTok {
    Lit(char),
    Star,
    One,
}

fn compile_pattern(pattern: &str) -> Result<Vec<PatTok>, WordError> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(PatTok::Star),
            '?' => out.push(PatTok::One),
            '\\' => match chars.next() {
                Some(n @ ('*' | '?' | '\\' | '}' | '/')) => out.push(PatTok::Lit(n)),
                Some(n) => {
                    return Err(bad(format!(
                        "invalid pattern ({pattern}) in substitution: invalid escape '\\{n}'"
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "invalid pattern ({pattern}) in substitution: trailing escape"
                    )))
                }
            },
            c => out.push(PatTok::Lit(c)),
        }
    }
    Ok(out)
}

/// Memo of (pattern position, text position) states known to fail: a state fails the same
/// way whatever led to it, so remembering failures keeps backtracking polynomial even for
/// patterns like `*a*a*a*b`.
struct Failed {
    width: usize,
    seen: Vec<bool>,
}

impl Failed {
    fn new(pat: &[PatTok], s: &[char]) -> Failed {
        Failed {
            width: s.len() + 1,
            seen: vec![false; (pat.len() + 1) * (s.len() + 1)],
        }
    }
    fn get(&self, p: usize, i: usize) -> bool {
        self.seen[p * self.width + i]
    }
    fn set(&mut self, p: usize, i: usize) {
        self.seen[p * self.width + i] = true;
    }
}

/// End of a match of `pat[p..]` starting exactly at `i`, stars greedy (longest first), as a
/// backtracking regex engine would pick it.
fn match_at(pat: &[PatTok], p: usize, s: &[char], i: usize, failed: &mut Failed) -> Option<usize> {
    if failed.get(p, i) {
        return None;
    }
    let found = match pat.get(p) {
        None => Some(i),
        Some(PatTok::Lit(c)) if s.get(i) == Some(c) => match_at(pat, p + 1, s, i + 1, failed),
        Some(PatTok::One) if i < s.len() => match_at(pat, p + 1, s, i + 1, failed),
        Some(PatTok::Lit(_) | PatTok::One) => None,
        Some(PatTok::Star) => (i..=s.len())
            .rev()
            .find_map(|j| match_at(pat, p + 1, s, j, failed)),
    };
    if found.is_none() {
        failed.set(p, i);
    }
    found
}

/// Leftmost match at or after `from`.
fn find(pat: &[PatTok], s: &[char], from: usize) -> Option<(usize, usize)> {
    let mut failed = Failed::new(pat, s);
    (from..=s.len()).find_map(|i| match_at(pat, 0, s, i, &mut failed).map(|end| (i, end)))
}

/// `${v#pat}` / `${v##pat}` / `${v%pat}` / `${v%%pat}`: removes the shortest or longest prefix
/// (or suffix) matching the pattern. A suffix is a prefix of the reversed value for the
/// reversed pattern.
fn trim_pattern(value: &str, pat: &[PatTok], prefix: bool, longest: bool) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let mut pat = pat.to_vec();
    if !prefix {
        chars.reverse();
        pat.reverse();
    }
    let ends = prefix_match_ends(&pat, &chars);
    let cut = if longest {
        ends.iter().rposition(|&e| e)
    } else {
        ends.iter().position(|&e| e)
    };
    let Some(cut) = cut else {
        return value.to_string();
    };
    let mut rest: Vec<char> = chars[cut..].to_vec();
    if !prefix {
        rest.reverse();
    }
    rest.into_iter().collect()
}

/// For each length `l`, whether `pat` matches exactly `s[..l]` (a set-of-states simulation,
/// linear in pattern × text).
fn prefix_match_ends(pat: &[PatTok], s: &[char]) -> Vec<bool> {
    let mut at = vec![false; s.len() + 1];
    at[0] = true;
    for tok in pat {
        let mut next = vec![false; s.len() + 1];
        match tok {
            PatTok::Star => {
                if let Some(first) = at.iter().position(|&b| b) {
                    next[first..].iter_mut().for_each(|b| *b = true);
                }
            }
            PatTok::One => {
                next[1..].copy_from_slice(&at[..s.len()]);
            }
            PatTok::Lit(c) => {
                for i in 0..s.len() {
                    next[i + 1] = at[i] && s[i] == *c;
                }
            }
        }
        at = next;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "B" => Some("b b".into()),
            "EMPTY" => Some(String::new()),
            "PATH" => Some("/usr/bin:/bin".into()),
            "FILE" => Some("dir/sub/name.tar.gz".into()),
            "_x1" => Some("under".into()),
            "Ü" => Some("unicode".into()),
            _ => None,
        }
    }

    fn ex(word: &str) -> Result<String, WordError> {
        expand(word, '\\', &env)
    }

    #[test]
    fn expand_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("", ""),
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y", "xay"),
            ("$A$A", "aa"),
            ("$Ab", ""),
            ("${A}b", "ab"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$_x1", "under"),
            ("$Ü", "unicode"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"${A}\"", "a"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("'a\\b'", "a\\b"),
            ("\"a\\b\"", "a\\b"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("a\\\\b", "a\\b"),
            ("trailing\\", "trailing"),
            ("\"it's\"", "it's"),
            ("'say \"hi\"'", "say \"hi\""),
            ("a'b'c\"d\"e", "abcde"),
            ("$", "$"),
            ("a$", "a$"),
            ("$ a", "$ a"),
            ("$/x", "$/x"),
            ("$.", "$."),
            ("$1", ""),
            ("$12x", "x"),
            ("$@", ""),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${A:-def}", "a"),
            ("${UNSET-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${A-def}", "a"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${A+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-$A}", "a"),
            ("${UNSET:-${A}x}", "ax"),
            ("${UNSET:-'q $A'}", "q $A"),
            ("${UNSET:-a b}", "a b"),
            ("${A:?must}", "a"),
            ("${EMPTY?must}", ""),
            ("${PATH}:/sbin", "/usr/bin:/bin:/sbin"),
            ("${FILE#*/}", "sub/name.tar.gz"),
            ("${FILE##*/}", "name.tar.gz"),
            ("${FILE%.*}", "dir/sub/name.tar"),
            ("${FILE%%.*}", "dir/sub/name"),
            ("${FILE#nomatch}", "dir/sub/name.tar.gz"),
            ("${UNSET##*/}", ""),
            ("\"$B\"", "b b"),
            ("$B", "b b"),
            ("${FILE/sub/SUB}", "dir/SUB/name.tar.gz"),
            ("${FILE//a/A}", "dir/sub/nAme.tAr.gz"),
            ("${FILE/a/A}", "dir/sub/nAme.tar.gz"),
            ("${FILE/*./X}", "Xgz"),
            ("${FILE/n?me/N}", "dir/sub/N.tar.gz"),
            ("${PATH//:/ }", "/usr/bin /bin"),
            ("${B// /_}", "b_b"),
            ("${A//x*/y}", "a"),
            ("${UNSET/a/b}", ""),
            ("${A/a/$PATH}", "/usr/bin:/bin"),
            ("${FILE#*\\/}", "sub/name.tar.gz"),
            ("${A#\\*}", "a"),
            ("${A:-\\}}", "a"),
            ("${UNSET:-\\}}", "}"),
            ("${UNSET:-\"q\"}", "q"),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input).as_deref(), Ok(*want), "expanding {input:?}");
        }
    }

    #[test]
    fn expand_errors() {
        let cases: &[(&str, &str)] = &[
            ("'open", "single-quote"),
            ("\"open", "double-quote"),
            ("\"open\\", "double-quote"),
            ("${A", "missing '}'"),
            ("${", "missing '}'"),
            ("${}", "bad substitution"),
            ("${:-x}", "bad substitution"),
            ("${{A}}", "bad substitution"),
            ("${A:-x", "missing '}'"),
            ("${A x}", "unsupported modifier"),
            ("${A:=x}", "unsupported modifier"),
            ("${A:=x}", "unsupported modifier (:=) in substitution"),
            ("${A:x}", "unsupported modifier (:x) in substitution"),
            ("${A/x", "missing '/' in ${}"),
            ("${A/x/y", "missing '}'"),
            ("${A#\\q}", "invalid escape '\\q'"),
            ("${A:-'x}", "missing '}'"),
            ("${UNSET:?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${UNSET:?set it please}", "UNSET: set it please"),
            ("${UNSET?need $A}", "UNSET: need a"),
        ];
        for (input, want) in cases {
            match ex(input) {
                Err(WordError(msg)) => {
                    assert!(msg.contains(want), "{input:?}: {msg:?}");
                    assert!(
                        msg.starts_with(&format!("failed to process {input:?}: ")),
                        "{msg}"
                    );
                }
                Ok(v) => panic!("{input:?} expanded to {v:?}, wanted an error"),
            }
        }
    }

    #[test]
    fn patterns_do_not_backtrack_exponentially() {
        let long = "a".repeat(400);
        let lookup = |n: &str| (n == "L").then(|| long.clone());
        let stars = "*a".repeat(12);
        let got = expand(&format!("${{L/{stars}b/x}}"), '\\', &lookup).expect("expand");
        assert_eq!(got, long);
        let got = expand(&format!("${{L%%{stars}b}}"), '\\', &lookup).expect("expand");
        assert_eq!(got, long);
        let got = expand(&format!("${{L##{stars}}}"), '\\', &lookup).expect("expand");
        assert_eq!(got, "");
    }

    #[test]
    fn backtick_escape() {
        let e = |w: &str| expand(w, '`', &env);
        assert_eq!(e("C:\\dir").as_deref(), Ok("C:\\dir"));
        assert_eq!(e("`$A").as_deref(), Ok("$A"));
        assert_eq!(e("a` b").as_deref(), Ok("a b"));
        assert_eq!(e("\"`\"\"").as_deref(), Ok("\""));
        assert_eq!(e("\"\\$A\"").as_deref(), Ok("\\a"));
    }

    #[test]
    fn words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("80", &["80"]),
            ("80 443/tcp  53/udp", &["80", "443/tcp", "53/udp"]),
            ("\t a \t b \t", &["a", "b"]),
            ("$A $A", &["a", "a"]),
            ("$B", &["b", "b"]),
            ("\"$B\"", &["b b"]),
            ("'$B'", &["$B"]),
            ("x$B", &["xb", "b"]),
            ("\"a b\" c", &["a b", "c"]),
            ("a\\ b c", &["a b", "c"]),
            ("$UNSET", &[]),
            ("a $UNSET b", &["a", "b"]),
            ("\"\"", &[]),
            ("${UNSET:-/data /logs}", &["/data", "/logs"]),
            ("/var/$A/log", &["/var/a/log"]),
        ];
        for (input, want) in cases {
            let got = expand_words(input, '\\', &env).expect(input);
            assert_eq!(got, *want, "splitting {input:?}");
        }
        assert!(expand_words("\"open", '\\', &env).is_err());
    }

    #[test]
    fn heredoc_table() {
        let cases: &[(&str, &str)] = &[
            ("hello $A\n", "hello a\n"),
            ("'$A' \"$A\"\n", "'a' \"a\"\n"),
            ("\\$A\n", "$A\n"),
            ("a\\\\b\n", "a\\b\n"),
            // BuildKit drops the escape before any char, newline included.
            ("a\\nb\n", "anb\n"),
            ("line \\\njoined\n", "line \njoined\n"),
            ("\"$A\" '\\$A'\n", "\"a\" '$A'\n"),
            ("${UNSET:-dflt}\n", "dflt\n"),
            ("$ alone $\n", "$ alone $\n"),
            ("it's fine\n", "it's fine\n"),
            ("end\\", "end"),
        ];
        for (input, want) in cases {
            assert_eq!(
                expand_heredoc(input, '\\', &env).as_deref(),
                Ok(*want),
                "heredoc {input:?}"
            );
        }
        assert!(expand_heredoc("${A", '\\', &env).is_err());
    }
}
