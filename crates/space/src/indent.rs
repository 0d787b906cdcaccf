//! Where a YAML indentation mistake started, for the hint of a parse error.
//!
//! A YAML parser reports an indentation mistake where it can no longer read on, often a line
//! after the one that is wrong: a key dedented to a column between its parent's and its
//! siblings' (`   min: 0.1` under `  lr:` whose fields are at four spaces) is read as the start
//! of something new, and the error comes at the next key. [`culprit`] walks the lines up to the
//! error with a stack of the indentations in force (as Python's tokenizer does) and names the
//! first line, at most [`LOOK_BACK`] lines before the error, that
//!
//! - is dedented to a column no enclosing block uses, or
//! - is indented under a line that already has a value (`min: 0.1` followed by a more indented
//!   `max: 1`), so it cannot be a field of it.
//!
//! Lines inside flow collections (`[…]`, `{…}`) and block scalars (`|`, `>`) are skipped, and a
//! list item (`- `) opens both its dash's column and its content's. This only chooses the
//! wording of a hint once parsing has failed, so a line it cannot judge just leaves the
//! general hint.

/// How many lines before the parse error a culprit may be.
const LOOK_BACK: usize = 4;

/// The hint for a parse error at 1-based line `error_line` of `text` when an indentation
/// mistake at or before it explains it; `None` to keep the general hint.
pub(crate) fn culprit(text: &str, error_line: usize) -> Option<String> {
    // Indentation levels in force, innermost last.
    let mut levels: Vec<usize> = vec![0];
    // The last key seen at each indentation, with its 1-based line.
    let mut last_key: std::collections::HashMap<usize, (usize, String)> =
        std::collections::HashMap::new();
    // The previous significant line: its indentation, line, key, and whether it has a value
    // on the same line (so nothing may be indented under it).
    let mut previous: Option<(usize, usize, String, bool)> = None;
    let mut flow_depth = 0i32;
    let mut block_scalar: Option<usize> = None;
    for (i, raw) in text.lines().enumerate().take(error_line) {
        let number = i + 1;
        let content = raw.trim_start_matches(' ');
        let indent = raw.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(scalar_indent) = block_scalar {
            if indent > scalar_indent {
                continue;
            }
            block_scalar = None;
        }
        if flow_depth > 0 || content.starts_with('\t') {
            flow_depth += bracket_balance(content);
            continue;
        }
        let key = key_of(content);
        let near = number + LOOK_BACK >= error_line;
        let top = levels.last().copied().unwrap_or(0);
        if indent > top {
            if let Some((p_indent, p_line, p_key, true)) = &previous {
                if near && *p_indent < indent {
                    return Some(format!(
                        "line {number}{} is indented under line {p_line}{}, which already has a \
                         value: line it up with `{p_key}:` ({p_indent} spaces)",
                        named(&key),
                        named_text(p_key),
                    ));
                }
            }
            levels.push(indent);
        } else {
            while levels.last().is_some_and(|&l| l > indent) {
                levels.pop();
            }
            let outer = levels.last().copied().unwrap_or(0);
            if outer != indent {
                if near {
                    let parent = match last_key.get(&outer) {
                        Some((line, key)) => format!("`{key}:` (line {line}, {outer} spaces)"),
                        None => format!("the keys at {outer} spaces"),
                    };
                    return Some(format!(
                        "line {number}{} is indented {indent} spaces, which lines it up with no \
                         key above it: a field of {parent} is indented further, and the keys \
                         of one mapping line up exactly",
                        named(&key),
                    ));
                }
                levels.push(indent);
            }
        }
        if let Some(k) = &key {
            last_key.insert(indent, (number, k.clone()));
        }
        let rest = content.strip_prefix("- ").unwrap_or(content);
        if content.starts_with("- ") {
            // The item's content opens a level of its own.
            let inner = indent + (content.len() - rest.trim_start().len());
            levels.push(inner);
            if let Some(k) = &key {
                last_key.insert(inner, (number, k.clone()));
            }
        }
        let value = value_of(rest);
        if value.starts_with('|') || value.starts_with('>') {
            block_scalar = Some(indent);
        }
        flow_depth += bracket_balance(value);
        let has_value = !value.is_empty() && !value.starts_with('#') && key.is_some();
        previous = Some((indent, number, key.unwrap_or_default(), has_value));
    }
    None
}

/// ` (`name:`)` for a line with a key, empty otherwise.
fn named(key: &Option<String>) -> String {
    key.as_deref().map(named_text).unwrap_or_default()
}

fn named_text(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" (`{key}:`)")
    }
}

/// The key of a `key: value` or `key:` line (after a list item's dash), if it has one.
fn key_of(content: &str) -> Option<String> {
    let content = content.strip_prefix("- ").unwrap_or(content).trim_start();
    let colon = content
        .find(": ")
        .or_else(|| content.strip_suffix(':').map(str::len))?;
    let key = content[..colon].trim();
    (!key.is_empty() && !key.starts_with(['[', '{', '"', '\'', '#'])).then(|| key.to_string())
}

/// What follows the key's colon on a line (empty for a line that opens a block).
fn value_of(content: &str) -> &str {
    match content.find(": ") {
        Some(colon) => content[colon + 2..].trim(),
        None if content.ends_with(':') => "",
        None => content.trim(),
    }
}

/// Opening minus closing brackets of a flow collection on a line (quotes and comments are not
/// followed: a hint only).
fn bracket_balance(text: &str) -> i32 {
    text.chars()
        .map(|c| match c {
            '[' | '{' => 1,
            ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_dedented_between_its_parent_and_its_siblings_is_named() {
        let text = "method: random\nparameters:\n  lr:\n    distribution: uniform\n   min: 0.1\n      max: 1\n";
        let hint = culprit(text, 6).unwrap();
        assert!(
            hint.starts_with(
                "line 5 (`min:`) is indented 3 spaces, which lines it up with no key above it"
            ),
            "{hint}"
        );
        assert!(hint.contains("`lr:` (line 3, 2 spaces)"), "{hint}");
    }

    #[test]
    fn a_key_indented_under_a_key_with_a_value_is_named() {
        let text = "parameters:\n  lr:\n    min: 0.1\n      max: 1\n";
        let hint = culprit(text, 4).unwrap();
        assert!(
            hint.starts_with(
                "line 4 (`max:`) is indented under line 3 (`min:`), which already has a value"
            ),
            "{hint}"
        );
    }

    #[test]
    fn well_indented_files_lists_and_flow_collections_name_nothing() {
        let text = "parameters:\n  bs:\n    values:\n    - 16\n    - 32\n  opt:\n    values: [adam,\n      sgd]\n  items:\n    - name: a\n      min: 1\ncommand:\n  - ${env}\n  - python\ndescription: |\n  free text\n     indented as it likes\nmetric: {name: loss}\n";
        let lines = text.lines().count();
        for line in 1..=lines {
            assert_eq!(culprit(text, line), None, "line {line}");
        }
    }

    #[test]
    fn a_mistake_far_above_the_error_is_not_blamed() {
        let mut text = String::from("parameters:\n  lr:\n    min: 0.1\n   max: 1\n");
        for i in 0..10 {
            text.push_str(&format!("  p{i}:\n    values: [1, 2]\n"));
        }
        assert_eq!(culprit(&text, 24), None);
    }
}
