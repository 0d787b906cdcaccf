//! The API tokens a server accepts: several at once, so a team can rotate its token without
//! stopping the server (add the new token, move the clients over, remove the old one), read
//! from `--token` and from a token file, and replaceable while the server runs (the CLI
//! re-reads its token file on SIGHUP).
//!
//! A request's token is compared with every accepted token in time independent of where the
//! bytes differ, and without stopping at the first match, so the answer's timing does not
//! tell which prefix of a token was right.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Fewer characters than this make a token weak ([`weakness`]).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Fewer distinct characters than this make a token weak ([`weakness`]): `aaaaaaaaaaaaaaaa`,
/// `1212121212121212`.
pub const MIN_DISTINCT_CHARS: usize = 6;

/// How to make a strong token, for messages.
pub const MAKE_A_TOKEN: &str = "`openssl rand -hex 32` or \
     `python3 -c \"import secrets; print(secrets.token_hex(32))\"`";

/// The set of accepted tokens, shared by every request and replaceable as a whole
/// ([`Tokens::replace`]). Empty: the server has no token (loopback only, see [`crate::guard`]).
#[derive(Clone, Default)]
pub struct Tokens(Arc<RwLock<Arc<[String]>>>);

impl std::fmt::Debug for Tokens {
    // Never the tokens themselves: options are printed in logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} accepted)", self.len())
    }
}

impl Tokens {
    /// Accept `tokens`; empty ones are dropped (an empty `--token` means none).
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Tokens {
        Tokens(Arc::new(RwLock::new(Self::cleaned(
            tokens.into_iter().collect(),
        ))))
    }

    fn cleaned(tokens: Vec<String>) -> Arc<[String]> {
        tokens.into_iter().filter(|t| !t.is_empty()).collect()
    }

    /// The tokens accepted now.
    fn current(&self) -> Arc<[String]> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Accept `tokens` instead of the tokens accepted so far (empty ones are dropped).
    pub fn replace(&self, tokens: impl IntoIterator<Item = String>) {
        let tokens = Self::cleaned(tokens.into_iter().collect());
        match self.0.write() {
            Ok(mut guard) => *guard = tokens,
            Err(poisoned) => *poisoned.into_inner() = tokens,
        }
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// Whether no token is accepted (a tokenless server).
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Whether `given` is one of the accepted tokens. Every token is compared, each in time
    /// that depends on the lengths only.
    pub fn accepts(&self, given: &str) -> bool {
        let mut found = false;
        for token in self.current().iter() {
            found |= constant_time_eq(given.as_bytes(), token.as_bytes());
        }
        found
    }
}

/// Whether `a` and `b` are equal, looking at every byte of `a` whatever the contents.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        // Past the end of `b`, compare with a byte that the length check already failed.
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// Why `token` is weak, or `None`: fewer than [`MIN_TOKEN_CHARS`] characters, or fewer than
/// [`MIN_DISTINCT_CHARS`] distinct ones. Never says the token itself.
pub fn weakness(token: &str) -> Option<String> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Some(format!(
            "it has {chars} characters; a token needs at least {MIN_TOKEN_CHARS}"
        ));
    }
    let mut distinct: Vec<char> = token.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Some(format!(
            "it has only {} distinct characters; a token needs at least {MIN_DISTINCT_CHARS}",
            distinct.len()
        ));
    }
    None
}

/// Why no client can send `token` in an `Authorization: Bearer` header, or `None`: a token is
/// printable ASCII without spaces (HTTP trims a header value's surrounding whitespace, so a
/// token of spaces, or ending in one, would never match what arrives).
pub fn unsendable(token: &str) -> Option<&'static str> {
    if token.chars().any(char::is_whitespace) {
        return Some("it holds a space or other whitespace, which a client cannot send in an `Authorization` header; a token is printable ASCII without spaces");
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Some("a character a client cannot send in an `Authorization` header; a token is printable ASCII");
    }
    None
}

/// A token of a token file and the line it is on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToken {
    /// The line of the file, counted from 1.
    pub line: usize,
    /// The token.
    pub token: String,
}

/// What is wrong with a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read.
    ///
    /// The cause is part of the message and not also a `source()`: a report that prints the
    /// chain of causes (`anyhow`'s `{:#}`) would say it twice.
    #[error("cannot read the token file {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A line is not a token a client could send.
    #[error("{}:{line}: {why}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The file holds no token.
    #[error(
        "the token file {} holds no token: write one token per line (`#` comments and blank \
         lines are ignored); make one with {MAKE_A_TOKEN}",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The tokens of the file at `path`: one per line, surrounding spaces ignored, as are blank
/// lines and lines starting with `#`. A line holding anything a client cannot send as a
/// bearer token (a space inside, a non-ASCII or control character) is an error naming the
/// line, since that token could never match; so is a file without any token.
pub fn read_token_file(path: &Path) -> Result<Vec<FileToken>, TokenFileError> {
    let bytes = std::fs::read(path).map_err(|cause| TokenFileError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut tokens = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let bad = |why: &str| TokenFileError::Line {
            path: path.to_path_buf(),
            line,
            why: why.to_string(),
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| bad("not UTF-8 text; a token is printable ASCII"))?
            .trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if text.chars().any(char::is_whitespace) {
            return Err(bad(
                "a space inside the token; write one token per line (a `#` comment needs a \
                 line of its own)",
            ));
        }
        if let Some(why) = unsendable(text) {
            return Err(bad(why));
        }
        tokens.push(FileToken {
            line,
            token: text.to_string(),
        });
    }
    if tokens.is_empty() {
        return Err(TokenFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_token_opens_and_others_do_not() {
        let tokens = Tokens::new(["old-token-0123456789".to_string(), "new".to_string()]);
        assert!(tokens.accepts("old-token-0123456789"));
        assert!(tokens.accepts("new"));
        for wrong in [
            "",
            "ne",
            "newer",
            "old-token-012345678",
            "old-token-0123456789x",
        ] {
            assert!(!tokens.accepts(wrong), "{wrong}");
        }
        tokens.replace(["new".to_string()]);
        assert!(!tokens.accepts("old-token-0123456789"));
        assert!(tokens.accepts("new"));
        assert_eq!(tokens.len(), 1);
        assert!(Tokens::new([String::new()]).is_empty());
        assert!(unsendable("   ").is_some());
        assert!(unsendable("abc def").is_some());
        assert!(unsendable("tok\u{e9}n").is_some());
        assert_eq!(unsendable("Zq8-7xY_0pLm"), None);
        assert_eq!(format!("{tokens:?}"), "Tokens(1 accepted)");
    }

    #[test]
    fn short_or_repetitive_tokens_are_weak() {
        assert!(weakness("secret").unwrap().contains("6 characters"));
        assert!(weakness("aaaaaaaaaaaaaaaaaaaa")
            .unwrap()
            .contains("1 distinct"));
        assert!(weakness("1212121212121212").unwrap().contains("2 distinct"));
        assert_eq!(weakness("3f9a0c7b1e2d4a5b6c7d8e9f"), None);
        assert!(!weakness("hunter2").unwrap().contains("hunter2"));
    }

    fn file(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_token_file_lists_tokens_with_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "ok",
            b"# rotated 2026-11\n\n  first-token-abcdef  \r\n\t# old one below\nsecond-token\n",
        );
        let tokens = read_token_file(&path).unwrap();
        assert_eq!(
            tokens,
            vec![
                FileToken {
                    line: 3,
                    token: "first-token-abcdef".into()
                },
                FileToken {
                    line: 5,
                    token: "second-token".into()
                },
            ]
        );
    }

    #[test]
    fn a_bad_token_file_names_the_file_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let empty = file(&dir, "empty", b"# nothing yet\n\n");
        let e = read_token_file(&empty).unwrap_err().to_string();
        assert!(e.contains("holds no token") && e.contains("empty"), "{e}");
        let spaced = file(&dir, "spaced", b"good-token\nbad token # a comment\n");
        let e = read_token_file(&spaced).unwrap_err().to_string();
        assert!(e.contains("spaced:2: a space inside"), "{e}");
        let binary = file(&dir, "binary", b"ok\n\xff\xfe\n");
        let e = read_token_file(&binary).unwrap_err().to_string();
        assert!(e.contains("binary:2: not UTF-8"), "{e}");
        let accented = file(&dir, "accented", "tok\u{e9}n\n".as_bytes());
        let e = read_token_file(&accented).unwrap_err().to_string();
        assert!(e.contains("accented:1:"), "{e}");
        let missing = empty.with_file_name("missing");
        let err = read_token_file(&missing).unwrap_err();
        let e = err.to_string();
        assert!(
            e.contains("cannot read the token file") && e.contains("missing"),
            "{e}"
        );
        // The OS error is said once: in the message, not again as a cause that a report of
        // the chain of causes (`anyhow`'s `{:#}`) would append.
        assert_eq!(e.matches("os error").count(), 1, "{e}");
        assert!(std::error::Error::source(&err).is_none(), "{e}");
    }
}
