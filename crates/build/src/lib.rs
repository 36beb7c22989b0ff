//! The Dockerfile builder.
//!
//! [`ast`] holds the parsed form of a Dockerfile (plain data), [`parser`] turns text into it,
//! [`words`] expands `$var` words the way Docker does at dispatch time, [`ignore`] applies
//! `.dockerignore` patterns.

pub mod ast;
#[cfg(feature = "engine")]
pub mod engine;
pub mod ignore;
pub mod parser;
pub mod words;

#[cfg(test)]
mod tests {
    /// Random inputs built from the characters every module treats specially: whatever the
    /// input, the parser, the lexer and the matcher return a value or an error, never panic.
    #[test]
    fn no_input_panics() {
        const PIECES: &[&str] = &[
            "\\",
            "`",
            "\"",
            "'",
            "$",
            "{",
            "}",
            ":",
            "-",
            "+",
            "?",
            "#",
            "%",
            "/",
            "*",
            "[",
            "]",
            "^",
            "!",
            "<<",
            "<<-",
            "3<<",
            "EOF",
            "\n",
            "\r\n",
            " ",
            "\t",
            "=",
            ",",
            "RUN ",
            "FROM x\n",
            "COPY ",
            "ADD ",
            "ENV ",
            "ARG ",
            "LABEL ",
            "HEALTHCHECK ",
            "ONBUILD ",
            "SHELL ",
            "CMD ",
            "--mount=",
            "type=",
            "--",
            "[\"",
            "\"]",
            "é",
            "ß",
            "a",
            "0",
            "**",
            "# escape=`\n",
            "# syntax=x\n",
            "\u{feff}",
            ".",
            "..",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let lookup = |name: &str| (name.len() % 2 == 0).then(|| format!("v{name}"));
        for _ in 0..3000 {
            let len = next() % 24;
            let mut text = String::new();
            for _ in 0..len {
                let i = usize::try_from(next() % PIECES.len() as u64).unwrap_or(0);
                text.push_str(PIECES[i]);
            }
            let _ = crate::parser::parse(&text, "Dockerfile");
            let _ = crate::parser::parse(&format!("FROM x\n{text}"), "Dockerfile");
            for escape in ['\\', '`'] {
                let _ = crate::words::expand(&text, escape, &lookup);
                let _ = crate::words::expand_words(&text, escape, &lookup);
                let _ = crate::words::expand_heredoc(&text, escape, &lookup);
            }
            let ignore = crate::ignore::DockerIgnore::parse(&text);
            let _ = crate::ignore::DockerIgnore::try_parse(&text);
            for path in ["a", "a/b", "x/y/z.go", &text] {
                let _ = ignore.is_excluded(path);
                let _ = ignore.may_include_below(path);
                let _ = ignore.cli_descends_into(path);
            }
        }
    }
}
