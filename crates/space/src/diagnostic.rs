//! Diagnostics: what is wrong in a sweep file, where, and how to fix it.
//!
//! Validation never stops at the first problem. Every finding becomes a [`Diagnostic`] that
//! carries the key path (`parameters.optimizer.lr.min`), the line and column in the source,
//! a message and, where one exists, a hint. Errors make the file invalid; warnings do not.

use std::fmt;

use serde::Serialize;

/// A position in a source file, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    /// A location from a 1-based line and column.
    pub fn new(line: usize, column: usize) -> Self {
        Location { line, column }
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is accepted; something in it is ignored, deprecated or surprising.
    Warning,
    /// The file is rejected.
    Error,
}

/// One finding about a sweep file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Dotted key path of the offending value, e.g. `parameters.lr.min`; empty for the root.
    pub path: String,
    /// Where in the source the offending key or value starts.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is a clear fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new error at `path`.
    pub fn error(
        path: impl Into<String>,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            location,
            message: message.into(),
            hint: None,
        }
    }

    /// A new warning at `path`.
    pub fn warning(
        path: impl Into<String>,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, location, message)
        }
    }

    /// The same diagnostic with a hint attached.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this finding makes the file invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Render as `file:line:col: error: path: message (hint)`, the format compilers use so
    /// editors can jump to the spot.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        out.push_str(file);
        if let Some(loc) = self.location {
            out.push_str(&format!(":{}:{}", loc.line, loc.column));
        }
        out.push_str(match self.severity {
            Severity::Error => ": error: ",
            Severity::Warning => ": warning: ",
        });
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(TEXT_SOURCE))
    }
}

/// The name messages give a config that came as text with no file name (the `source` of
/// `POST /api/v1/sweeps` without `file`, Python's `Sweep.create(text)`, a stored sweep created
/// that way): `<sweep config text>:3:7: error: ...`. A made-up file name such as `sweep.yaml`
/// would send the reader looking for a file they never wrote; line and column still count
/// from the start of the text they gave.
pub const TEXT_SOURCE: &str = "<sweep config text>";

/// The name messages give a config's source: `file` when it names one (not empty or blank),
/// else [`TEXT_SOURCE`].
pub fn source_name(file: Option<&str>) -> &str {
    match file {
        Some(name) if !name.trim().is_empty() => name,
        _ => TEXT_SOURCE,
    }
}

/// A sweep file that failed validation, with every finding (errors and warnings).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file name used when rendering, e.g. `sweep.yaml`.
    pub file: String,
    /// All findings, in source order; at least one is an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// Every finding rendered on its own line(s), followed by a count.
    pub fn render(&self) -> String {
        let mut lines: Vec<String> = self
            .diagnostics
            .iter()
            .map(|d| d.render(&self.file))
            .collect();
        let errors = self.errors().count();
        lines.push(format!(
            "{}: {} error{} found",
            self.file,
            errors,
            if errors == 1 { "" } else { "s" }
        ));
        lines.join("\n")
    }
}

/// Suggest the closest of `candidates` to a misspelt `word`, if one is close enough to be a
/// plausible typo: a Jaro–Winkler similarity of at least 0.8, or, for a candidate of three or
/// more letters, one edit away (a letter added, dropped, changed, or two swapped: `mni` and
/// `mx` for `min` and `max`, which are too short for the similarity to see).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lowered = word.to_ascii_lowercase();
    let one_edit =
        |c: &str| c.len() >= 3 && lowered.len() >= 2 && strsim::osa_distance(&lowered, c) == 1;
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lowered, c), *c))
        .filter(|(score, c)| *score >= 0.8 || one_edit(c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let d = Diagnostic::error(
            "parameters.lr.min",
            Some(Location::new(4, 10)),
            "must be below max",
        )
        .with_hint("swap min and max");
        assert_eq!(
            d.render("sweep.yaml"),
            "sweep.yaml:4:10: error: parameters.lr.min: must be below max\n  hint: swap min and max"
        );
    }

    #[test]
    fn text_without_a_file_name_is_named_as_text() {
        assert_eq!(source_name(Some("sweeps/mnist.yaml")), "sweeps/mnist.yaml");
        assert_eq!(source_name(None), TEXT_SOURCE);
        assert_eq!(source_name(Some("")), TEXT_SOURCE);
        assert_eq!(source_name(Some("  ")), TEXT_SOURCE);
        let d = Diagnostic::error("method", Some(Location::new(1, 9)), "unknown method");
        assert_eq!(
            d.to_string(),
            "<sweep config text>:1:9: error: method: unknown method"
        );
    }

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["method", "metric", "parameters"];
        assert_eq!(did_you_mean("paramters", &keys), Some("parameters"));
        assert_eq!(did_you_mean("metod", &keys), Some("method"));
        assert_eq!(did_you_mean("zzz", &keys), None);
        let fields = ["min", "max", "mu", "q", "values"];
        assert_eq!(did_you_mean("mni", &fields), Some("min"));
        assert_eq!(did_you_mean("mx", &fields), Some("max"));
        assert_eq!(did_you_mean("maxx", &fields), Some("max"));
        // Not a one-letter key, nor a two-letter one, from one edit alone.
        assert_eq!(did_you_mean("nu", &fields), None);
        assert_eq!(did_you_mean("lr", &fields), None);
    }
}
