//! A YAML document tree that remembers where every key and value came from.
//!
//! Validation needs the line and column of each offending value, which serde-based loaders
//! throw away. This module drives the event parser of `saphyr-parser` and builds a small tree of
//! [`Node`]s, each with its [`Location`]. JSON is read by the same code: it is a subset of
//! YAML 1.2 flow syntax, so both formats get the same precise errors.
//!
//! # Which values: PyYAML's where the author meant them, YAML 1.2 where it is a superset
//!
//! W&B reads sweep files with PyYAML (YAML 1.1). Every file PyYAML reads is read here, with
//! PyYAML's values wherever the author evidently meant them:
//!
//! - `yes`/`no`/`on`/`off` (also `Yes`, `YES`, …) are booleans, as in PyYAML. `y` and `n`
//!   are strings, as in PyYAML.
//! - Digits separated by `_` are numbers (`1_000` is 1000, `1_000.5` is 1000.5), `0b101` is
//!   5, as in PyYAML.
//! - A flow collection (`[...]`, `{...}`) whose continuation lines or closing bracket are not
//!   indented past the key that opened it is read, with a warning (YAML 1.2 requires the
//!   indentation; PyYAML does not).
//! - A key written twice keeps its last value, as in PyYAML, with a warning.
//!
//! Where YAML 1.2 reads more than PyYAML, the superset is kept: `1e-5` and `1.0e5` are
//! floats (PyYAML reads strings, so W&B rejects `min: 1e-5`), and `0o17` is 15. Two PyYAML
//! readings that authors rarely mean are not followed, each with a warning: a leading zero is
//! not octal (`010` is 10, PyYAML reads 8) and `1:30` is a string (PyYAML reads the base-60
//! integer 90).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::{Diagnostic, Location};

/// Upper bound on nodes created while expanding aliases, against "billion laughs" inputs.
const MAX_NODES: usize = 1_000_000;
/// Upper bound on nesting depth, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// A key of a mapping, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key starts.
    pub location: Location,
}

/// A value in the tree, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: NodeValue,
    /// Where the value starts.
    pub location: Location,
}

/// The kinds of value a YAML 1.2 document holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number, including `.inf` and `.nan`.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Key, Node)>),
}

impl NodeValue {
    /// The integer, for messages (0 for anything else).
    fn as_i64_lossy(&self) -> i64 {
        match self {
            NodeValue::Int(i) => *i,
            _ => 0,
        }
    }
}

impl Node {
    /// A short name of the node's type for error messages ("a string", "a mapping").
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// The value as a number, if it is an integer or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self.value {
            NodeValue::Int(i) => Some(i as f64),
            NodeValue::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if the value is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Convert to a JSON value. Non-finite floats, which JSON cannot hold, become strings
    /// (`"inf"`, `"-inf"`, `"nan"`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            // JSON has no infinity or NaN: they become the strings Python's `str()` writes
            // (`inf`, `-inf`, `nan`), so a command receives the same text as under W&B.
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| {
                    Value::String(
                        if f.is_nan() {
                            "nan"
                        } else if *f > 0.0 {
                            "inf"
                        } else {
                            "-inf"
                        }
                        .to_string(),
                    )
                }),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// The result of reading a document: the tree (absent when the text could not be parsed) and
/// every finding on the way.
#[derive(Debug)]
pub struct Parsed {
    /// The document's root, or `None` if the text is not well-formed or empty.
    pub root: Option<Node>,
    /// Syntax errors, duplicate keys, and YAML 1.1 hazards.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse a YAML (or JSON) document.
///
/// Leniencies keep files that PyYAML accepts working: a flow collection (`[`...`]`,
/// `{`...`}`) spread over several lines whose continuation lines or closing bracket are not
/// indented past the line that opened it (`values: [` ... `]` with the `]` under `values`),
/// and `key:[...]` without a space inside a flow mapping. YAML 1.2 rejects both; when the
/// strict parse fails and the relaxed text parses, that reading is used, with a warning per
/// changed line.
pub fn parse(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let strict = parse_strict(text);
    if strict.root.is_some() {
        return strict;
    }
    let (relaxed_text, moved) = indent_flow_continuations(text);
    if moved.is_empty() {
        return strict;
    }
    let mut relaxed = parse_strict(&relaxed_text);
    if relaxed.root.is_none() {
        return strict;
    }
    for line in moved {
        relaxed.diagnostics.push(
            Diagnostic::warning(
                "",
                Some(Location::new(line, 1)),
                "this line of a `[...]` or `{...}` collection is read as PyYAML reads it, but is not valid YAML 1.2 (a line not indented past the key that opened the collection, or `key:[` without a space)",
            )
            .with_hint("indent the line further than the key, and write a space after `:`"),
        );
    }
    relaxed
}

/// A mapping with merged entries, as PyYAML builds it: the merged keys first, each taking the
/// explicit value when the mapping also sets it, then the other explicit keys in order.
fn with_merged(merged: Vec<(Key, Node)>, explicit: Vec<(Key, Node)>) -> Vec<(Key, Node)> {
    let mut explicit: Vec<Option<(Key, Node)>> = explicit.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(merged.len() + explicit.len());
    for (k, v) in merged {
        let own = explicit
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|(ek, _)| ek.name == k.name))
            .and_then(Option::take);
        out.push(own.unwrap_or((k, v)));
    }
    out.extend(explicit.into_iter().flatten());
    out
}

/// The text with the flow-collection leniencies of PyYAML applied: every line that starts
/// inside a multi-line flow collection is indented to one column past the indentation of the
/// line that opened the collection, and inside a flow collection a `:` directly followed by
/// `[` or `{` gets a space (`{values:[1, 2]}`). Returns the new text and the (1-based) numbers
/// of the lines that changed. Quotes and comments are skipped when counting brackets.
fn indent_flow_continuations(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut moved = Vec::new();
    let mut depth = 0usize;
    let mut open_indent = 0usize;
    let mut quote: Option<char> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        let mut changed = false;
        if depth > 0 && !blank && indent <= open_indent && quote.is_none() {
            out.push_str(&" ".repeat(open_indent + 1 - indent));
            changed = true;
        }
        let mut prev = ' ';
        let mut comment = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if comment {
                continue;
            }
            match quote {
                Some('\'') if c == '\'' => {
                    if chars.peek() == Some(&'\'') {
                        out.push('\'');
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                Some('"') if c == '\\' => {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                }
                Some('"') if c == '"' => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if prev == ' ' || prev == '\t' => comment = true,
                    '\'' | '"' if depth > 0 || matches!(prev, ' ' | ':') => quote = Some(c),
                    '[' | '{' => {
                        if depth == 0 {
                            open_indent = indent;
                        }
                        depth += 1;
                    }
                    ']' | '}' if depth > 0 => depth -= 1,
                    ':' if depth > 0 && matches!(chars.peek(), Some('[' | '{')) => {
                        out.push(' ');
                        changed = true;
                    }
                    _ => {}
                },
            }
            prev = c;
        }
        if changed {
            moved.push(i + 1);
        }
    }
    (out, moved)
}

fn parse_strict(text: &str) -> Parsed {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        diagnostics: Vec::new(),
        path: Vec::new(),
        nodes: 0,
    };
    let root = builder.document();
    // A parse error's general hint gives way to what explains it: an unquoted `${...}` in a
    // flow list, a bracket left open (then reported at the bracket), or the line an
    // indentation mistake started at.
    for d in &mut builder.diagnostics {
        if !d.message.starts_with("malformed YAML") {
            continue;
        }
        let Some(at) = d.location else { continue };
        if let Some(hint) = crate::unclosed::unquoted_macro(text, at.line) {
            d.hint = Some(hint);
        } else if let Some(open) = crate::unclosed::unclosed_bracket(text, at.line) {
            d.message = format!(
                "malformed YAML: this `{}` is not closed (the parser stopped at line {}, column {}: {})",
                open.bracket,
                at.line,
                at.column,
                d.message.trim_start_matches("malformed YAML: ")
            );
            d.location = Some(open.at);
            d.hint = Some(format!(
                "close it with `{}` on line {} (a `{}...{}` over several lines indents its other lines further than line {})",
                open.closer(),
                open.at.line,
                open.bracket,
                open.closer(),
                open.at.line
            ));
        } else if let Some(hint) = crate::indent::culprit(text, at.line) {
            d.hint = Some(hint);
        }
    }
    Parsed {
        root,
        diagnostics: builder.diagnostics,
    }
}

fn location(span: &Span) -> Location {
    Location::new(span.start.line(), span.start.col() + 1)
}

/// Internal signal that parsing cannot go on; the reason is already in `diagnostics`.
struct Abort;

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    diagnostics: Vec<Diagnostic>,
    path: Vec<String>,
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Abort> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => {
                let loc = Location::new(e.marker().line(), e.marker().col() + 1);
                self.diagnostics.push(
                    Diagnostic::error(
                        self.dotted(),
                        Some(loc),
                        format!("malformed YAML: {}", e.info()),
                    )
                    .with_hint("check the indentation and quoting around this line"),
                );
                Err(Abort)
            }
            None => {
                self.diagnostics.push(Diagnostic::error(
                    "",
                    None,
                    "malformed YAML: unexpected end of input",
                ));
                Err(Abort)
            }
        }
    }

    fn dotted(&self) -> String {
        self.path.join(".")
    }

    fn document(&mut self) -> Option<Node> {
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, span) = self.next().ok()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    let node = self.node(None, 0).ok()?;
                    if documents == 1 {
                        root = Some(node);
                    } else {
                        self.diagnostics.push(
                            Diagnostic::error(
                                "",
                                Some(location(&span)),
                                "the file holds more than one YAML document",
                            )
                            .with_hint(
                                "a sweep file is one document: remove the extra `---` section",
                            ),
                        );
                        return None;
                    }
                }
                _ => {
                    self.diagnostics.push(Diagnostic::error(
                        "",
                        Some(location(&span)),
                        "malformed YAML: unexpected content",
                    ));
                    return None;
                }
            }
        }
        root
    }

    fn count(&mut self, span: &Span) -> Result<(), Abort> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.diagnostics.push(Diagnostic::error(
                self.dotted(),
                Some(location(span)),
                format!("the document expands to more than {MAX_NODES} values (aliases nested too deeply?)"),
            ));
            return Err(Abort);
        }
        Ok(())
    }

    /// Read one node. `first` is an event already taken from the parser.
    fn node(&mut self, first: Option<(Event<'a>, Span)>, depth: usize) -> Result<Node, Abort> {
        let (event, span) = match first {
            Some(e) => e,
            None => self.next()?,
        };
        if depth > MAX_DEPTH {
            self.diagnostics.push(Diagnostic::error(
                self.dotted(),
                Some(location(&span)),
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
            return Err(Abort);
        }
        self.count(&span)?;
        let loc = location(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let value = self.scalar(&text, style, tag.as_deref(), loc);
                let node = Node {
                    value,
                    location: loc,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.0, Event::SequenceEnd) {
                        break;
                    }
                    self.path.push(items.len().to_string());
                    let item = self.node(Some(ev), depth + 1);
                    self.path.pop();
                    items.push(item?);
                }
                let node = Node {
                    value: NodeValue::Seq(items),
                    location: loc,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Key, Node)> = Vec::new();
                let mut merged: Vec<(Key, Node)> = Vec::new();
                loop {
                    let (kev, kspan) = self.next()?;
                    let mut is_merge = false;
                    let key = match kev {
                        Event::MappingEnd => break,
                        Event::Scalar(text, style, _, _) => {
                            is_merge = style == ScalarStyle::Plain && text == "<<";
                            Key {
                                name: text.into_owned(),
                                location: location(&kspan),
                            }
                        }
                        Event::Alias(id) => match self.anchors.get(&id) {
                            Some(Node {
                                value: NodeValue::Str(s),
                                ..
                            }) => Key {
                                name: s.clone(),
                                location: location(&kspan),
                            },
                            _ => {
                                self.diagnostics.push(Diagnostic::error(
                                    self.dotted(),
                                    Some(location(&kspan)),
                                    "a mapping key must be a plain string",
                                ));
                                return Err(Abort);
                            }
                        },
                        _ => {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    self.dotted(),
                                    Some(location(&kspan)),
                                    "a mapping key must be a plain string, not a list or mapping",
                                )
                                .with_hint("check the indentation: a value may have been written where a key belongs"),
                            );
                            return Err(Abort);
                        }
                    };
                    self.path.push(key.name.clone());
                    let value = self.node(None, depth + 1);
                    let value = value?;
                    if is_merge {
                        self.merge(&mut merged, value, key.location)?;
                        self.path.pop();
                        continue;
                    }
                    if let Some(slot) = entries.iter_mut().find(|(k, _)| k.name == key.name) {
                        // PyYAML keeps the last value at the first key's place; so do we.
                        let first_line = slot.0.location.line;
                        self.diagnostics.push(
                            Diagnostic::warning(
                                self.dotted(),
                                Some(key.location),
                                format!("duplicate key `{}` (first defined on line {first_line}): the last one is used, as in PyYAML", key.name),
                            )
                            .with_hint("keep one of the two"),
                        );
                        slot.1 = value;
                        self.path.pop();
                        continue;
                    }
                    self.path.pop();
                    entries.push((key, value));
                }
                if !merged.is_empty() {
                    entries = with_merged(merged, entries);
                }
                let node = Node {
                    value: NodeValue::Map(entries),
                    location: loc,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut copy = node.clone();
                    copy.location = loc;
                    let size = count_nodes(&copy);
                    self.nodes += size;
                    if self.nodes > MAX_NODES {
                        return self.count(&span).map(|_| copy);
                    }
                    Ok(copy)
                }
                None => {
                    self.diagnostics.push(Diagnostic::error(
                        self.dotted(),
                        Some(loc),
                        "alias refers to an unknown anchor",
                    ));
                    Err(Abort)
                }
            },
            _ => {
                self.diagnostics.push(Diagnostic::error(
                    self.dotted(),
                    Some(loc),
                    "malformed YAML: unexpected event",
                ));
                Err(Abort)
            }
        }
    }

    /// A merge key (`<<: *base` or `<<: [*a, *b]`, YAML 1.1, which PyYAML applies): add the
    /// entries of the mapping(s) to `merged`, the first source of a key winning.
    fn merge(
        &mut self,
        merged: &mut Vec<(Key, Node)>,
        value: Node,
        at: Location,
    ) -> Result<(), Abort> {
        let sources = match value.value {
            NodeValue::Map(entries) => vec![entries],
            NodeValue::Seq(items) if items.iter().all(|i| matches!(i.value, NodeValue::Map(_))) => {
                items
                    .into_iter()
                    .filter_map(|i| match i.value {
                        NodeValue::Map(entries) => Some(entries),
                        _ => None,
                    })
                    .collect()
            }
            _ => {
                self.diagnostics.push(
                    Diagnostic::error(
                        self.dotted(),
                        Some(at),
                        "a merge key `<<` takes a mapping or a list of mappings",
                    )
                    .with_hint("write `<<: *anchor` with an anchored mapping"),
                );
                return Err(Abort);
            }
        };
        for entries in sources {
            for (k, v) in entries {
                if !merged.iter().any(|(m, _)| m.name == k.name) {
                    merged.push((k, v));
                }
            }
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&str>,
        loc: Location,
    ) -> NodeValue {
        if let Some(tag) = tag {
            return self.tagged(text, tag, loc);
        }
        if style != ScalarStyle::Plain {
            return NodeValue::Str(text.to_string());
        }
        if let Some(v) = resolve_plain(text) {
            if is_leading_zero_int(text) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        self.dotted(),
                        Some(loc),
                        format!("`{text}` is read as the decimal number {} (PyYAML, which W&B uses, reads a leading zero as octal)", v.as_i64_lossy()),
                    )
                    .with_hint("drop the leading zero, or quote the value to keep a string"),
                );
            }
            return v;
        }
        if let Some(v) = resolve_yaml11(text) {
            return v;
        }
        if is_sexagesimal(text) {
            self.diagnostics.push(
                Diagnostic::warning(
                    self.dotted(),
                    Some(loc),
                    format!("`{text}` is read as a string (PyYAML, which W&B uses, reads it as a base-60 integer)"),
                )
                .with_hint("quote the value to say it is a string"),
            );
        }
        NodeValue::Str(text.to_string())
    }

    fn tagged(&mut self, text: &str, tag: &str, loc: Location) -> NodeValue {
        let resolved = resolve_plain(text);
        let value = match tag {
            "tag:yaml.org,2002:str" | "!!str" => Some(NodeValue::Str(text.to_string())),
            "tag:yaml.org,2002:float" | "!!float" => match resolved {
                Some(NodeValue::Int(i)) => Some(NodeValue::Float(i as f64)),
                Some(v @ NodeValue::Float(_)) => Some(v),
                _ => None,
            },
            "tag:yaml.org,2002:int" | "!!int" => match resolved {
                Some(v @ NodeValue::Int(_)) => Some(v),
                _ => None,
            },
            "tag:yaml.org,2002:bool" | "!!bool" => match resolved {
                Some(v @ NodeValue::Bool(_)) => Some(v),
                _ => None,
            },
            "tag:yaml.org,2002:null" | "!!null" => match resolved {
                Some(NodeValue::Null) => Some(NodeValue::Null),
                _ => None,
            },
            _ => {
                self.diagnostics.push(
                    Diagnostic::error(self.dotted(), Some(loc), format!("unsupported YAML tag `{tag}`"))
                        .with_hint("only the standard tags !!str, !!int, !!float, !!bool and !!null are allowed"),
                );
                return NodeValue::Str(text.to_string());
            }
        };
        value.unwrap_or_else(|| {
            self.diagnostics.push(Diagnostic::error(
                self.dotted(),
                Some(loc),
                format!("`{text}` is not a valid value for the tag `{tag}`"),
            ));
            NodeValue::Str(text.to_string())
        })
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        NodeValue::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeValue::Map(entries) => entries.iter().map(|(_, v)| count_nodes(v)).sum(),
        _ => 0,
    }
}

/// Resolve a plain scalar with the YAML 1.2 core schema; `None` means it is a string.
pub fn resolve_plain(text: &str) -> Option<NodeValue> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(NodeValue::Null),
        "true" | "True" | "TRUE" => return Some(NodeValue::Bool(true)),
        "false" | "False" | "FALSE" => return Some(NodeValue::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(NodeValue::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(NodeValue::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(NodeValue::Float(f64::NAN)),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(NodeValue::Int);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(NodeValue::Int);
    }
    let bytes = text.as_bytes();
    let body = match bytes.first() {
        Some(b'+') | Some(b'-') => &text[1..],
        _ => text,
    };
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            Ok(i) => Some(NodeValue::Int(i)),
            // Too large for 64 bits: keep the magnitude as a float rather than fail.
            Err(_) => text.parse::<f64>().ok().map(NodeValue::Float),
        };
    }
    if is_core_float(body) {
        // Rust does not accept a bare trailing dot before the exponent (`6.e-5`).
        let normalized = text.replacen(".e", ".0e", 1).replacen(".E", ".0E", 1);
        return normalized.parse::<f64>().ok().map(NodeValue::Float);
    }
    None
}

/// The YAML 1.1 readings of PyYAML that the core schema lacks and that authors mean:
/// `yes`/`no`/`on`/`off` booleans, `0b` binary integers, and digits grouped with `_`
/// (`1_000`, `0.000_1`). `None` means a string.
pub fn resolve_yaml11(text: &str) -> Option<NodeValue> {
    match text {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(NodeValue::Bool(true)),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(NodeValue::Bool(false)),
        _ => {}
    }
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    if let Some(bits) = body.strip_prefix("0b") {
        let digits: String = bits.chars().filter(|&c| c != '_').collect();
        if digits.is_empty() || !bits.chars().all(|c| matches!(c, '0' | '1' | '_')) {
            return None;
        }
        return i64::from_str_radix(&digits, 2)
            .ok()
            .map(|i| NodeValue::Int(sign * i));
    }
    // Underscores between digits: PyYAML allows them anywhere after the first digit.
    if body.contains('_') && body.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let joined: String = text.chars().filter(|&c| c != '_').collect();
        return match resolve_plain(&joined) {
            Some(v @ (NodeValue::Int(_) | NodeValue::Float(_))) => Some(v),
            _ => None,
        };
    }
    None
}

/// An integer written with a leading zero (`010`, `-007`), which PyYAML reads as octal (or,
/// with an 8 or 9, as a string) and YAML 1.2 as decimal.
fn is_leading_zero_int(text: &str) -> bool {
    let body = text.trim_start_matches(['+', '-']);
    body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit())
}

/// PyYAML's base-60 integers: `1:30`, `-2:05:00` (`[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`).
fn is_sexagesimal(text: &str) -> bool {
    let body = text.trim_start_matches(['+', '-']);
    let mut parts = body.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head
        .as_bytes()
        .first()
        .is_some_and(|b| (b'1'..=b'9').contains(b))
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mut tail = 0;
    for part in parts {
        tail += 1;
        let ok = (1..=2).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u32>().is_ok_and(|n| n < 60);
        if !ok {
            return false;
        }
    }
    head_ok && tail > 0
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's float pattern
/// (without the sign, already stripped).
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = digits(&mut i);
    } else if int_digits == 0 {
        return false;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let parsed = parse(text);
        assert!(
            parsed.diagnostics.iter().all(|d| !d.is_error()),
            "{:?}",
            parsed.diagnostics
        );
        parsed.root.expect("a document")
    }

    #[test]
    fn core_schema_numbers() {
        for (text, want) in [
            ("1e-5", 1e-5),
            ("6.e-5", 6e-5),
            ("-2.5", -2.5),
            (".5", 0.5),
            ("1.", 1.0),
            ("2.0E+3", 2000.0),
        ] {
            assert_eq!(resolve_plain(text), Some(NodeValue::Float(want)), "{text}");
        }
        assert_eq!(resolve_plain("42"), Some(NodeValue::Int(42)));
        assert_eq!(resolve_plain("-7"), Some(NodeValue::Int(-7)));
        assert_eq!(resolve_plain("0x1f"), Some(NodeValue::Int(31)));
        for s in ["1e", "e5", ".", "1.2.3", "1_000", "None", "nan", "1,5"] {
            assert_eq!(resolve_plain(s), None, "{s}");
        }
    }

    #[test]
    fn locations_are_one_based() {
        let node = root("a: 1\nb:\n  c: [1, 2]\n");
        let map = node.as_map().unwrap();
        assert_eq!(map[1].0.location, Location::new(2, 1));
        let inner = map[1].1.as_map().unwrap();
        assert_eq!(inner[0].0.location, Location::new(3, 3));
        assert_eq!(inner[0].1.location, Location::new(3, 6));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_with_a_warning() {
        let parsed = parse("epochs:\n  values: [1]\n  other: 2\n  values: [3]\n");
        let w = &parsed.diagnostics[0];
        assert!(!w.is_error(), "{w:?}");
        assert_eq!(w.path, "epochs.values");
        assert_eq!(w.location, Some(Location::new(4, 3)));
        assert!(w.message.contains("duplicate key"));
        let root = parsed.root.expect("read like PyYAML");
        let epochs = root.as_map().unwrap()[0].1.as_map().unwrap().to_vec();
        let keys: Vec<&str> = epochs.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(keys, ["values", "other"]);
        assert_eq!(epochs[0].1.to_json(), serde_json::json!([3]));
    }

    #[test]
    fn quoted_stays_string_and_tags_apply() {
        let node = root("a: '1'\nb: !!float 3\nc: !!str 1e3\n");
        let map = node.as_map().unwrap();
        assert_eq!(map[0].1.value, NodeValue::Str("1".into()));
        assert_eq!(map[1].1.value, NodeValue::Float(3.0));
        assert_eq!(map[2].1.value, NodeValue::Str("1e3".into()));
    }

    #[test]
    fn yaml11_scalars_are_read_like_pyyaml() {
        let node = root("a: yes\nb: Off\nc: ON\nd: n\ne: y\nf: 1_000\ng: 0.000_1\nh: 0b101\ni: -0b11\nj: 1e-5\nk: 0o17\n");
        let got: Vec<serde_json::Value> = node
            .as_map()
            .unwrap()
            .iter()
            .map(|(_, v)| v.to_json())
            .collect();
        use serde_json::json;
        assert_eq!(
            got,
            [
                json!(true),
                json!(false),
                json!(true),
                json!("n"),
                json!("y"),
                json!(1000),
                json!(0.0001),
                json!(5),
                json!(-3),
                json!(1e-5),
                json!(15)
            ]
        );
        // Readings authors rarely mean are not followed, with a warning each.
        let parsed = parse("a: 010\nb: 1:30\nc: '010'\n");
        let map = parsed.root.as_ref().unwrap().as_map().unwrap().to_vec();
        assert_eq!(map[0].1.value, NodeValue::Int(10));
        assert_eq!(map[1].1.value, NodeValue::Str("1:30".into()));
        let paths: Vec<&str> = parsed.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["a", "b"]);
        assert!(parsed.diagnostics.iter().all(|d| !d.is_error()));
        assert!(parsed.diagnostics[0].message.contains("decimal number 10"));
    }

    #[test]
    fn flow_collections_closed_at_the_keys_column_are_read() {
        let text = "parameters:\n  lr:\n    values: [\n      0.1, 0.01\n    ]\n  wd:\n    values: {\n  a: 1 }\nmethod: grid # a [ in a comment\nname: 'x]'\n";
        let parsed = parse(text);
        let root = parsed.root.expect("relaxed parse");
        let map = root.as_map().unwrap();
        assert_eq!(
            map[0].1.to_json(),
            serde_json::json!({"lr": {"values": [0.1, 0.01]}, "wd": {"values": {"a": 1}}})
        );
        assert_eq!(map[1].0.location, Location::new(9, 1));
        assert_eq!(map[2].1.to_json(), serde_json::json!("x]"));
        let lines: Vec<usize> = parsed
            .diagnostics
            .iter()
            .map(|d| d.location.unwrap().line)
            .collect();
        assert_eq!(lines, [5, 8]);
        // Still malformed when indenting does not help.
        assert!(parse("a: [1, 2\nb: 3\n").root.is_none());
    }

    #[test]
    fn json_is_read_too() {
        let node = root(
            "{\"method\": \"grid\", \"parameters\": {\"x\": {\"values\": [1, 2.5, null, true]}}}",
        );
        assert_eq!(node.as_map().unwrap()[0].1.as_str(), Some("grid"));
    }

    #[test]
    fn malformed_yaml_reports_position() {
        let parsed = parse("a: [1, 2\nb: 3\n");
        assert!(parsed.root.is_none());
        let err = &parsed.diagnostics[0];
        assert!(err.message.starts_with("malformed YAML"));
        assert!(err.location.is_some());
    }

    #[test]
    fn a_parse_error_names_the_line_an_indentation_mistake_started_at() {
        let text = "parameters:\n  lr:\n    distribution: uniform\n   min: 0.1\n    max: 1\n";
        let parsed = parse(text);
        let err = &parsed.diagnostics[0];
        assert!(err.message.starts_with("malformed YAML"), "{err:?}");
        let hint = err.hint.as_deref().unwrap_or_default();
        assert!(
            hint.starts_with("line 4 (`min:`) is indented 3 spaces"),
            "{hint}"
        );
    }

    #[test]
    fn closing_bracket_at_column_one_is_accepted_with_a_warning() {
        let parsed = parse("command: [\n    \"python\", \"x.py\"\n]\nmethod: grid\n");
        let root = parsed.root.expect("relaxed parse");
        assert_eq!(root.as_map().unwrap()[1].0.location, Location::new(4, 1));
        let w = &parsed.diagnostics[0];
        assert!(
            !w.is_error() && w.location == Some(Location::new(3, 1)),
            "{w:?}"
        );
    }

    #[test]
    fn merge_keys_and_flow_colons_are_read_like_pyyaml() {
        let node = root("base: &b {min: 0, max: 1}\nx:\n  <<: *b\n  max: 5\ny:\n  <<: [{a: 1}, {a: 2, b: 3}]\n  c: 4\n");
        let map = node.as_map().unwrap();
        assert_eq!(map[1].1.to_json(), serde_json::json!({"min": 0, "max": 5}));
        let y = map[2].1.as_map().unwrap();
        let keys: Vec<&str> = y.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(
            map[2].1.to_json(),
            serde_json::json!({"a": 1, "b": 3, "c": 4})
        );
        assert!(parse("x:\n  <<: 3\n").diagnostics[0]
            .message
            .contains("merge key"));
        // `values:[1, 2]` inside a flow mapping: PyYAML reads a key and a list.
        let parsed = parse("a: {values:[1, 2], b: {c:{d: 1}}}\n");
        assert_eq!(
            parsed.root.expect("relaxed").to_json(),
            serde_json::json!({"a": {"values": [1, 2], "b": {"c": {"d": 1}}}})
        );
        assert_eq!(parsed.diagnostics.len(), 1);
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
            text.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let parsed = parse(&text);
        assert!(parsed.diagnostics.iter().any(|d| d.is_error()));
    }
}
