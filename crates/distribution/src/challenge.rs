//! Parsing of `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="…",service="…"`, `Basic
//! realm="…"`, several challenges in one header, quoted values with commas and escapes inside.

use std::collections::BTreeMap;

/// Errors from parsing a challenge header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("parse www-authenticate {header:?}: {reason}")]
    Syntax {
        header: String,
        reason: &'static str,
    },
}

/// One authentication challenge: the scheme (lowercased) and its parameters (keys lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start_matches([' ', '\t']).len();
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    /// A token, or a token68 when `token68` (allows trailing '=' and '/').
    fn token(&mut self, token68: bool) -> &'a str {
        let r = self.rest();
        let end = r
            .find(|c: char| !(is_tchar(c) || (token68 && c == '/')))
            .unwrap_or(r.len());
        self.pos += end;
        &r[..end]
    }
    fn quoted(&mut self) -> Option<String> {
        // Caller has consumed the opening quote.
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Some(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => return None,
                },
                c => out.push(c),
            }
        }
        None
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges.
pub fn parse(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let err = |reason| ChallengeError::Syntax {
        header: header.to_string(),
        reason,
    };
    let mut lx = Lexer { s: header, pos: 0 };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        lx.skip_ws();
        while lx.eat(',') {
            lx.skip_ws();
        }
        if lx.peek().is_none() {
            break;
        }
        let scheme = lx.token(false);
        if scheme.is_empty() {
            return Err(err("expected an authentication scheme"));
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // Parameters: name=value pairs separated by commas, until a token not followed by '='
        // (which starts the next challenge).
        loop {
            lx.skip_ws();
            let save = lx.pos;
            let name = lx.token(true);
            if name.is_empty() {
                if lx.eat(',') {
                    continue;
                }
                if lx.peek().is_none() {
                    break;
                }
                return Err(err("unexpected character"));
            }
            lx.skip_ws();
            let at_end = |lx: &Lexer<'_>| lx.peek().is_none_or(|c| c == ',');
            if !lx.eat('=') {
                if ch.params.is_empty() && at_end(&lx) {
                    // `Scheme token68`
                    ch.params.insert(String::new(), name.to_string());
                    continue;
                }
                // The start of the next challenge.
                lx.pos = save;
                break;
            }
            if lx.peek() == Some('=') || (ch.params.is_empty() && at_end(&lx)) {
                // token68 with '=' padding, such as `Negotiate abc==`
                let mut t = format!("{name}=");
                while lx.eat('=') {
                    t.push('=');
                }
                ch.params.insert(String::new(), t);
                continue;
            }
            lx.skip_ws();
            let value = if lx.eat('"') {
                lx.quoted()
                    .ok_or_else(|| err("unterminated quoted string"))?
            } else {
                let v = lx.token(false);
                if v.is_empty() {
                    return Err(err("missing parameter value"));
                }
                v.to_string()
            };
            ch.params.insert(name.to_ascii_lowercase(), value);
            lx.skip_ws();
            if !lx.eat(',') {
                if lx.peek().is_none() {
                    break;
                }
                // A space-separated next challenge without a comma is not valid; be lenient and
                // let the outer loop read it as a new scheme.
                if lx.peek().is_some_and(is_tchar) {
                    break;
                }
                return Err(err("expected ',' between parameters"));
            }
        }
        out.push(ch);
    }
    if out.is_empty() {
        return Err(err("empty header"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_scope_containing_commas() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        let c = parse(h).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:library/busybox:pull,push")
        );
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let c = parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));

        let c = parse(r#"Basic realm="a, b", Bearer realm="http://x/token", service=reg"#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a, b"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("reg"));
    }

    #[test]
    fn escapes_spaces_and_case() {
        let c = parse(r#"BEARER  Realm = "a\"b\\c" ,  Service="s""#).unwrap();
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some(r#"a"b\c"#));
        assert_eq!(c[0].param("service"), Some("s"));
    }

    #[test]
    fn bare_scheme_and_token68() {
        let c = parse("Basic").unwrap();
        assert_eq!(c[0].scheme, "basic");
        assert!(c[0].params.is_empty());
        let c = parse("Negotiate abc/def==").unwrap();
        assert_eq!(c[0].param(""), Some("abc/def=="));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for h in [
            "",
            "   ",
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="#,
            "Bearer realm=\"x\" ; junk",
            "=",
            "Bearer ,,, realm=\"é\"",
            "\u{1F600}",
            r#"Bearer realm="a\"#,
        ] {
            let _ = parse(h);
        }
        assert!(parse("").is_err());
        assert!(parse(r#"Bearer realm="x"#).is_err());
    }
}
