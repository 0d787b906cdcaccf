//! URLs shown to people: a server's or a database's, with its password hidden.

/// `url` with its password replaced by `***`, to be shown (logs, startup lines, messages):
/// the password of its `user:password@` part, and a `password=` parameter of its query
/// string (`postgres://db/h?password=...`). The rest, user name included, is kept. Text
/// without a `scheme://` (a file path) is returned as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The authority ends at the first '/', '?' or '#'; the user part ends at its last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = format!("{scheme}://");
    match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(path);
            out.push('?');
            out.push_str(&query.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://hd:s3cr@t@db.lan:5432/hyperdial"),
            "postgres://hd:***@db.lan:5432/hyperdial"
        );
        assert_eq!(
            redact_url("https://me:secret@h:8337"),
            "https://me:***@h:8337"
        );
        assert_eq!(
            redact_url("postgres://hd@db.lan/h"),
            "postgres://hd@db.lan/h"
        );
        assert_eq!(
            redact_url("postgres://db.lan/h?user=hd&password=x&sslmode=require"),
            "postgres://db.lan/h?user=hd&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@db/h?PASSWORD=y"),
            "postgres://u:***@db/h?PASSWORD=***"
        );
        // An '@' after the authority is no user part.
        assert_eq!(redact_url("http://h:1/x@y"), "http://h:1/x@y");
        assert_eq!(redact_url("http://h:1?x=a@b"), "http://h:1?x=a@b");
        assert_eq!(redact_url("http://127.0.0.1:8337"), "http://127.0.0.1:8337");
        assert_eq!(redact_url("/plain/path.db"), "/plain/path.db");
        assert_eq!(redact_url(""), "");
    }
}
