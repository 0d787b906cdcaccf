//! A YAML 1.2 document tree that remembers where every key and value came from.
//!
//! Validation needs the line and column of each offending value, which serde-based loaders
//! throw away. This module drives the event parser of `saphyr-parser` and builds a small tree of
//! [`Node`]s, each with its [`Location`]. JSON is read by the same code: it is a subset of
//! YAML 1.2 flow syntax, so both formats get the same precise errors.
//!
//! Scalars are resolved with the YAML 1.2 core schema, so `1e-5` is a float (PyYAML, which
//! implements YAML 1.1, reads it as a string). Plain `yes`, `no`, `on` and `off` are strings
//! under YAML 1.2 but booleans under PyYAML; they stay strings here and raise a warning.
//! Duplicate keys are errors (PyYAML silently keeps the last one).

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
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
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

/// Parse a YAML 1.2 (or JSON) document.
///
/// One leniency keeps files that PyYAML accepts working: a flow collection whose closing
/// bracket sits at column 1 under a top-level key (`command: [` ... `]`). YAML 1.2 requires
/// flow content to be indented; when the strict parse fails and indenting those brackets by
/// one space makes it succeed, that reading is used, with a warning.
pub fn parse(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let strict = parse_strict(text);
    if strict.root.is_some()
        || !text
            .lines()
            .any(|l| l.starts_with(']') || l.starts_with('}'))
    {
        return strict;
    }
    let mut moved = Vec::new();
    let relaxed_text: String = text
        .split_inclusive('\n')
        .enumerate()
        .map(|(i, line)| {
            if line.starts_with(']') || line.starts_with('}') {
                moved.push(i + 1);
                format!(" {line}")
            } else {
                line.to_string()
            }
        })
        .collect();
    let mut relaxed = parse_strict(&relaxed_text);
    if relaxed.root.is_none() {
        return strict;
    }
    for line in moved {
        relaxed.diagnostics.push(
            Diagnostic::warning(
                "",
                Some(Location::new(line, 1)),
                "a closing bracket at column 1 is not valid YAML 1.2 (PyYAML accepts it)",
            )
            .with_hint("indent the bracket by at least one space"),
        );
    }
    relaxed
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
                loop {
                    let (kev, kspan) = self.next()?;
                    let key = match kev {
                        Event::MappingEnd => break,
                        Event::Scalar(text, _, _, _) => Key {
                            name: text.into_owned(),
                            location: location(&kspan),
                        },
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
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == key.name) {
                        let first_line = first.location.line;
                        self.diagnostics.push(
                            Diagnostic::error(
                                self.dotted(),
                                Some(key.location),
                                format!("duplicate key `{}` (first defined on line {first_line})", key.name),
                            )
                            .with_hint("keep one of the two; PyYAML silently uses the last, which hides mistakes"),
                        );
                    }
                    self.path.pop();
                    entries.push((key, value?));
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
            return v;
        }
        if matches!(
            text,
            "yes"
                | "Yes"
                | "YES"
                | "no"
                | "No"
                | "NO"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
                | "y"
                | "n"
        ) {
            self.diagnostics.push(
                Diagnostic::warning(
                    self.dotted(),
                    Some(loc),
                    format!("`{text}` is the string \"{text}\" under YAML 1.2 (PyYAML reads it as a boolean)"),
                )
                .with_hint("write true or false for a boolean, or quote the value to keep a string"),
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
    fn duplicate_keys_are_errors() {
        let parsed = parse("epochs:\n  values: [1]\n  values: [2]\n");
        let err = parsed.diagnostics.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(err.path, "epochs.values");
        assert_eq!(err.location, Some(Location::new(3, 3)));
        assert!(err.message.contains("duplicate key"));
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
    fn yaml11_booleans_warn() {
        let parsed = parse("flag: yes\n");
        assert!(parsed
            .diagnostics
            .iter()
            .any(|d| !d.is_error() && d.path == "flag"));
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
