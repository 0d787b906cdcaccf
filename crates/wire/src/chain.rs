//! How an error is said in a log line or a message, with everything that caused it.

/// `err`'s message followed by its sources, joined by `": "`, each said once: a source whose
/// text the message already holds (many errors repeat their source's words) is left out.
/// Libraries such as `reqwest`, `hyper` and `sqlx` put the useful part (a refused connection,
/// the database's own words) in a source, which `Display` of the outer error leaves out.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "connection refused");
/// let outer = std::io::Error::new(std::io::ErrorKind::Other, io);
/// // An error that says its source's text says it once.
/// assert_eq!(hyperdial_wire::error_chain(&outer), "connection refused");
/// ```
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<Box<Wrapped>>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn every_source_is_said_once_in_order() {
        let inner = Wrapped("connection refused", None);
        let middle = Wrapped("error trying to connect", Some(Box::new(inner)));
        let outer = Wrapped("request failed", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "request failed: error trying to connect: connection refused"
        );
        let repeats = Wrapped(
            "pool timed out: connection refused",
            Some(Box::new(Wrapped("connection refused", None))),
        );
        assert_eq!(error_chain(&repeats), "pool timed out: connection refused");
    }
}
