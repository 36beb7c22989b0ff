//! Docker's word processing at dispatch time: quotes, escapes and `$var` substitution.

/// A word that could not be expanded (unterminated quote, bad `${...}`, `${v:?msg}` unset).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WordError(pub String);

/// Expands one raw word: removes quotes, applies `escape`, substitutes `$v`, `${v}`,
/// `${v:-x}`, `${v-x}`, `${v:+x}`, `${v+x}`, `${v:?msg}` from `lookup`; unset names become "".
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let _ = (escape, lookup);
    Err(WordError(format!("cannot expand {word:?} yet")))
}

/// Splits a raw string into words on unquoted whitespace, then expands each (EXPOSE, VOLUME,
/// the shell-form of instructions whose arguments are lists).
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    let _ = (text, escape, lookup);
    Err(WordError("not written yet".into()))
}
