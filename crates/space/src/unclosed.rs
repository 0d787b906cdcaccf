//! Two YAML mistakes a parser reports late or in its own words, found again for the error of a
//! parse that failed:
//!
//! - **An unclosed `[` or `{`.** `metric: {name: loss` without its `}` is read on into the
//!   next lines, and the parser fails at the next key (`parameters:`), a line after the
//!   mistake. [`unclosed_bracket`] names the bracket when the failing line is a key indented
//!   no further than the line that opened it: a flow collection that goes on over several
//!   lines indents its continuation lines further, so a key at that indentation means the
//!   bracket was meant to be closed already.
//! - **An unquoted `${...}` in a flow list.** In `command: [${env}, ${interpreter}]` YAML reads
//!   each `{` as the start of a mapping; W&B's files write the macros one per line (`- ${env}`)
//!   or quoted. [`unquoted_macro`] says so when the failing line holds such a macro.
//!
//! Quotes and comments are followed, block scalars (`|`, `>`) skipped. This only chooses where
//! the error is reported and its hint once parsing has failed; a line it cannot judge keeps the
//! parser's position and the general hint.

use crate::diagnostic::Location;

/// An open `[` or `{`: the bracket, and where it is (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Open {
    /// `[` or `{`.
    pub bracket: char,
    /// Where the bracket is.
    pub at: Location,
    /// The indentation of the line it is on.
    indent: usize,
}

impl Open {
    /// The bracket that closes this one.
    pub fn closer(&self) -> char {
        if self.bracket == '[' {
            ']'
        } else {
            '}'
        }
    }
}

/// The flow collections still open at the start of 1-based line `line` of `text`, outermost
/// first.
fn open_before(text: &str, line: usize) -> Vec<Open> {
    let mut open: Vec<Open> = Vec::new();
    let mut block_scalar: Option<usize> = None;
    for (i, raw) in text.lines().enumerate().take(line.saturating_sub(1)) {
        let content = raw.trim_start_matches(' ');
        let indent = raw.len() - content.len();
        if let Some(scalar_indent) = block_scalar {
            if content.is_empty() || indent > scalar_indent {
                continue;
            }
            block_scalar = None;
        }
        let value = content.split_once(": ").map_or(content, |(_, v)| v.trim());
        if open.is_empty() && (value.starts_with('|') || value.starts_with('>')) {
            block_scalar = Some(indent);
            continue;
        }
        scan_line(raw, i + 1, indent, &mut open);
    }
    open
}

/// Follow the brackets of one line (1-based `number`, indented `indent`), outside quotes and
/// comments. Quotes and brackets count only where a scalar or collection can start: inside a
/// flow collection, or as the whole value of a block key (`name: "a [b"`), so `it's {x` in a
/// plain value is text.
fn scan_line(raw: &str, number: usize, indent: usize, open: &mut Vec<Open>) {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    // The last character that is not a space; `None` at the start of the line.
    let mut last: Option<char> = None;
    for (col, c) in raw.chars().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            previous = c;
            last = Some(c);
            continue;
        }
        let at_value_start = matches!(last, None | Some(':' | '-' | ',' | '[' | '{'));
        match c {
            '#' if previous.is_whitespace() => return,
            '"' | '\'' if !open.is_empty() || at_value_start => quote = Some(c),
            // In block context a bracket opens a collection only where a value starts
            // (`it's {fine` is text).
            '[' | '{' if !open.is_empty() || at_value_start => open.push(Open {
                bracket: c,
                at: Location::new(number, col + 1),
                indent,
            }),
            ']' | '}' if open.last().is_some_and(|o| o.closer() == c) => {
                open.pop();
            }
            _ => {}
        }
        previous = c;
        if !c.is_whitespace() {
            last = Some(c);
        }
    }
}

/// The bracket left open before a parse error at 1-based line `error_line`, when that line is
/// a key indented no further than the bracket's line (see the module docs).
pub(crate) fn unclosed_bracket(text: &str, error_line: usize) -> Option<Open> {
    let innermost = *open_before(text, error_line).last()?;
    let line = text.lines().nth(error_line.checked_sub(1)?)?;
    let content = line.trim_start_matches(' ');
    let indent = line.len() - content.len();
    let is_key = content
        .split_once(':')
        .is_some_and(|(key, _)| !key.is_empty() && !key.contains(['[', '{', ',', '"', '\'']));
    (is_key && indent <= innermost.indent && innermost.at.line < error_line).then_some(innermost)
}

/// The hint for a parse error at 1-based line `error_line` when that line holds a `${...}`
/// macro inside a flow list, unquoted.
pub(crate) fn unquoted_macro(text: &str, error_line: usize) -> Option<String> {
    let line = text.lines().nth(error_line.checked_sub(1)?)?;
    let mut open = open_before(text, error_line);
    let depth = open.len();
    let start = line.find("${")?;
    // The brackets of the line before the macro: it must sit in a `[`.
    scan_line(&line[..start], error_line, 0, &mut open);
    let in_list = open.last().is_some_and(|o| o.bracket == '[') && open.len() >= depth;
    let end = line[start..]
        .find('}')
        .map_or(line.len(), |e| start + e + 1);
    let example = &line[start..end];
    in_list.then(|| {
        format!(
            "quote each macro in a `[...]` list (`\"{example}\"`): unquoted, YAML reads its `{{` \
             as the start of a mapping; or write the list one item per line (`- {example}`), as \
             W&B's examples do"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_mapping_left_open_is_named_at_its_bracket() {
        let text = "program: t.py\nmetric: {name: loss\nparameters:\n  lr: {min: 0.1, max: 1.0}\n";
        let open = unclosed_bracket(text, 3).unwrap();
        assert_eq!((open.bracket, open.at), ('{', Location::new(2, 9)));
        let text = "parameters:\n  lr:\n    values: [0.1, 0.01\n  batch: {values: [16, 32]}\n";
        let open = unclosed_bracket(text, 4).unwrap();
        assert_eq!((open.bracket, open.at), ('[', Location::new(3, 13)));
    }

    #[test]
    fn a_list_over_several_lines_or_a_closed_one_is_not_blamed() {
        // Continuation lines indented further: the bracket is open on purpose.
        let text = "parameters: {\n  a: {values: [1, 2]},\n  b: oops: 3\n}\n";
        assert_eq!(unclosed_bracket(text, 3), None);
        // Quoted brackets, comments and a plain `it's` do not count.
        let text =
            "name: \"a [b\"\nnote: it's {fine # not [this\nmetric: {name: m}\nmethod: grid\n";
        assert_eq!(unclosed_bracket(text, 4), None);
        // A block scalar's text is not YAML.
        let text = "description: |\n  a [ b {\nmethod: grid\n";
        assert_eq!(unclosed_bracket(text, 3), None);
    }

    #[test]
    fn an_unquoted_macro_in_a_flow_list_is_told_to_be_quoted() {
        let text = "program: t.py\ncommand: [${env}, ${interpreter}, ${program}]\n";
        let hint = unquoted_macro(text, 2).unwrap();
        assert!(hint.contains("(`\"${env}\"`)"), "{hint}");
        assert!(hint.contains("`- ${env}`"), "{hint}");
        // Quoted, or in a block list, there is nothing to say.
        assert_eq!(unquoted_macro("command:\n  - ${env}\n", 2), None);
        assert_eq!(unquoted_macro("command: echo ${x}\n", 1), None);
    }
}
