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
