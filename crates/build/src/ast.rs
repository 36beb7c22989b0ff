//! A parsed Dockerfile. Plain data: the parser fills it, the builder walks it.
//!
//! Words that Docker expands at dispatch time (`$v`, `${v:-x}`, quotes, escapes) are kept raw
//! here, exactly as written; the builder passes them through [`crate::words::expand`] with the
//! stage's ARG/ENV values in scope, because the values depend on what ran before.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dockerfile {
    /// `# syntax=` directive, if any (recorded, not acted on).
    pub syntax: Option<String>,
    /// `# escape=` directive; `\` by default.
    pub escape: char,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines only).
    pub global_args: Vec<Spanned<Instruction>>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// 0-based position among the stages.
    pub index: usize,
    pub from: Spanned<From>,
    /// The instructions after FROM (never a From).
    pub instructions: Vec<Spanned<Instruction>>,
}

impl Stage {
    /// `AS name`, lower-cased as Docker does.
    pub fn name(&self) -> Option<&str> {
        self.from.inner.name.as_deref()
    }
}

/// An instruction with where it came from, for error messages and history entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spanned<T> {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction as written, continuations joined (for history `created_by` and cache keys).
    pub original: String,
    pub inner: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct From {
    /// Raw image word (may hold `$ARG`), or `scratch`, or a stage name.
    pub image: String,
    /// Raw `--platform=` value.
    pub platform: Option<String>,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
}

/// Shell form (a string run through SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Instruction {
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    /// Raw key/value words, quotes still in place.
    Label(Vec<(String, String)>),
    /// Raw words like `80`, `53/udp`, `$PORT`.
    Expose(Vec<String>),
    /// Raw key/value words (both `ENV k v` and `ENV k=v ...` syntaxes end up here).
    Env(Vec<(String, String)>),
    Add(Copy),
    Copy(Copy),
    /// Raw paths (JSON array or space separated).
    Volume(Vec<String>),
    /// Raw `user[:group]`.
    User(String),
    /// Raw path.
    Workdir(String),
    /// Name and raw default value.
    Arg(Vec<(String, Option<String>)>),
    /// The trigger instruction text, e.g. `RUN echo hi` (stored in the image config as written).
    Onbuild(String),
    /// Raw signal word.
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// Exec-form array (SHELL only accepts JSON).
    Shell(Vec<String>),
    /// Deprecated, still accepted: sets the image's author.
    Maintainer(String),
}

impl Instruction {
    /// The keyword, upper case (`RUN`, `COPY`...).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A here-document attached to RUN or COPY/ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The delimiter word without quotes or `-`.
    pub name: String,
    /// The body, lines joined with `\n`, ending with `\n`; leading tabs already removed for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted: no variable expansion in the body.
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub command: Command,
    /// Here-documents in order; for `RUN <<EOF` the first one is the script itself.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<RunMount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One `--mount=` of RUN; fields as BuildKit names them, raw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMount {
    pub typ: MountType,
    pub target: String,
    pub source: Option<String>,
    /// Stage name/index or image to take `source` from (bind, cache).
    pub from: Option<String>,
    /// Cache id (defaults to target).
    pub id: Option<String>,
    /// `shared` (default), `private`, `locked`.
    pub sharing: Option<String>,
    pub readonly: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// secret/ssh `required`: fail when the secret or agent is missing.
    #[serde(default)]
    pub required: bool,
    /// secret `env=NAME`: expose the secret as an environment variable too.
    #[serde(default)]
    pub env: Option<String>,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Copy {
    /// Raw source words (paths, globs, URLs for ADD, or heredoc names).
    pub sources: Vec<String>,
    /// Raw destination word.
    pub dest: String,
    /// Here-documents named by `sources` (`COPY <<EOF /dst`).
    pub heredocs: Vec<Heredoc>,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    /// Raw `--chown=user[:group]`.
    pub chown: Option<String>,
    /// Raw `--chmod=` (octal).
    pub chmod: Option<String>,
    pub link: bool,
    /// ADD `--keep-git-dir`, `--checksum=` (ADD of URLs) kept for completeness.
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir` (git URLs keep their `.git`).
    #[serde(default)]
    pub keep_git_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the inherited check.
    None,
    Check {
        /// `["CMD", args...]` or `["CMD-SHELL", "cmd"]`, as stored in the image config.
        test: Vec<String>,
        /// Durations in nanoseconds; None when not given (inherit Docker's defaults).
        interval: Option<i64>,
        timeout: Option<i64>,
        start_period: Option<i64>,
        start_interval: Option<i64>,
        retries: Option<i64>,
    },
}
