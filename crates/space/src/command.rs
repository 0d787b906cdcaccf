//! Command templates: the sweep file's `command` list expanded into the argv vector of one run.
//!
//! The expansion produces a `Vec<String>` that is handed to the operating system as is: nothing
//! ever goes through a shell, so a parameter value such as `a b; rm -rf /` reaches the training
//! script as one argument, byte for byte.
//!
//! # Macros
//!
//! A list item of `command` may contain the following macros (W&B's set). "Embeddable" macros
//! may appear inside a longer item (`--config=${args_json_file}`, `${envvar:HOME}/data`); the
//! others expand to zero or more separate arguments and must be a list item on their own.
//!
//! | Macro | Expands to | Embeddable |
//! |---|---|---|
//! | `${env}` | `/usr/bin/env`; on Windows nothing (the item is dropped) | yes |
//! | `${interpreter}` | the interpreter: [`CommandContext::interpreter`], by default [`DEFAULT_INTERPRETER`] (`python3`) | yes |
//! | `${program}` | the sweep's `program`; an error if none is configured | yes |
//! | `${args}` | `--name=value` per parameter | no |
//! | `${args_no_equals}` | `--name`, `value` (two arguments) per parameter | no |
//! | `${args_no_hyphens}` | `name=value` per parameter | no |
//! | `${args_no_boolean_flags}` | like `${args}`, but a boolean parameter gives `--name` when true and nothing when false | no |
//! | `${args_append_hydra}` | `+name=value` per parameter (Hydra: append a key) | no |
//! | `${args_override_hydra}` | `++name=value` per parameter (Hydra: add or override a key) | no |
//! | `${args_json}` | one argument: every parameter as a JSON object, nested parameters re-nested ([`args_json`]) | yes |
//! | `${args_json_file}` | one argument: the path of a file holding that JSON ([`CommandContext::args_json_file`]) | yes |
//! | `${envvar:NAME}` | the value of the environment variable `NAME`; an error if it is unset | yes |
//!
//! The args macros write one flag per top-level key of the run's config, in the order of its
//! first parameter (the sweep file's order), as W&B's agent does: a block of nested parameters
//! is one flag holding the block as a Python dict (`--optimizer={'lr': 0.01, 'nadam': {'beta':
//! 0.9}}`), which a script written for W&B reads with `type=str` and then takes from
//! `wandb.config`; a top-level name with a dot in it (`model.lr`) is a flag of its own. Write
//! `--optimizer.lr=${optimizer.lr}` for one flag per nested leaf. Values are written as
//! Python's `str()` writes them ([`python_str`]),
//! because W&B's agent builds the flags with Python f-strings: `True`, `False`, `None`, `1e-05`,
//! `1.0`, `[1, 'a']`. A script written for W&B therefore sees the same argv under hyperdial.
//!
//! A `$` not followed by `{` is an ordinary character. `$${` stands for a literal `${`.
//!
//! # Parameters by name, and other `${...}`
//!
//! - `${name}`, where `name` is a parameter of the sweep (dotted for a nested one:
//!   `${optimizer.lr}`), is replaced by the run's value of that parameter, alone or inside an
//!   item: `--lr=${lr}` gives `--lr=0.01`. W&B passes such an item literally, so a script
//!   written this way receives the text `${lr}` there; substitution is what its author meant.
//!   [`check_template`] reports it as a warning, being a difference from W&B.
//! - A name one typo away from a macro (`${argss}`, `${PROGRAM}`, `${envar:HOME}`) is an
//!   error with a suggestion.
//! - Any other `${...}` is passed through unchanged, as W&B does: a Hydra interpolation such
//!   as `hydra.run.dir=out/${now:%H-%M}` reaches the program as written. When it is a whole
//!   item, W&B drops the item; hyperdial keeps it, with a warning.
//!
//! # Defaults
//!
//! Without a `command`, a sweep runs [`DEFAULT_COMMAND`], `${env} ${interpreter} ${program}
//! ${args}`, i.e. `/usr/bin/env python3 train.py --lr=0.01 --batch_size=32`.
//!
//! # Differences from W&B
//!
//! - W&B substitutes a macro only when it is the whole list item (`${envvar:…}` excepted);
//!   hyperdial also substitutes the single-valued macros inside an item.
//! - W&B passes `${name}` of a parameter literally; hyperdial substitutes the value.
//! - W&B drops a list item that is an unknown `${...}`; hyperdial keeps it unchanged, and
//!   rejects one that is a near-miss of a macro name, suggesting the macro.
//! - W&B keeps an item with a multi-argument macro embedded in it (`--x=${args}`) literally;
//!   hyperdial rejects it.
//! - W&B replaces an unset `${envvar:NAME}` by `NAME` itself; hyperdial reports an error.
//! - W&B recognizes only upper-case `${envvar:NAME}` names (`[A-Z0-9_]*`, empty allowed);
//!   hyperdial accepts letters of either case, digits and `_`, and rejects an empty name.
//! - `${interpreter}` is `python` in W&B and `python3` in hyperdial (settable per sweep).
//! - `$${` for a literal `${` is a hyperdial addition.
//! - A missing `program` or a command expanding to no arguments is an error up front rather than
//!   a failure to start the process.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::diagnostic::{did_you_mean, Severity};

/// W&B's default command template, used when a sweep has no `command`.
pub const DEFAULT_COMMAND: [&str; 4] = ["${env}", "${interpreter}", "${program}", "${args}"];

/// The interpreter substituted for `${interpreter}` unless the sweep sets `interpreter`
/// (W&B uses `python`).
pub const DEFAULT_INTERPRETER: &str = "python3";

/// Every macro name, without `${` and `}`. `envvar` is written `${envvar:NAME}`.
pub const MACROS: &[&str] = &[
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_equals",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
    "envvar",
];

/// What `${env}` expands to outside Windows.
const ENV_PROGRAM: &str = "/usr/bin/env";

/// One parameter value of a run, as the command template sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arg<'a> {
    /// Dotted flag name: `optimizer.lr` for `lr` nested under `optimizer`.
    pub name: &'a str,
    /// The nesting, used to rebuild the JSON object: `["optimizer", "lr"]` for a nested
    /// parameter, `["model.lr"]` for a top-level key that itself contains a dot. An empty path
    /// means the single top-level key `name`.
    pub path: &'a [String],
    /// The value.
    pub value: &'a Value,
}

/// Everything the macros of a template can refer to.
pub struct CommandContext<'a> {
    /// The sweep's `program`, substituted for `${program}`.
    pub program: Option<&'a str>,
    /// Substituted for `${interpreter}`; normally the sweep's `interpreter` or
    /// [`DEFAULT_INTERPRETER`].
    pub interpreter: &'a str,
    /// The run's parameters, in the order the args macros emit them.
    pub args: &'a [Arg<'a>],
    /// Where the caller writes [`args_json`]`(args)`, substituted for `${args_json_file}`.
    pub args_json_file: Option<&'a Path>,
    /// Environment lookup for `${envvar:NAME}`; pass `&|name| std::env::var(name).ok()` for the
    /// real environment.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

impl fmt::Debug for CommandContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandContext")
            .field("program", &self.program)
            .field("interpreter", &self.interpreter)
            .field("args", &self.args)
            .field("args_json_file", &self.args_json_file)
            .finish_non_exhaustive()
    }
}

/// A problem in a command template that is visible without any parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateIssue {
    /// Whether the template is rejected ([`Severity::Error`]) or only differs from what W&B
    /// would do with it ([`Severity::Warning`]).
    pub severity: Severity,
    /// Index of the offending list item in `command`.
    pub index: usize,
    /// What is wrong, e.g. ``unknown macro ${argss}``.
    pub message: String,
    /// How to fix it, e.g. ``did you mean ${args}?``.
    pub hint: Option<String>,
}

impl fmt::Display for TemplateIssue {
    /// `command[3]: unknown macro ${argss}; did you mean ${args}?`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command[{}]: {}", self.index, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Why a command template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A static problem, as reported by [`check_template`].
    #[error("{0}")]
    Template(TemplateIssue),
    /// `${program}` is used but no (or an empty) program is configured.
    #[error(
        "command[{index}]: ${{program}} is used but the sweep has no program; \
         set `program:` in the sweep file or remove ${{program}} from `command`"
    )]
    MissingProgram {
        /// Index of the list item using `${program}`.
        index: usize,
    },
    /// `${interpreter}` is used but the interpreter is empty.
    #[error(
        "command[{index}]: ${{interpreter}} is used but the interpreter is empty; \
         set `interpreter:` (e.g. `python3`) or remove ${{interpreter}} from `command`"
    )]
    EmptyInterpreter {
        /// Index of the list item using `${interpreter}`.
        index: usize,
    },
    /// `${args_json_file}` is used but the caller provided no file path.
    #[error(
        "command[{index}]: ${{args_json_file}} is used but no path for the JSON file was provided"
    )]
    MissingArgsJsonFile {
        /// Index of the list item using `${args_json_file}`.
        index: usize,
    },
    /// The `${args_json_file}` path cannot be passed as a UTF-8 argument.
    #[error("command[{index}]: the ${{args_json_file}} path {path:?} is not valid UTF-8; use a UTF-8 directory")]
    ArgsJsonFileNotUtf8 {
        /// Index of the list item using `${args_json_file}`.
        index: usize,
        /// The offending path, lossily converted.
        path: String,
    },
    /// `${envvar:NAME}` names a variable that is not set.
    #[error(
        "environment variable {name} is not set (command[{index}]); \
         set it in the agent's environment or remove ${{envvar:{name}}} from `command`"
    )]
    EnvVarNotSet {
        /// Index of the list item using the variable.
        index: usize,
        /// The variable's name.
        name: String,
    },
    /// The template expanded to no arguments at all.
    #[error(
        "the command expands to no arguments at all; add the program to run to `command` \
         (or omit `command` to use `${{env}} ${{interpreter}} ${{program}} ${{args}}`)"
    )]
    Empty,
    /// The first argument, the executable, expanded to an empty string.
    #[error("command[{index}]: the executable (the first argument) expands to an empty string")]
    EmptyExecutable {
        /// Index of the list item that produced the first argument.
        index: usize,
    },
}

/// The multi-argument macros: one (or two) arguments per parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStyle {
    Args,
    NoEquals,
    NoHyphens,
    NoBooleanFlags,
    AppendHydra,
    OverrideHydra,
}

impl ListStyle {
    fn name(self) -> &'static str {
        match self {
            ListStyle::Args => "args",
            ListStyle::NoEquals => "args_no_equals",
            ListStyle::NoHyphens => "args_no_hyphens",
            ListStyle::NoBooleanFlags => "args_no_boolean_flags",
            ListStyle::AppendHydra => "args_append_hydra",
            ListStyle::OverrideHydra => "args_override_hydra",
        }
    }

    /// Append this style's arguments for `args` to `out`: one flag per top-level key of the
    /// run's config, as W&B's agent builds them from the config it hands the run, so a block
    /// of nested parameters is one flag holding the dict (`--optimizer={'lr': 0.01}`).
    fn emit(self, args: &[Arg<'_>], out: &mut Vec<String>) {
        for (name, node) in top_level(args) {
            let value = match &node {
                Node::Leaf(value) => python_str(value),
                Node::Branch(children) => {
                    let mut dict = String::new();
                    write_branch(children, Style::Python, &mut dict);
                    dict
                }
            };
            match self {
                ListStyle::Args => out.push(format!("--{name}={value}")),
                ListStyle::NoEquals => {
                    out.push(format!("--{name}"));
                    out.push(value);
                }
                ListStyle::NoHyphens => out.push(format!("{name}={value}")),
                ListStyle::NoBooleanFlags => match node {
                    Node::Leaf(Value::Bool(true)) => out.push(format!("--{name}")),
                    Node::Leaf(Value::Bool(false)) => {}
                    _ => out.push(format!("--{name}={value}")),
                },
                ListStyle::AppendHydra => out.push(format!("+{name}={value}")),
                ListStyle::OverrideHydra => out.push(format!("++{name}={value}")),
            }
        }
    }
}

/// A recognized macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Macro<'t> {
    Env,
    Interpreter,
    Program,
    ArgsJson,
    ArgsJsonFile,
    EnvVar(&'t str),
    List(ListStyle),
}

impl Macro<'_> {
    /// The name as listed in [`MACROS`].
    fn name(self) -> &'static str {
        match self {
            Macro::Env => "env",
            Macro::Interpreter => "interpreter",
            Macro::Program => "program",
            Macro::ArgsJson => "args_json",
            Macro::ArgsJsonFile => "args_json_file",
            Macro::EnvVar(_) => "envvar",
            Macro::List(style) => style.name(),
        }
    }

    fn from_name(name: &str) -> Option<Macro<'_>> {
        Some(match name {
            "env" => Macro::Env,
            "interpreter" => Macro::Interpreter,
            "program" => Macro::Program,
            "args_json" => Macro::ArgsJson,
            "args_json_file" => Macro::ArgsJsonFile,
            "args" => Macro::List(ListStyle::Args),
            "args_no_equals" => Macro::List(ListStyle::NoEquals),
            "args_no_hyphens" => Macro::List(ListStyle::NoHyphens),
            "args_no_boolean_flags" => Macro::List(ListStyle::NoBooleanFlags),
            "args_append_hydra" => Macro::List(ListStyle::AppendHydra),
            "args_override_hydra" => Macro::List(ListStyle::OverrideHydra),
            _ => {
                let var = name.strip_prefix("envvar:")?;
                Macro::EnvVar(var)
            }
        })
    }
}

/// A piece of a list item: literal text or a macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'t> {
    Text(&'t str),
    Macro(Macro<'t>),
    /// `${name}` of a parameter: its value.
    Param(&'t str),
}

/// One problem found in a list item: severity, message, hint.
type ItemIssue = (Severity, String, Option<String>);

/// A list item split into pieces, with the problems found on the way.
struct ParsedItem<'t> {
    pieces: Vec<Piece<'t>>,
    issues: Vec<ItemIssue>,
}

/// Split one list item into literal text, macros and parameter references; `params` are the
/// names `${name}` may refer to.
fn parse_item<'t>(item: &'t str, params: &[&str]) -> ParsedItem<'t> {
    let mut pieces = Vec::new();
    let mut issues = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < item.len() {
        let rest = &item[i..];
        if rest.starts_with("$${") {
            push_text(&mut pieces, &item[literal_start..i]);
            push_text(&mut pieces, &item[i + 1..i + 3]);
            i += 3;
            literal_start = i;
        } else if rest.starts_with("${") {
            push_text(&mut pieces, &item[literal_start..i]);
            let Some(close) = rest.find('}') else {
                issues.push((
                    Severity::Error,
                    format!("`${{` is not closed by `}}` in `{item}`"),
                    Some("close the macro with `}`, or write `$${` for a literal `${`".to_string()),
                ));
                literal_start = item.len();
                break;
            };
            let name = &rest[2..close];
            let whole = &rest[..=close];
            match classify(name) {
                Ok(mac) => pieces.push(Piece::Macro(mac)),
                Err(_) if params.contains(&name) => pieces.push(Piece::Param(name)),
                Err(Unknown::Invalid(message, hint)) => {
                    issues.push((Severity::Error, message, hint))
                }
                Err(Unknown::Other) => {
                    push_text(&mut pieces, whole);
                    if whole.len() == item.len() {
                        issues.push((
                            Severity::Warning,
                            format!("`{whole}` is neither a macro nor a parameter: it is passed unchanged (W&B drops this list item)"),
                            Some("remove the item if it should not reach the program".to_string()),
                        ));
                    } else if is_identifier(name) {
                        issues.push((
                            Severity::Warning,
                            format!("`{whole}` is neither a macro nor a parameter: it is passed unchanged, as W&B does"),
                            Some("check the spelling if it was meant to be a parameter".to_string()),
                        ));
                    }
                }
            }
            i += close + 1;
            literal_start = i;
        } else {
            // `$`, `{` and `}` are ASCII, so stepping by bytes and slicing at them is safe;
            // only advance to the next character boundary.
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    push_text(&mut pieces, &item[literal_start..]);

    let list_macro = pieces.iter().find_map(|p| match p {
        Piece::Macro(Macro::List(style)) => Some(*style),
        _ => None,
    });
    if let Some(style) = list_macro {
        if pieces.len() > 1 {
            let name = style.name();
            issues.push((
                Severity::Error,
                format!("${{{name}}} expands to several arguments and must stand alone as one list item"),
                Some(format!(
                    "write `${{{name}}}` as its own list item; to pass every parameter in one \
                     argument use ${{args_json}} or ${{args_json_file}}"
                )),
            ));
        }
    }
    ParsedItem { pieces, issues }
}

fn push_text<'t>(pieces: &mut Vec<Piece<'t>>, text: &'t str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
}

/// Why a name between `${` and `}` is not a macro.
enum Unknown {
    /// A malformed `${envvar:...}` or a near-miss of a macro name: an error (message, hint).
    Invalid(String, Option<String>),
    /// Anything else: a parameter name, or text to pass through.
    Other,
}

/// Whether `name` looks like a parameter name (letters, digits, `_`, `.`, `-`).
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Recognize the name between `${` and `}`.
fn classify(name: &str) -> Result<Macro<'_>, Unknown> {
    if let Some(mac) = Macro::from_name(name) {
        if let Macro::EnvVar(var) = mac {
            if var.is_empty() {
                return Err(Unknown::Invalid(
                    "${envvar:} names no environment variable".to_string(),
                    Some("write ${envvar:NAME}, e.g. ${envvar:HOME}".to_string()),
                ));
            }
            if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Unknown::Invalid(
                    format!("invalid environment variable name `{var}` in ${{envvar:{var}}}"),
                    Some("a name may contain only ASCII letters, digits and `_`".to_string()),
                ));
            }
        }
        return Ok(mac);
    }
    if name == "envvar" {
        return Err(Unknown::Invalid(
            "${envvar} names no environment variable".to_string(),
            Some("write ${envvar:NAME}, e.g. ${envvar:HOME}".to_string()),
        ));
    }
    let trimmed = name.trim();
    let (word, argument) = match trimmed.split_once(':') {
        Some((word, _)) => (word, true),
        None => (trimmed, false),
    };
    // A near-miss of a macro is a typo; `${env:HOME}` (an OmegaConf resolver) is not, since
    // only `envvar` takes an argument.
    let hint = match did_you_mean(word, MACROS) {
        Some("envvar") => "did you mean ${envvar:NAME}?".to_string(),
        Some(known) if !argument => format!("did you mean ${{{known}}}?"),
        _ => return Err(Unknown::Other),
    };
    Err(Unknown::Invalid(
        format!("unknown macro ${{{name}}}"),
        Some(format!("{hint} (write `$${{` for a literal `${{`)")),
    ))
}

/// Check a command template without any values: unknown macros that look like typos (with a
/// suggestion), an unterminated `${`, a multi-argument macro embedded in a longer item,
/// `${envvar:}` with an empty or invalid name, and an empty list are errors; `${name}` of one of
/// `params` (dotted parameter names) and a `${...}` passed through unchanged are warnings,
/// being differences from W&B. Without errors, [`expand`] can only fail for reasons that
/// depend on the run (a missing program, an unset environment variable, …).
pub fn check_template(template: &[String], params: &[&str]) -> Vec<TemplateIssue> {
    let mut issues = Vec::new();
    if template.is_empty() {
        issues.push(TemplateIssue {
            severity: Severity::Error,
            index: 0,
            message: "the command is an empty list".to_string(),
            hint: Some(
                "omit `command` to use `${env} ${interpreter} ${program} ${args}`".to_string(),
            ),
        });
    }
    let mut substituted: Vec<(usize, &str)> = Vec::new();
    let mut embedded: Option<(usize, &'static str)> = None;
    for (index, item) in template.iter().enumerate() {
        let parsed = parse_item(item, params);
        for piece in &parsed.pieces {
            if let Piece::Param(name) = piece {
                substituted.push((index, name));
            }
        }
        // A single-value macro inside a longer item: W&B substitutes only `${envvar:…}` there.
        if parsed.pieces.len() > 1 && embedded.is_none() {
            embedded = parsed.pieces.iter().find_map(|piece| match piece {
                Piece::Macro(mac) if !matches!(mac, Macro::EnvVar(_) | Macro::List(_)) => {
                    Some((index, mac.name()))
                }
                _ => None,
            });
        }
        for (severity, message, hint) in parsed.issues {
            issues.push(TemplateIssue {
                severity,
                index,
                message,
                hint,
            });
        }
    }
    // One warning for all parameters referenced by name, at the first reference.
    if let Some(&(index, first)) = substituted.first() {
        let others = match substituted.len() - 1 {
            0 => String::new(),
            1 => " and 1 other parameter".to_string(),
            n => format!(" and {n} other parameters"),
        };
        issues.push(TemplateIssue {
            severity: Severity::Warning,
            index,
            message: format!(
                "${{{first}}}{others} named in `command` are replaced by their values; W&B would pass the text `${{{first}}}` unchanged"
            ),
            hint: Some("this substitution is a hyperdial extension".to_string()),
        });
    }
    if let Some((index, name)) = embedded {
        issues.push(TemplateIssue {
            severity: Severity::Warning,
            index,
            message: format!(
                "`${{{name}}}` inside a longer item is replaced; W&B replaces a macro there only \
                 for `${{envvar:…}}`, and would pass the text `${{{name}}}` unchanged"
            ),
            hint: Some(format!(
                "this substitution is a hyperdial extension; under W&B, make `${{{name}}}` an \
                 item of its own"
            )),
        });
    }
    issues.sort_by_key(|i| i.index);
    issues
}

/// Whether `template` uses the macro `name` (as listed in [`MACROS`], with or without `${}`;
/// `envvar` matches every `${envvar:NAME}`). The agent uses it, for instance, to decide whether
/// to write the `${args_json_file}` file.
pub fn uses_macro(template: &[String], name: &str) -> bool {
    let name = name
        .strip_prefix("${")
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name);
    template.iter().any(|item| {
        parse_item(item, &[])
            .pieces
            .iter()
            .any(|piece| match piece {
                Piece::Macro(Macro::EnvVar(var)) => {
                    name == "envvar" || name.strip_prefix("envvar:") == Some(var)
                }
                Piece::Macro(mac) => mac.name() == name,
                Piece::Text(_) | Piece::Param(_) => false,
            })
    })
}

/// The sweep's `command`, or [`DEFAULT_COMMAND`] when it has none.
fn command_template(config: &crate::SweepConfig) -> std::borrow::Cow<'_, [String]> {
    match &config.command {
        Some(t) => std::borrow::Cow::Borrowed(t.as_slice()),
        None => std::borrow::Cow::Owned(DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect()),
    }
}

/// The sweep's `program` when its command (its `command`, or [`DEFAULT_COMMAND`]) passes it
/// as a file to run: an item that is `${program}` alone, not right after `-m` (Python's module
/// flag takes a module name, not a path). `None` otherwise (no program, no such item).
///
/// An agent resolves that file from its working directory when each run starts; checked once
/// before any claim, a missing file stops the agent with the fix instead of failing every run
/// it would claim (each counting toward `run_cap`).
pub fn script_program(config: &crate::SweepConfig) -> Option<&str> {
    let program = config.program.as_deref().filter(|p| !p.is_empty())?;
    let template = command_template(config);
    let as_file = template
        .iter()
        .enumerate()
        .any(|(i, item)| item == "${program}" && (i == 0 || template[i - 1] != "-m"));
    as_file.then_some(program)
}

/// Expand `template` into the argv of one run.
///
/// Each list item yields one argument, except `${env}` on Windows (none) and the
/// multi-argument macros (one or two per parameter, possibly none). Substituted values are
/// never split or re-parsed.
pub fn expand(template: &[String], ctx: &CommandContext<'_>) -> Result<Vec<String>, CommandError> {
    expand_for(template, ctx, cfg!(windows))
}

fn expand_for(
    template: &[String],
    ctx: &CommandContext<'_>,
    windows: bool,
) -> Result<Vec<String>, CommandError> {
    let params: Vec<&str> = ctx.args.iter().map(|a| a.name).collect();
    if let Some(issue) = check_template(template, &params)
        .into_iter()
        .find(|i| i.severity == Severity::Error)
    {
        return Err(CommandError::Template(issue));
    }
    let mut argv: Vec<String> = Vec::new();
    let mut first_index = None;
    for (index, item) in template.iter().enumerate() {
        let before = argv.len();
        let pieces = parse_item(item, &params).pieces;
        match pieces.as_slice() {
            [Piece::Macro(Macro::List(style))] => style.emit(ctx.args, &mut argv),
            [Piece::Macro(Macro::Env)] if windows => {}
            _ => {
                let mut arg = String::new();
                for piece in &pieces {
                    match *piece {
                        Piece::Text(text) => arg.push_str(text),
                        Piece::Macro(mac) => arg.push_str(&single_value(mac, index, ctx, windows)?),
                        Piece::Param(name) => {
                            if let Some(a) = ctx.args.iter().find(|a| a.name == name) {
                                arg.push_str(&python_str(a.value));
                            }
                        }
                    }
                }
                argv.push(arg);
            }
        }
        if first_index.is_none() && argv.len() > before {
            first_index = Some(index);
        }
    }
    match (argv.first(), first_index) {
        (None, _) => Err(CommandError::Empty),
        (Some(first), Some(index)) if first.is_empty() => {
            Err(CommandError::EmptyExecutable { index })
        }
        _ => Ok(argv),
    }
}

/// The text a single-valued macro stands for.
fn single_value(
    mac: Macro<'_>,
    index: usize,
    ctx: &CommandContext<'_>,
    windows: bool,
) -> Result<String, CommandError> {
    Ok(match mac {
        Macro::Env if windows => String::new(),
        Macro::Env => ENV_PROGRAM.to_string(),
        Macro::Interpreter if ctx.interpreter.is_empty() => {
            return Err(CommandError::EmptyInterpreter { index })
        }
        Macro::Interpreter => ctx.interpreter.to_string(),
        Macro::Program => match ctx.program {
            Some(program) if !program.is_empty() => program.to_string(),
            _ => return Err(CommandError::MissingProgram { index }),
        },
        Macro::ArgsJson => args_json(ctx.args),
        Macro::ArgsJsonFile => {
            let path = ctx
                .args_json_file
                .ok_or(CommandError::MissingArgsJsonFile { index })?;
            path.to_str()
                .ok_or_else(|| CommandError::ArgsJsonFileNotUtf8 {
                    index,
                    path: path.to_string_lossy().into_owned(),
                })?
                .to_string()
        }
        Macro::EnvVar(name) => (ctx.env)(name).ok_or_else(|| CommandError::EnvVarNotSet {
            index,
            name: name.to_string(),
        })?,
        // parse_item rejects list macros that do not stand alone, and expand_for handles
        // those that do.
        Macro::List(_) => unreachable!("multi-argument macro in a single-valued position"),
    })
}

/// The arguments of `template` that carry the parameters, as the command would pass them:
/// the items holding an args macro (`${args}`, `${args_no_hyphens}`, …), `${args_json}`, or a
/// `${name}` of a parameter, expanded. An item holding `${args_json_file}` stands for the JSON
/// itself (one argument, as `${args_json}`). Items without parameters (the program, literal
/// flags) are left out. When no item carries parameters, or `template` is `None` (W&B's
/// default command), the `${args}` form: `--name=value` per parameter.
///
/// `hyperdial best --format args` prints this, so the flags can be pasted after the program.
pub fn parameter_args(template: Option<&[String]>, args: &[Arg<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut found = false;
    let params: Vec<&str> = args.iter().map(|a| a.name).collect();
    for item in template.unwrap_or_default() {
        let pieces = parse_item(item, &params).pieces;
        if let [Piece::Macro(Macro::List(style))] = pieces.as_slice() {
            style.emit(args, &mut out);
            found = true;
            continue;
        }
        if pieces
            .iter()
            .any(|p| matches!(p, Piece::Macro(Macro::ArgsJsonFile)))
        {
            out.push(args_json(args));
            found = true;
            continue;
        }
        let carries = pieces
            .iter()
            .any(|p| matches!(p, Piece::Param(_) | Piece::Macro(Macro::ArgsJson)));
        if !carries {
            continue;
        }
        found = true;
        let mut arg = String::new();
        for piece in &pieces {
            match *piece {
                Piece::Text(text) => arg.push_str(text),
                Piece::Param(name) => {
                    if let Some(a) = args.iter().find(|a| a.name == name) {
                        arg.push_str(&python_str(a.value));
                    }
                }
                Piece::Macro(Macro::ArgsJson) => arg.push_str(&args_json(args)),
                Piece::Macro(mac) => {
                    arg.push_str("${");
                    arg.push_str(mac.name());
                    if let Macro::EnvVar(var) = mac {
                        arg.push(':');
                        arg.push_str(var);
                    }
                    arg.push('}');
                }
            }
        }
        out.push(arg);
    }
    if !found {
        ListStyle::Args.emit(args, &mut out);
    }
    out
}

/// The [`Arg`]s of a run: one per parameter of `config` that `params` (flat, by dotted name)
/// holds, in the config's parameter order.
pub fn args_for<'a>(
    config: &'a crate::SweepConfig,
    params: &'a serde_json::Map<String, Value>,
) -> Vec<Arg<'a>> {
    config
        .parameters
        .iter()
        .filter_map(|p| {
            params.get(&p.name).map(|value| Arg {
                name: &p.name,
                path: &p.path,
                value,
            })
        })
        .collect()
}

/// Expand `config`'s command (or [`DEFAULT_COMMAND`]) for `args`, with `config`'s program
/// and interpreter (or [`DEFAULT_INTERPRETER`]) and environment lookups through `env`.
///
/// A conditional parameter (`when`) that is inactive in the run is not among `args`, so the
/// args macros leave it out; an item that names it (`--momentum=${momentum}`) is left out
/// too, rather than passed with the macro unexpanded.
pub fn expand_config(
    config: &crate::SweepConfig,
    args: &[Arg<'_>],
    args_json_file: Option<&Path>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<String>, CommandError> {
    let template = command_template(config);
    let template: &[String] = &template;
    let absent: Vec<&str> = config
        .parameters
        .iter()
        .filter(|p| !p.when.is_empty() && !args.iter().any(|a| a.name == p.name))
        .map(|p| p.name.as_str())
        .collect();
    let kept: Vec<String>;
    let template: &[String] = if absent.is_empty() {
        template
    } else {
        kept = template
            .iter()
            .filter(|item| {
                !parse_item(item, &absent)
                    .pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Param(_)))
            })
            .cloned()
            .collect();
        &kept
    };
    let ctx = CommandContext {
        program: config.program.as_deref(),
        interpreter: config.interpreter.as_deref().unwrap_or(DEFAULT_INTERPRETER),
        args,
        args_json_file,
        env,
    };
    expand(template, &ctx)
}

/// The JSON object of all parameters, re-nested along each [`Arg::path`], formatted exactly
/// as Python's `json.dumps` formats it (W&B writes `${args_json}` with `json.dumps`):
/// `{"optimizer": {"lr": 1e-05}, "epochs": 10}`. This is also the content of the
/// `${args_json_file}` file.
///
/// Keys appear in the order of their first parameter. Paths are expected to be prefix-free
/// (the parser guarantees it); should two collide, the later parameter wins, as it would in a
/// Python dict.
pub fn args_json(args: &[Arg<'_>]) -> String {
    let mut root: Vec<(&str, Node<'_>)> = Vec::new();
    for arg in args {
        let keys: Vec<&str> = if arg.path.is_empty() {
            vec![arg.name]
        } else {
            arg.path.iter().map(String::as_str).collect()
        };
        insert(&mut root, &keys, arg.value);
    }
    let mut out = String::new();
    write_branch(&root, Style::Json, &mut out);
    out
}

/// The file W&B's agent writes for each run and names in `WANDB_SWEEP_PARAM_PATH`: the run's
/// top-level keys (as [`args_json`] nests them), each as `{value: ...}`, after a
/// `wandb_version: 1` line, in the YAML PyYAML's `yaml.dump` writes (W&B's
/// `config_util.save_config_file_from_dict`), so that `yaml.safe_load` and OmegaConf read
/// back the values the run holds:
///
/// ```yaml
/// wandb_version: 1
///
/// "lr":
///   value: 1.0e-05
/// "optimizer":
///   value: {"kind": "adam", "beta": 0.9}
/// ```
///
/// Floats are written as PyYAML writes them (`1.0e-05`; PyYAML reads `1e-05` as a string),
/// strings double-quoted with non-ASCII characters as they are.
pub fn sweep_param_yaml(args: &[Arg<'_>]) -> String {
    let mut out = String::from("wandb_version: 1\n");
    let root = top_level(args);
    if !root.is_empty() {
        out.push('\n');
    }
    for (key, node) in &root {
        write_yaml_string(key, &mut out);
        out.push_str(":\n  value: ");
        match node {
            Node::Leaf(value) => write_value(value, Style::Yaml, &mut out),
            Node::Branch(children) => write_branch(children, Style::Yaml, &mut out),
        }
        out.push('\n');
    }
    out
}

/// How [`write_value`] writes a value: the three ways W&B's agent writes a run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// Python's `json.dumps` with its default arguments: `", "` and `": "` separators,
    /// floats as Python's `repr`, non-ASCII escaped (`${args_json}`).
    Json,
    /// Python's `repr` (`{'lr': 0.01, 'amp': True, 'x': None}`), what `str()` of a list or
    /// dict gives (the args macros).
    Python,
    /// YAML flow style that PyYAML (YAML 1.1) and YAML 1.2 readers read back alike (the
    /// parameter file, [`sweep_param_yaml`]).
    Yaml,
}

impl Style {
    fn string(self, s: &str, out: &mut String) {
        match self {
            Style::Json => write_json_string(s, out),
            Style::Python => write_python_string_repr(s, out),
            Style::Yaml => write_yaml_string(s, out),
        }
    }
}

/// `value` in `style`, lists and objects with `", "` between items and `": "` after keys.
fn write_value(value: &Value, style: Style, out: &mut String) {
    match value {
        Value::Null => out.push_str(if style == Style::Python {
            "None"
        } else {
            "null"
        }),
        Value::Bool(b) => out.push_str(match (style, b) {
            (Style::Python, true) => "True",
            (Style::Python, false) => "False",
            (_, true) => "true",
            (_, false) => "false",
        }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                out.push_str(&if style == Style::Yaml {
                    pyyaml_float(x)
                } else {
                    python_float_repr(x)
                });
            }
        },
        Value::String(s) => style.string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, style, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let entries = map.iter().map(|(key, item)| (key.as_str(), item));
            write_mapping(entries, style, out, |item, out| {
                write_value(item, style, out)
            });
        }
    }
}

/// A re-nested branch of the run's parameters as a mapping in `style`.
fn write_branch(branch: &[(&str, Node<'_>)], style: Style, out: &mut String) {
    let entries = branch.iter().map(|(key, node)| (*key, node));
    write_mapping(entries, style, out, |node, out| match node {
        Node::Leaf(value) => write_value(value, style, out),
        Node::Branch(children) => write_branch(children, style, out),
    });
}

/// `{key: item, ...}` in `style`, each item written by `item`: the one shape of a JSON object
/// and of a re-nested branch.
fn write_mapping<'k, T>(
    entries: impl Iterator<Item = (&'k str, T)>,
    style: Style,
    out: &mut String,
    mut item: impl FnMut(T, &mut String),
) {
    out.push('{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        style.string(key, out);
        out.push_str(": ");
        item(value, out);
    }
    out.push('}');
}

/// A float as PyYAML's representer writes it: Python's `repr`, with `.0` put before an
/// exponent that has no point (`1e-05` is `1.0e-05`, which PyYAML's YAML 1.1 resolver reads
/// as a float), and `.inf`, `-.inf`, `.nan`.
fn pyyaml_float(x: f64) -> String {
    if x.is_nan() {
        return ".nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let repr = python_float_repr(x);
    if repr.contains('e') && !repr.contains('.') {
        repr.replacen('e', ".0e", 1)
    } else {
        repr
    }
}

/// A YAML double-quoted scalar: `"` and `\` escaped, and the characters YAML does not allow
/// as they are (controls, DEL, C1 controls, the byte-order mark, U+FFFE, U+FFFF) as `\uXXXX`;
/// other characters, non-ASCII ones included, as they are (UTF-8).
fn write_yaml_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// The run's config by top-level key, in the order of each key's first parameter: a
/// parameter that is not nested is a leaf under its name (even one with a dot in it, such
/// as a top-level `model.lr`), a block of nested parameters a branch under the block's name.
fn top_level<'a>(args: &'a [Arg<'a>]) -> Vec<(&'a str, Node<'a>)> {
    let mut root: Vec<(&str, Node<'_>)> = Vec::new();
    for arg in args {
        let keys: Vec<&str> = if arg.path.len() > 1 {
            arg.path.iter().map(String::as_str).collect()
        } else {
            vec![arg.name]
        };
        insert(&mut root, &keys, arg.value);
    }
    root
}

/// A node of the re-nested parameter tree.
enum Node<'a> {
    Leaf(&'a Value),
    Branch(Vec<(&'a str, Node<'a>)>),
}

fn insert<'a>(branch: &mut Vec<(&'a str, Node<'a>)>, keys: &[&'a str], value: &'a Value) {
    let Some((&head, rest)) = keys.split_first() else {
        return;
    };
    let position = match branch.iter().position(|(k, _)| *k == head) {
        Some(position) => position,
        None => {
            branch.push((head, Node::Branch(Vec::new())));
            branch.len() - 1
        }
    };
    let slot = &mut branch[position].1;
    if rest.is_empty() {
        *slot = Node::Leaf(value);
        return;
    }
    if !matches!(slot, Node::Branch(_)) {
        *slot = Node::Branch(Vec::new());
    }
    if let Node::Branch(children) = slot {
        insert(children, rest, value);
    }
}

/// A JSON string as Python's `json.dumps` writes it with `ensure_ascii=True`.
fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// A value as Python's `str()` writes it, which is what W&B's agent puts after `--name=`:
/// `True`, `False`, `None`, strings unquoted, integers as digits, floats as [`python_float_repr`],
/// lists and objects as Python's `repr` of a list or dict (`[1, 'a', True, None]`,
/// `{'lr': 0.1}`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_value(other, Style::Python, &mut out);
            out
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation when
/// the decimal exponent is in `-4..16` (with `.0` for integral values) and in scientific
/// notation otherwise (`1e-05`, `1.5e+16`); `inf`, `-inf`, `nan`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // `{:e}` without a precision gives the shortest digits that round-trip: `-1.2345e-7`.
    // When two such digit strings are equally close to `x`, it may pick the upper one where
    // Python picks the even one; formatting to that many digits rounds the exact value half
    // to even, which is Python's choice whenever it round-trips too.
    let shortest = format!("{x:e}");
    let significant = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let nearest = format!("{x:.*e}", significant.saturating_sub(1));
    let formatted = if nearest.parse::<f64>() == Ok(x) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exponent) {
        // Position of the decimal point, counted in digits from the left.
        let point = exponent + 1;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if point < digits.len() {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            } else {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exponent.unsigned_abs()));
    }
    out
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote and no double
/// quote; backslash, the quote, `\t`, `\n`, `\r` and non-printable characters escaped.
fn write_python_string_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if python_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one character: false for control, format, private-use,
/// separator (other than the ASCII space) and non-characters. Exact for ASCII and Latin-1 and
/// for the common format and space characters; other unassigned code points are treated as
/// printable.
fn python_printable(c: char) -> bool {
    let code = c as u32;
    !matches!(
        code,
        0x00..=0x1f
            | 0x7f..=0xa0
            | 0xad
            | 0x0600..=0x0605
            | 0x061c
            | 0x06dd
            | 0x070f
            | 0x0890..=0x0891
            | 0x08e2
            | 0x1680
            | 0x180e
            | 0x2000..=0x200f
            | 0x2028..=0x202f
            | 0x205f..=0x206f
            | 0x3000
            | 0xd800..=0xf8ff
            | 0xfdd0..=0xfdef
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
            | 0xf0000..=0x10ffff
    ) && (code & 0xfffe) != 0xfffe
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Owned parameters, turned into [`Arg`]s by [`Params::args`].
    struct Params(Vec<(String, Vec<String>, Value)>);

    impl Params {
        /// Dotted names, each dot a nesting level.
        fn flat(items: &[(&str, Value)]) -> Self {
            Params(
                items
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            name.split('.').map(str::to_string).collect(),
                            value.clone(),
                        )
                    })
                    .collect(),
            )
        }

        fn args(&self) -> Vec<Arg<'_>> {
            self.0
                .iter()
                .map(|(name, path, value)| Arg { name, path, value })
                .collect()
        }
    }

    fn run(template: &[&str], params: &Params) -> Result<Vec<String>, CommandError> {
        let args = params.args();
        let env = |name: &str| match name {
            "HOME" => Some("/home/ada".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let ctx = CommandContext {
            program: Some("train.py"),
            interpreter: DEFAULT_INTERPRETER,
            args: &args,
            args_json_file: Some(Path::new("/tmp/run-1/args.json")),
            env: &env,
        };
        expand_for(&strings(template), &ctx, false)
    }

    fn sample() -> Params {
        Params::flat(&[
            ("lr", json!(0.001)),
            ("epochs", json!(10)),
            ("amp", json!(true)),
            ("ema", json!(false)),
            ("optimizer", json!("adam")),
        ])
    }

    #[test]
    fn default_command() {
        let argv = run(&DEFAULT_COMMAND, &sample()).unwrap();
        assert_eq!(
            argv,
            [
                "/usr/bin/env",
                "python3",
                "train.py",
                "--lr=0.001",
                "--epochs=10",
                "--amp=True",
                "--ema=False",
                "--optimizer=adam"
            ]
        );
    }

    #[test]
    fn env_is_dropped_on_windows() {
        let params = sample();
        let args = params.args();
        let ctx = CommandContext {
            program: Some("train.py"),
            interpreter: "python",
            args: &args[..1],
            args_json_file: None,
            env: &no_env,
        };
        let argv = expand_for(&strings(&DEFAULT_COMMAND), &ctx, true).unwrap();
        assert_eq!(argv, ["python", "train.py", "--lr=0.001"]);
    }

    #[test]
    fn interpreter_override() {
        let params = Params::flat(&[]);
        let args = params.args();
        let ctx = CommandContext {
            program: Some("main.py"),
            interpreter: "/opt/venv/bin/python",
            args: &args,
            args_json_file: None,
            env: &no_env,
        };
        let argv = expand_for(&strings(&["${interpreter}", "${program}"]), &ctx, false).unwrap();
        assert_eq!(argv, ["/opt/venv/bin/python", "main.py"]);
    }

    #[test]
    fn every_args_style() {
        let p = sample();
        assert_eq!(
            run(&["x", "${args_no_equals}"], &p).unwrap()[1..],
            [
                "--lr",
                "0.001",
                "--epochs",
                "10",
                "--amp",
                "True",
                "--ema",
                "False",
                "--optimizer",
                "adam"
            ]
        );
        assert_eq!(
            run(&["x", "${args_no_hyphens}"], &p).unwrap()[1..],
            [
                "lr=0.001",
                "epochs=10",
                "amp=True",
                "ema=False",
                "optimizer=adam"
            ]
        );
        assert_eq!(
            run(&["x", "${args_no_boolean_flags}"], &p).unwrap()[1..],
            ["--lr=0.001", "--epochs=10", "--amp", "--optimizer=adam"]
        );
        assert_eq!(
            run(&["x", "${args_append_hydra}"], &p).unwrap()[1..],
            [
                "+lr=0.001",
                "+epochs=10",
                "+amp=True",
                "+ema=False",
                "+optimizer=adam"
            ]
        );
        assert_eq!(
            run(&["x", "${args_override_hydra}"], &p).unwrap()[1..],
            [
                "++lr=0.001",
                "++epochs=10",
                "++amp=True",
                "++ema=False",
                "++optimizer=adam"
            ]
        );
    }

    #[test]
    fn boolean_flags_true_and_false() {
        let p = Params::flat(&[
            ("a", json!(true)),
            ("b", json!(false)),
            ("c", json!("false")),
        ]);
        assert_eq!(
            run(&["x", "${args_no_boolean_flags}"], &p).unwrap(),
            ["x", "--a", "--c=false"]
        );
        let only_false = Params::flat(&[("b", json!(false))]);
        assert_eq!(
            run(&["x", "${args_no_boolean_flags}"], &only_false).unwrap(),
            ["x"]
        );
    }

    #[test]
    fn dotted_names_and_python_values() {
        let p = Params::flat(&[
            ("optimizer.lr", json!(1e-5)),
            ("layers", json!([64, 32])),
            ("extra", json!({"a": null, "b": "x"})),
            ("nothing", Value::Null),
        ]);
        assert_eq!(
            run(&["x", "${args}"], &p).unwrap()[1..],
            [
                "--optimizer={'lr': 1e-05}",
                "--layers=[64, 32]",
                "--extra={'a': None, 'b': 'x'}",
                "--nothing=None"
            ]
        );
    }

    #[test]
    fn a_nested_block_is_one_flag_holding_its_dict_as_in_wandb() {
        // W&B's agent writes one flag per top-level key of the run's config, so W&B's own
        // nested example (`parser.add_argument("--optimizer", type=str)`) parses it.
        let p = Params(vec![
            (
                "optimizer.lr".into(),
                strings(&["optimizer", "lr"]),
                json!(0.001),
            ),
            ("epochs".into(), strings(&["epochs"]), json!(5)),
            (
                "optimizer.nadam.beta".into(),
                strings(&["optimizer", "nadam", "beta"]),
                json!(0.9),
            ),
            ("model.lr".into(), strings(&["model.lr"]), json!(1e-5)),
            ("aug.flip".into(), strings(&["aug", "flip"]), json!(true)),
        ]);
        let dict = "{'lr': 0.001, 'nadam': {'beta': 0.9}}";
        assert_eq!(
            run(&["x", "${args}"], &p).unwrap()[1..],
            [
                format!("--optimizer={dict}"),
                "--epochs=5".into(),
                "--model.lr=1e-05".into(),
                "--aug={'flip': True}".into(),
            ]
        );
        assert_eq!(
            run(&["x", "${args_no_equals}"], &p).unwrap()[1..3],
            ["--optimizer".to_string(), dict.to_string()]
        );
        assert_eq!(
            run(&["x", "${args_no_hyphens}"], &p).unwrap()[1],
            format!("optimizer={dict}")
        );
        assert_eq!(
            run(&["x", "${args_override_hydra}"], &p).unwrap()[4],
            "++aug={'flip': True}"
        );
        // A dict is not a boolean: no bare flag for it.
        assert_eq!(
            run(&["x", "${args_no_boolean_flags}"], &p).unwrap()[4],
            "--aug={'flip': True}"
        );
        // `best --format args` prints the same flags.
        assert_eq!(
            parameter_args(None, &p.args())[0],
            format!("--optimizer={dict}")
        );
    }

    #[test]
    fn args_json_single_token_and_nesting() {
        let p = Params(vec![
            (
                "optimizer.lr".into(),
                strings(&["optimizer", "lr"]),
                json!(0.01),
            ),
            ("epochs".into(), strings(&["epochs"]), json!(5)),
            ("model.lr".into(), strings(&["model.lr"]), json!(1e-5)),
            (
                "optimizer.name".into(),
                strings(&["optimizer", "name"]),
                json!("sgd"),
            ),
            (
                "a.b.c".into(),
                strings(&["a", "b", "c"]),
                json!([true, null, "é"]),
            ),
        ]);
        let expected = r#"{"optimizer": {"lr": 0.01, "name": "sgd"}, "epochs": 5, "model.lr": 1e-05, "a": {"b": {"c": [true, null, "\u00e9"]}}}"#;
        assert_eq!(args_json(&p.args()), expected);
        assert_eq!(run(&["x", "${args_json}"], &p).unwrap(), ["x", expected]);
        let embedded = run(&["x", "--cfg=${args_json}"], &p).unwrap();
        assert_eq!(embedded, ["x".to_string(), format!("--cfg={expected}")]);
    }

    #[test]
    fn args_json_matches_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"s": "q\"b\\\n\t\x01\x7f😀", "f": [1e16, 1.0, -0.0], "o": {}, "e": []}))'
        let p = Params::flat(&[(
            "v",
            json!({"s": "q\"b\\\n\t\u{1}\u{7f}😀", "f": [1e16, 1.0, -0.0], "o": {}, "e": []}),
        )]);
        assert_eq!(
            args_json(&p.args()),
            r#"{"v": {"s": "q\"b\\\n\t\u0001\u007f\ud83d\ude00", "f": [1e+16, 1.0, -0.0], "o": {}, "e": []}}"#
        );
        assert_eq!(args_json(&[]), "{}");
    }

    #[test]
    fn sweep_param_yaml_is_what_pyyaml_dumps_and_reads_back() {
        let p = Params(vec![
            ("lr".into(), strings(&["lr"]), json!(1e-5)),
            (
                "optimizer.kind".into(),
                strings(&["optimizer", "kind"]),
                json!("adam \"w\"\n"),
            ),
            (
                "optimizer.beta".into(),
                strings(&["optimizer", "beta"]),
                json!(1e20),
            ),
            (
                "layers".into(),
                strings(&["layers"]),
                json!([64, 1.5, true, null]),
            ),
            ("name".into(), strings(&["name"]), json!("é\u{85}")),
        ]);
        assert_eq!(
            sweep_param_yaml(&p.args()),
            "wandb_version: 1\n\n\
             \"lr\":\n  value: 1.0e-05\n\
             \"optimizer\":\n  value: {\"kind\": \"adam \\\"w\\\"\\n\", \"beta\": 1.0e+20}\n\
             \"layers\":\n  value: [64, 1.5, true, null]\n\
             \"name\":\n  value: \"é\\u0085\"\n"
        );
        // The same values through this crate's YAML reader.
        let text = sweep_param_yaml(&p.args());
        let read = crate::yaml::parse(&text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let read = read.root.map(|n| n.to_json()).unwrap();
        assert_eq!(read["optimizer"]["value"]["beta"], json!(1e20));
        assert_eq!(read["lr"]["value"], json!(1e-5));
        assert_eq!(read["name"]["value"], json!("é\u{85}"));
        assert_eq!(sweep_param_yaml(&[]), "wandb_version: 1\n");
    }

    #[test]
    fn args_json_collisions_and_empty_path() {
        let v1 = json!(1);
        let v2 = json!(2);
        let v3 = json!(3);
        let ab = strings(&["a", "b"]);
        let a = strings(&["a"]);
        let args = [
            Arg {
                name: "a.b",
                path: &ab,
                value: &v1,
            },
            Arg {
                name: "z",
                path: &[],
                value: &v3,
            },
            Arg {
                name: "a",
                path: &a,
                value: &v2,
            },
        ];
        // Python: d = {"a": {"b": 1}, "z": 3}; d["a"] = 2 keeps the key's position.
        assert_eq!(args_json(&args), r#"{"a": 2, "z": 3}"#);
    }

    #[test]
    fn args_json_file() {
        let p = sample();
        assert_eq!(
            run(
                &["x", "--config=${args_json_file}", "${args_json_file}"],
                &p
            )
            .unwrap(),
            ["x", "--config=/tmp/run-1/args.json", "/tmp/run-1/args.json"]
        );
        let args = p.args();
        let ctx = CommandContext {
            program: None,
            interpreter: "python3",
            args: &args,
            args_json_file: None,
            env: &no_env,
        };
        let err = expand_for(&strings(&["x", "${args_json_file}"]), &ctx, false).unwrap_err();
        assert_eq!(err, CommandError::MissingArgsJsonFile { index: 1 });
        assert!(err
            .to_string()
            .starts_with("command[1]: ${args_json_file} is used"));
    }

    #[test]
    fn embedded_single_value_macros() {
        let argv = run(
            &[
                "${env}",
                "${interpreter}",
                "-u",
                "./${program}",
                "--home=${envvar:HOME}/data",
                "${program}:${interpreter}",
            ],
            &sample(),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "/usr/bin/env",
                "python3",
                "-u",
                "./train.py",
                "--home=/home/ada/data",
                "train.py:python3"
            ]
        );
    }

    #[test]
    fn envvar_set_empty_and_unset() {
        let p = sample();
        assert_eq!(
            run(&["x", "${envvar:HOME}"], &p).unwrap(),
            ["x", "/home/ada"]
        );
        assert_eq!(run(&["x", "${envvar:EMPTY}"], &p).unwrap(), ["x", ""]);
        let err = run(&["x", "y", "z", "${envvar:NOPE}"], &p).unwrap_err();
        assert_eq!(
            err,
            CommandError::EnvVarNotSet {
                index: 3,
                name: "NOPE".into()
            }
        );
        assert!(err
            .to_string()
            .starts_with("environment variable NOPE is not set (command[3])"));
    }

    #[test]
    fn envvar_name_validation() {
        let issues = check_template(
            &strings(&[
                "${envvar:}",
                "${envvar:MY-VAR}",
                "${envvar}",
                "${envvar:lower_1}",
            ]),
            &[],
        );
        let indices: Vec<usize> = issues.iter().map(|i| i.index).collect();
        assert_eq!(indices, [0, 1, 2]);
        assert!(issues[0].message.contains("names no environment variable"));
        assert!(issues[1].message.contains("MY-VAR"));
        assert_eq!(
            issues[2].hint.as_deref(),
            Some("write ${envvar:NAME}, e.g. ${envvar:HOME}")
        );
    }

    #[test]
    fn unknown_macro_suggests() {
        let issues = check_template(
            &strings(&["${env}", "python", "${program}", "${argss}"]),
            &[],
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].to_string(),
            "command[3]: unknown macro ${argss}; did you mean ${args}? (write `$${` for a literal `${`)"
        );
        let issues = check_template(
            &strings(&["--cfg=${args_json_fle}", "${PROGRAM}", "${envar:HOME}"]),
            &[],
        );
        let hints: Vec<_> = issues.iter().map(|i| i.hint.clone().unwrap()).collect();
        let tail = " (write `$${` for a literal `${`)";
        assert_eq!(
            hints,
            [
                format!("did you mean ${{args_json_file}}?{tail}"),
                format!("did you mean ${{program}}?{tail}"),
                format!("did you mean ${{envvar:NAME}}?{tail}")
            ]
        );
        assert!(issues.iter().all(|i| i.severity == Severity::Error));
        let err = run(&["x", "${argss}"], &sample()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("command[1]: unknown macro ${argss}; did you mean ${args}?"));
    }

    #[test]
    fn other_placeholders_pass_through_unchanged() {
        // Hydra and OmegaConf interpolations reach the program as written, as in W&B.
        let argv = run(
            &[
                "x",
                "hydra.run.dir=out/${now:%H-%M}",
                "data=${oc.env:DATA}",
                "${env:HOME}",
                "${epochz}",
                "--n=${not_a_param}",
            ],
            &sample(),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "x",
                "hydra.run.dir=out/${now:%H-%M}",
                "data=${oc.env:DATA}",
                "${env:HOME}",
                "${epochz}",
                "--n=${not_a_param}"
            ]
        );
        let issues = check_template(
            &strings(&[
                "hydra.run.dir=out/${now:%H-%M}",
                "${epochz}",
                "--n=${not_a_param}",
            ]),
            &["lr"],
        );
        let found: Vec<(usize, Severity)> = issues.iter().map(|i| (i.index, i.severity)).collect();
        // Embedded Hydra text: silent; a whole item W&B would drop, and a name that looks
        // like a misspelt parameter: warnings.
        assert_eq!(found, [(1, Severity::Warning), (2, Severity::Warning)]);
        assert!(issues[0].message.contains("W&B drops this list item"));
    }

    #[test]
    fn parameters_are_substituted_by_name() {
        let params = Params::flat(&[
            ("lr", json!(1e-5)),
            ("amp", json!(true)),
            ("optimizer.kind", json!("sgd")),
        ]);
        let argv = run(
            &[
                "x",
                "--lr=${lr}",
                "${amp}",
                "--opt",
                "${optimizer.kind}:${lr}",
                "$${lr}",
            ],
            &params,
        )
        .unwrap();
        assert_eq!(
            argv,
            ["x", "--lr=1e-05", "True", "--opt", "sgd:1e-05", "${lr}"]
        );
        let issues = check_template(&strings(&["--lr=${lr}"]), &["lr"]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].severity, Severity::Warning);
        assert!(issues[0]
            .message
            .contains("W&B would pass the text `${lr}` unchanged"));
        let issues = check_template(
            &strings(&["x", "--lr=${lr}", "-b ${b}", "${b}"]),
            &["lr", "b"],
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].index, 1);
        assert!(issues[0]
            .message
            .starts_with("${lr} and 2 other parameters named"));
    }

    #[test]
    fn parameter_args_follow_the_command_style() {
        let params = sample();
        let args = params.args();
        let style = |t: &[&str]| parameter_args(Some(&strings(t)), &args);
        assert_eq!(
            parameter_args(None, &args),
            [
                "--lr=0.001",
                "--epochs=10",
                "--amp=True",
                "--ema=False",
                "--optimizer=adam"
            ]
        );
        assert_eq!(
            style(&[
                "${env}",
                "${interpreter}",
                "${program}",
                "${args_no_hyphens}"
            ]),
            [
                "lr=0.001",
                "epochs=10",
                "amp=True",
                "ema=False",
                "optimizer=adam"
            ]
        );
        assert_eq!(
            style(&["python", "t.py", "${args_no_boolean_flags}"]),
            ["--lr=0.001", "--epochs=10", "--amp", "--optimizer=adam"]
        );
        let json = r#"{"lr": 0.001, "epochs": 10, "amp": true, "ema": false, "optimizer": "adam"}"#;
        assert_eq!(
            style(&["python", "t.py", "--config", "${args_json}"]),
            [json]
        );
        assert_eq!(
            style(&["python", "t.py", "--config=${args_json_file}"]),
            [json]
        );
        assert_eq!(
            style(&["python", "t.py", "--lr=${lr}", "--fixed", "${epochs}"]),
            ["--lr=0.001", "10"]
        );
        // A command that passes no parameters at all: W&B's `${args}` form.
        assert_eq!(style(&["python", "t.py"]).len(), 5);
    }

    #[test]
    fn a_single_value_macro_inside_an_item_is_warned_as_a_difference_from_wandb() {
        let issues = check_template(
            &strings(&[
                "x",
                "--cfg=${args_json_file}",
                "${envvar:HOME}/data",
                "${program}",
            ]),
            &[],
        );
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].severity, Severity::Warning);
        assert_eq!(issues[0].index, 1);
        assert!(
            issues[0]
                .message
                .starts_with("`${args_json_file}` inside a longer item is replaced"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn args_macro_must_stand_alone() {
        let issues = check_template(
            &strings(&["x", "--x=${args}", "${args}${args_no_hyphens}"]),
            &[],
        );
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0].index, 1);
        assert_eq!(
            issues[0].message,
            "${args} expands to several arguments and must stand alone as one list item"
        );
        assert_eq!(issues[1].index, 2);
        assert!(run(&["x", "--x=${args}"], &sample()).is_err());
    }

    #[test]
    fn unterminated_and_literal_dollars() {
        let issues = check_template(&strings(&["x", "${args"]), &[]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].index, 1);
        assert!(issues[0].message.contains("not closed"));
        let argv = run(
            &[
                "x",
                "$HOME",
                "a$b",
                "$",
                "cost=$5",
                "model.path=$${oc.env:DATA}",
                "$$",
                "{}",
                "$}{",
            ],
            &sample(),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "x",
                "$HOME",
                "a$b",
                "$",
                "cost=$5",
                "model.path=${oc.env:DATA}",
                "$$",
                "{}",
                "$}{"
            ]
        );
    }

    #[test]
    fn hostile_values_stay_one_argument() {
        let nasty = "a b; rm -rf / && echo \"$(id)\" 'x' `whoami` | cat > /etc/passwd\n*";
        let p = Params::flat(&[("name", json!(nasty))]);
        assert_eq!(
            run(&["x", "${args}"], &p).unwrap(),
            ["x".to_string(), format!("--name={nasty}")]
        );
        assert_eq!(
            run(&["x", "${args_no_equals}"], &p).unwrap(),
            ["x", "--name", nasty]
        );
        let p = Params::flat(&[("cmd", json!("; rm -rf /"))]);
        assert_eq!(
            run(&["x", "${args_no_hyphens}"], &p).unwrap(),
            ["x", "cmd=; rm -rf /"]
        );
        // A value that looks like a macro is never expanded again.
        let p = Params::flat(&[("v", json!("${envvar:HOME} ${args}"))]);
        assert_eq!(
            run(&["x", "${args}"], &p).unwrap(),
            ["x", "--v=${envvar:HOME} ${args}"]
        );
    }

    #[test]
    fn the_script_program_is_the_program_passed_as_a_file() {
        let program_of = |yaml: &str| {
            let config = crate::parse_str(
                &format!("method: random\nparameters:\n  x: {{values: [1, 2]}}\n{yaml}"),
                "s.yaml",
            )
            .unwrap()
            .config;
            script_program(&config).map(str::to_string)
        };
        // The default command runs it as a file.
        assert_eq!(
            program_of("program: train.py\n").as_deref(),
            Some("train.py")
        );
        assert_eq!(
            program_of("program: train.py\ncommand: [python3, \"${program}\", \"${args}\"]\n")
                .as_deref(),
            Some("train.py")
        );
        // A module name after -m, a program inside another item, no program: none.
        assert_eq!(
            program_of("program: pkg.train\ncommand: [python3, -m, \"${program}\"]\n"),
            None
        );
        assert_eq!(
            program_of("program: train.py\ncommand: [sh, -c, \"cd src && ./${program}\"]\n"),
            None
        );
        assert_eq!(program_of("command: [python3, t.py]\n"), None);
    }

    #[test]
    fn inactive_conditional_parameters_leave_the_command() {
        let config = crate::parse_str(
            "method: grid\nprogram: t.py\ncommand: [\"${program}\", \"--m=${momentum}\", \"${args}\", \"${args_json}\"]\nparameters:\n  opt: {values: [sgd, adam]}\n  momentum: {values: [0.9], when: {opt: sgd}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let expand = |params: serde_json::Value| {
            let params = params.as_object().unwrap().clone();
            let args = args_for(&config, &params);
            expand_config(&config, &args, None, &no_env).unwrap()
        };
        assert_eq!(
            expand(json!({"opt": "sgd", "momentum": 0.9})),
            [
                "t.py",
                "--m=0.9",
                "--opt=sgd",
                "--momentum=0.9",
                r#"{"opt": "sgd", "momentum": 0.9}"#
            ]
        );
        assert_eq!(
            expand(json!({"opt": "adam"})),
            ["t.py", "--opt=adam", r#"{"opt": "adam"}"#]
        );
    }

    #[test]
    fn missing_program_and_interpreter() {
        let ctx = CommandContext {
            program: None,
            interpreter: "",
            args: &[],
            args_json_file: None,
            env: &no_env,
        };
        let err = expand_for(&strings(&DEFAULT_COMMAND), &ctx, false).unwrap_err();
        assert_eq!(err, CommandError::EmptyInterpreter { index: 1 });
        let err = expand_for(&strings(&["python", "${program}"]), &ctx, false).unwrap_err();
        assert_eq!(err, CommandError::MissingProgram { index: 1 });
        assert!(err.to_string().contains("set `program:`"));
        let ctx = CommandContext {
            program: Some(""),
            ..ctx
        };
        let err = expand_for(&strings(&["python", "${program}"]), &ctx, false).unwrap_err();
        assert_eq!(err, CommandError::MissingProgram { index: 1 });
        // Without ${program} no program is needed.
        assert_eq!(
            expand_for(&strings(&["python", "-m", "pkg.train"]), &ctx, false).unwrap(),
            ["python", "-m", "pkg.train"]
        );
    }

    #[test]
    fn empty_expansions_are_errors() {
        let none = Params::flat(&[]);
        assert_eq!(run(&["${args}"], &none), Err(CommandError::Empty));
        let ctx = CommandContext {
            program: None,
            interpreter: "python3",
            args: &[],
            args_json_file: None,
            env: &no_env,
        };
        assert_eq!(
            expand_for(&strings(&["${env}"]), &ctx, true),
            Err(CommandError::Empty)
        );
        assert_eq!(
            run(&["${args}", "${envvar:EMPTY}", "x"], &none),
            Err(CommandError::EmptyExecutable { index: 1 })
        );
        let err = run(&[], &none).unwrap_err();
        assert!(matches!(
            err,
            CommandError::Template(TemplateIssue { index: 0, .. })
        ));
    }

    #[test]
    fn uses_macro_finds_whole_and_embedded() {
        let t = strings(&[
            "${env}",
            "--c=${args_json_file}",
            "${envvar:HOME}/x",
            "$${program}",
            "${args}",
        ]);
        assert!(uses_macro(&t, "args_json_file"));
        assert!(uses_macro(&t, "${args_json_file}"));
        assert!(uses_macro(&t, "env"));
        assert!(uses_macro(&t, "args"));
        assert!(uses_macro(&t, "envvar"));
        assert!(uses_macro(&t, "envvar:HOME"));
        assert!(!uses_macro(&t, "envvar:USER"));
        assert!(!uses_macro(&t, "program"));
        assert!(!uses_macro(&t, "args_json"));
        assert!(!uses_macro(&strings(&DEFAULT_COMMAND), "args_json_file"));
    }

    #[test]
    fn macros_table_is_consistent() {
        for name in MACROS {
            let item = if *name == "envvar" {
                "${envvar:X}".to_string()
            } else {
                format!("${{{name}}}")
            };
            assert!(
                check_template(std::slice::from_ref(&item), &[]).is_empty(),
                "{item}"
            );
            assert!(uses_macro(&[item], name));
        }
        assert!(check_template(&strings(&DEFAULT_COMMAND), &[]).is_empty());
    }

    #[test]
    fn python_float_repr_matches_python() {
        // Expected strings are Python 3's repr() of the same float.
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (2.5e-7, "2.5e-07"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.000099, "9.9e-05"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-1.25e-5, "-1.25e-05"),
            (3.0e-4, "0.0003"),
            (2.0 / 3.0, "0.6666666666666666"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            // Two shortest candidates (…635.2 and …635.3) are equally close; Python picks the even one.
            (740_443_864_548_635.0 + 0.25, "740443864548635.2"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, expected) in cases {
            assert_eq!(python_float_repr(*x), *expected, "{x:?}");
        }
    }

    #[test]
    fn python_str_matches_python() {
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(false)), "False");
        assert_eq!(python_str(&Value::Null), "None");
        assert_eq!(python_str(&json!("it's a \"str\"")), "it's a \"str\"");
        assert_eq!(python_str(&json!(42)), "42");
        assert_eq!(python_str(&json!(-7)), "-7");
        assert_eq!(python_str(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(python_str(&json!(1e-5)), "1e-05");
        assert_eq!(python_str(&json!(3.0)), "3.0");
        assert_eq!(
            python_str(&json!([1, "a", true, null, [2.5]])),
            "[1, 'a', True, None, [2.5]]"
        );
        assert_eq!(python_str(&json!({"a": 1})), "{'a': 1}");
        assert_eq!(
            python_str(&json!({"b": {"c": [1e16]}, "a": []})),
            "{'b': {'c': [1e+16]}, 'a': []}"
        );
        assert_eq!(python_str(&json!([])), "[]");
        assert_eq!(python_str(&json!({})), "{}");
        // python3 -c "print(repr([\"it's\", 'a\"b', 'both\\'\"', '\x00\n\t\\\\', '\xa0\u200b\xad\ue000\u2028é😀\r\x7f\x85']))"
        assert_eq!(
            python_str(&json!([
                "it's",
                "a\"b",
                "both'\"",
                "\u{0}\n\t\\",
                "\u{a0}\u{200b}\u{ad}\u{e000}\u{2028}é😀\r\u{7f}\u{85}"
            ])),
            r#"["it's", 'a"b', 'both\'"', '\x00\n\t\\', '\xa0\u200b\xad\ue000\u2028é😀\r\x7f\x85']"#
        );
        assert_eq!(python_str(&json!({"it's": "x"})), r#"{"it's": 'x'}"#);
    }

    #[test]
    fn float_repr_round_trips() {
        let mut x = 1.0e-320_f64;
        while x < 1e300 {
            for v in [x, -x, x * 1.000_000_1, x / 3.0] {
                let s = python_float_repr(v);
                assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
                assert!(s.contains('.') || s.contains('e'), "{s}");
            }
            x *= 7.3;
        }
    }
}
