//! Query strings of the `/api/v1` routes: one extractor, one kind of error for all of them.
//!
//! A route that reads a query string declares each parameter it takes and the form of its
//! value ([`QueryParams::PARAMS`]); [`Params`] extracts it. Every mistake is a `400` whose
//! message names the parameter, the value given and what the parameter takes:
//!
//! - a parameter the route does not take: `unknown query parameter `max_point`; this route
//!   takes keys (…), max_points (…), after_step (…)`;
//! - a parameter given twice: `query parameter `limit` is given twice`;
//! - a value that does not parse, or lies outside its range ([`QueryParams::check`]):
//!   `query parameter `max_points`: `-1` is not allowed; it takes an integer from 10 to
//!   100000`.
//!
//! Values are quoted as given (at most 64 characters of them). The routes whose parameters
//! repeat or hold small languages of their own (`GET /runs`, `/history/columns`) parse their
//! query by hand and answer the same messages through [`invalid`], [`unknown`] and [`twice`].
//!
//! A filter that names a sweep (`GET /runs?sweep=ID`, `GET /events?sweep=ID`) must name one
//! that exists: an unknown id is a `404` naming it and how to list the sweeps
//! ([`existing_sweep`]), not an empty answer that looks like a sweep without runs yet. Sweeps
//! are never deleted, so a sweep found once stays found.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// One parameter of a route's query string.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, as written in the query string.
    pub name: &'static str,
    /// What its value may be, as a message says it: `an integer from 10 to 100000`.
    pub form: &'static str,
}

/// The parameters of one route's query string, deserialized by `serde` (every field
/// optional: each parameter is read alone first, so the one that does not parse is known).
pub trait QueryParams: DeserializeOwned {
    /// Every parameter the route takes; any other is refused.
    const PARAMS: &'static [Param];

    /// Checks beyond the values' types (ranges), each failure an [`invalid`] error.
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The query of a route that takes no parameters: any parameter is refused, rather than
/// ignored (a misspelt option must not look as if it had been applied).
#[derive(Debug, serde::Deserialize)]
pub struct NoQuery {}

impl QueryParams for NoQuery {
    const PARAMS: &'static [Param] = &[];
}

/// A query string whose every mistake is a JSON `400` naming the parameter, the value and
/// the form it takes (see the module docs).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: QueryParams> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse::<T>(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// The query string `raw` (without the `?`) as `T`, or the `400` of its first mistake.
pub fn parse<T: QueryParams>(raw: &str) -> Result<T, ApiError> {
    let mut seen = HashSet::new();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        let Some(param) = T::PARAMS.iter().find(|p| p.name == name) else {
            return Err(unknown(&name, T::PARAMS));
        };
        if !seen.insert(param.name) {
            return Err(twice(param.name));
        }
        let alone = form_urlencoded::Serializer::new(String::new())
            .append_pair(param.name, &value)
            .finish();
        if serde_urlencoded::from_str::<T>(&alone).is_err() {
            return Err(invalid(param, &value));
        }
    }
    let parsed = serde_urlencoded::from_str::<T>(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    parsed.check()?;
    Ok(parsed)
}

/// Up to 64 characters of a value or name given, for a message.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The `400` of a value `param` does not take.
pub fn invalid(param: &Param, value: &str) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter `{}`: `{}` is not allowed; it takes {}",
        param.name,
        shown(value),
        param.form
    ))
}

/// The `400` of a parameter the route does not take, listing those it takes.
pub fn unknown(name: &str, params: &[Param]) -> ApiError {
    let takes = if params.is_empty() {
        "this route takes no query parameters".to_string()
    } else {
        let list: Vec<String> = params
            .iter()
            .map(|p| format!("{} ({})", p.name, p.form))
            .collect();
        format!("this route takes {}", list.join(", "))
    };
    ApiError::bad_request(format!(
        "unknown query parameter `{}`; {takes}",
        shown(name)
    ))
}

/// The sweep that query parameter `param` names, when it exists; else the `404` that names
/// the id and says how to list the sweeps (`GET /api/v1/sweeps`, `hyperdial sweeps`), and an
/// empty id is the `400` of a value the parameter does not take.
pub async fn existing_sweep(
    controller: &crate::controller::Controller,
    param: &Param,
    id: &str,
) -> Result<hyperdial_store::SweepRow, ApiError> {
    if id.is_empty() {
        return Err(invalid(param, id));
    }
    if let Some(row) = controller.store().sweep(id).await? {
        return Ok(row);
    }
    Err(ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!(
            "query parameter `{}`: no sweep with id `{}` on this server; list the sweeps with \
             `GET /api/v1/sweeps` (or `hyperdial sweeps`)",
            param.name,
            shown(id)
        ),
    ))
}

/// The `400` of a parameter given twice (one that takes one value).
pub fn twice(name: &str) -> ApiError {
    ApiError::bad_request(format!("query parameter `{name}` is given twice"))
}

/// The [`Param`] named `name` of `T` (a programming error when there is none: a
/// placeholder then, so a message is still answered).
pub fn param<T: QueryParams>(name: &str) -> &'static Param {
    const NONE: Param = Param {
        name: "?",
        form: "nothing (the route takes no query parameters)",
    };
    T::PARAMS.iter().find(|p| p.name == name).unwrap_or(&NONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Q {
        n: Option<u32>,
        flag: Option<bool>,
        name: Option<String>,
    }

    impl QueryParams for Q {
        const PARAMS: &'static [Param] = &[
            Param {
                name: "n",
                form: "an integer from 1 to 9",
            },
            Param {
                name: "flag",
                form: "true or false",
            },
            Param {
                name: "name",
                form: "any text",
            },
        ];

        fn check(&self) -> Result<(), ApiError> {
            match self.n {
                Some(n) if !(1..=9).contains(&n) => Err(invalid(param::<Q>("n"), &n.to_string())),
                _ => Ok(()),
            }
        }
    }

    fn message(raw: &str) -> String {
        let err = parse::<Q>(raw).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{raw}");
        err.message().to_string()
    }

    #[test]
    fn a_good_query_parses() {
        assert_eq!(
            parse::<Q>("n=3&flag=true&name=a%20b").unwrap(),
            Q {
                n: Some(3),
                flag: Some(true),
                name: Some("a b".into())
            }
        );
        assert_eq!(
            parse::<Q>("").unwrap(),
            Q {
                n: None,
                flag: None,
                name: None
            }
        );
    }

    #[test]
    fn every_mistake_names_the_parameter_the_value_and_the_form() {
        let m = message("n=-1");
        assert!(
            m.contains("`n`") && m.contains("`-1`") && m.contains("an integer from 1 to 9"),
            "{m}"
        );
        // Out of range: the type parses, the check refuses it.
        let m = message("n=12");
        assert!(
            m.contains("`n`") && m.contains("`12`") && m.contains("1 to 9"),
            "{m}"
        );
        let m = message("flag=maybe");
        assert!(
            m.contains("`flag`") && m.contains("`maybe`") && m.contains("true or false"),
            "{m}"
        );
        let m = message("nn=1");
        assert!(
            m.contains("`nn`") && m.contains("n (an integer from 1 to 9)") && m.contains("flag"),
            "{m}"
        );
        let m = message("n=1&n=2");
        assert!(m.contains("`n` is given twice"), "{m}");
        // A long value is cut in the message.
        let m = message(&format!("n={}", "9".repeat(500)));
        assert!(m.len() < 200, "{m}");
    }
}
