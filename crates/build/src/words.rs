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
/// Also `${v#pat}`, `${v##pat}`, `${v%pat}`, `${v%%pat}` (with `*` and `?`) as Docker does.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let mut lexer = Lexer::new(word, escape, lookup, Mode::Word);
    let (result, _) = lexer.process_until(None)?;
    Ok(result)
}

/// Splits a raw string into words on unquoted whitespace, then expands each (EXPOSE, VOLUME,
/// the shell-form of instructions whose arguments are lists).
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    let mut lexer = Lexer::new(text, escape, lookup, Mode::Word);
    let (_, words) = lexer.process_until(None)?;
    Ok(words)
}

/// Expands the body of a here-document whose delimiter was not quoted (`COPY <<EOF`): only `$`
/// substitutions; quotes stay as written; the escape char only escapes `$`, itself and a
/// newline (which it removes), as in a shell here-document.
pub fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let mut lexer = Lexer::new(body, escape, lookup, Mode::Heredoc);
    let (result, _) = lexer.process_until(None)?;
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
}

fn bad(msg: impl Into<String>) -> WordError {
    WordError(msg.into())
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
        }
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
    fn process_until(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), WordError> {
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
                    match (self.mode, self.next()) {
                        (_, None) => {
                            if self.mode == Mode::Heredoc {
                                result.push(c);
                            }
                            break;
                        }
                        (Mode::Heredoc, Some('\n')) => {}
                        (Mode::Heredoc, Some(n)) if n != '$' && n != self.escape => {
                            result.push(c);
                            result.push(n);
                        }
                        (_, Some(n)) => {
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
            if stop == '}' {
                return Err(bad("syntax error: missing '}'"));
            }
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
                        match self.peek() {
                            // A trailing escape inside an unterminated quote: the error follows.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
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
        let modifier = self.next();
        let value = self.get(&name);
        match modifier {
            None => Err(bad("syntax error: missing '}'")),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let op = self.next();
                let word = self.modifier_word()?;
                let empty = value.as_deref().is_none_or(str::is_empty);
                match op {
                    Some('-') => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if empty { String::new() } else { word }),
                    Some('?') if empty => Err(bad(format!(
                        "{name}: {}",
                        if word.is_empty() {
                            "is not allowed to be empty"
                        } else {
                            &word
                        }
                    ))),
                    Some('?') => Ok(value.unwrap_or_default()),
                    Some(c) => Err(bad(format!("unsupported modifier ({c}) in substitution"))),
                    None => Err(bad("syntax error: missing '}'")),
                }
            }
            Some('-') => {
                let word = self.modifier_word()?;
                Ok(value.unwrap_or(word))
            }
            Some('+') => {
                let word = self.modifier_word()?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('?') => {
                let word = self.modifier_word()?;
                match value {
                    Some(v) => Ok(v),
                    None => Err(bad(format!(
                        "{name}: {}",
                        if word.is_empty() {
                            "is not allowed to be unset"
                        } else {
                            &word
                        }
                    ))),
                }
            }
            Some(op @ ('#' | '%')) => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pattern = self.modifier_word()?;
                let value = value.unwrap_or_default();
                Ok(trim_pattern(&value, &pattern, op == '#', longest))
            }
            Some(c) => Err(bad(format!("unsupported modifier ({c}) in substitution"))),
        }
    }

    /// The word of a `${name<op>word}` up to its `}`, itself expanded.
    fn modifier_word(&mut self) -> Result<String, WordError> {
        let (word, _) = self.process_until(Some('}'))?;
        Ok(word)
    }
}

/// `${v#pat}` / `${v##pat}` / `${v%pat}` / `${v%%pat}`: removes the shortest or longest prefix
/// (or suffix) matching a pattern with `*` and `?`.
fn trim_pattern(value: &str, pattern: &str, prefix: bool, longest: bool) -> String {
    let pat: Vec<char> = pattern.chars().collect();
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let cuts: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new((0..=n).rev())
    } else {
        Box::new(0..=n)
    };
    for len in cuts {
        let (part, rest) = if prefix {
            (&chars[..len], &chars[len..])
        } else {
            (&chars[n - len..], &chars[..n - len])
        };
        if glob(&pat, part) {
            return rest.iter().collect();
        }
    }
    value.to_string()
}

fn glob(pat: &[char], s: &[char]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
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
            ("${A/x/y}", "unsupported modifier"),
            ("${UNSET:?}", "UNSET: is not allowed to be empty"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${UNSET:?set it please}", "UNSET: set it please"),
            ("${UNSET?need $A}", "UNSET: need a"),
        ];
        for (input, want) in cases {
            match ex(input) {
                Err(WordError(msg)) => assert!(msg.contains(want), "{input:?}: {msg:?}"),
                Ok(v) => panic!("{input:?} expanded to {v:?}, wanted an error"),
            }
        }
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
            ("a\\nb\n", "a\\nb\n"),
            ("line \\\njoined\n", "line joined\n"),
            ("${UNSET:-dflt}\n", "dflt\n"),
            ("$ alone $\n", "$ alone $\n"),
            ("it's fine\n", "it's fine\n"),
            ("end\\", "end\\"),
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
