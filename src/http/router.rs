//! Matches request paths against the generated route table.
//!
//! Each route is served under its document's basePath; a basePath that is one
//! of the client API prefixes is served under all of them, because today's
//! clients speak `/_matrix/client/v3` (and older ones `r0`) while the seed
//! says `/_matrix/client/api/v1`.

use crate::generated::routes::{Operation, Route, ROUTES};
use percent_encoding::percent_decode_str;

/// The client API prefixes that are interchangeable.
pub const CLIENT_API_PREFIXES: &[&str] = &["/_matrix/client/api/v1", "/_matrix/client/r0", "/_matrix/client/v3"];

/// The outcome of matching one request.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// An operation, with its percent-decoded path parameters.
    Found {
        operation: Operation,
        params: Vec<(String, String)>,
    },
    /// The path exists, not for this method; the methods it has.
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    /// A path parameter was empty (`/rooms//join`).
    EmptyParam {
        name: String,
    },
    /// A path segment is not valid percent-encoded UTF-8, or holds U+0000.
    BadEncoding,
    NotFound,
}

/// The route table plus the prefix rule, with each template split once.
pub struct Router {
    routes: Vec<Compiled>,
}

/// A route with its template split into parts.
struct Compiled {
    route: &'static Route,
    parts: Vec<Part>,
}

enum Part {
    Literal(&'static str),
    Param(&'static str),
}

impl Compiled {
    fn new(route: &'static Route) -> Self {
        let parts = route
            .template
            .trim_start_matches('/')
            .split('/')
            .map(|p| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => Part::Param(name),
                None => Part::Literal(p),
            })
            .collect();
        Compiled { route, parts }
    }

    /// The prefixes the route is served under.
    fn bases(&self) -> &'static [&'static str] {
        if CLIENT_API_PREFIXES.contains(&self.route.base_path) {
            CLIENT_API_PREFIXES
        } else {
            std::slice::from_ref(&self.route.base_path)
        }
    }
}

impl Default for Router {
    fn default() -> Self {
        Router {
            routes: ROUTES.iter().map(Compiled::new).collect(),
        }
    }
}

/// How one template matched one path.
enum Fit {
    No,
    Empty(String),
    Yes(Vec<(String, String)>),
}

fn fit(parts: &[Part], segments: &[String]) -> Fit {
    if parts.len() != segments.len() {
        return Fit::No;
    }
    let mut params = Vec::new();
    let mut empty = None;
    for (part, seg) in parts.iter().zip(segments) {
        match part {
            Part::Param(name) if seg.is_empty() => empty = Some(name.to_string()),
            Part::Param(name) => params.push((name.to_string(), seg.clone())),
            Part::Literal(lit) if lit == seg => {}
            Part::Literal(_) => return Fit::No,
        }
    }
    match empty {
        Some(name) => Fit::Empty(name),
        None => Fit::Yes(params),
    }
}

/// The path below a base: `None` unless the path continues with `/`. One
/// trailing slash is tolerated: `/state/m.room.name/` is the empty state key.
fn below<'p>(path: &'p str, base: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(base)?;
    if !rest.starts_with('/') {
        return None;
    }
    Some(if rest.len() > 1 {
        rest.strip_suffix('/').unwrap_or(rest)
    } else {
        rest
    })
}

impl Router {
    /// Matches `method` and the raw (still percent-encoded) `path`. Each
    /// base's segments are decoded once, and only for routes with as many
    /// segments as the path has.
    pub fn route(&self, method: &str, path: &str) -> RouteMatch {
        let mut allow: Vec<&'static str> = Vec::new();
        let mut empty = None;
        // (base, its decoded segments) for the bases tried so far.
        let mut decoded: Vec<(&str, Vec<String>)> = Vec::new();
        for compiled in &self.routes {
            for base in compiled.bases() {
                let Some(rest) = below(path, base) else { continue };
                if rest.split('/').count() - 1 != compiled.parts.len() {
                    continue;
                }
                let segments = match decoded.iter().position(|(b, _)| b == base) {
                    Some(i) => &decoded[i].1,
                    None => match decode_segments(rest) {
                        Some(segments) => {
                            decoded.push((base, segments));
                            &decoded[decoded.len() - 1].1
                        }
                        None => return RouteMatch::BadEncoding,
                    },
                };
                match fit(&compiled.parts, segments) {
                    Fit::No => {}
                    Fit::Empty(name) => empty = Some(name),
                    Fit::Yes(params) if compiled.route.method == method => {
                        return RouteMatch::Found {
                            operation: compiled.route.operation,
                            params,
                        }
                    }
                    Fit::Yes(_) => {
                        if !allow.contains(&compiled.route.method) {
                            allow.push(compiled.route.method);
                        }
                    }
                }
            }
        }
        if !allow.is_empty() {
            allow.push("OPTIONS");
            return RouteMatch::MethodNotAllowed { allow };
        }
        match empty {
            Some(name) => RouteMatch::EmptyParam { name },
            None => RouteMatch::NotFound,
        }
    }
}

/// The decoded segments; `None` if one is not UTF-8 or holds U+0000, which
/// no identifier may hold and PostgreSQL `text` cannot store.
fn decode_segments(rest: &str) -> Option<Vec<String>> {
    rest.trim_start_matches('/')
        .split('/')
        .map(|s| {
            let decoded = percent_decode_str(s).decode_utf8().ok()?;
            (!decoded.contains('\0')).then(|| decoded.into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(m: RouteMatch) -> (Operation, Vec<(String, String)>) {
        match m {
            RouteMatch::Found { operation, params } => (operation, params),
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn join_path_parameters_are_percent_decoded() {
        let r = Router::default();
        let (op, params) = found(r.route("POST", "/_matrix/client/api/v1/rooms/%21x%3Alocalhost/join"));
        assert_eq!(op, Operation::PostRoomsRoomIdJoin);
        assert_eq!(params, vec![("roomId".to_string(), "!x:localhost".to_string())]);
    }

    #[test]
    fn the_join_alias_routes_to_join_under_every_client_prefix() {
        let r = Router::default();
        for prefix in CLIENT_API_PREFIXES {
            let (op, params) = found(r.route("POST", &format!("{prefix}/join/%23a%3Alocalhost")));
            assert_eq!(op, Operation::PostRoomsRoomIdJoin);
            assert_eq!(params[0].1, "#a:localhost");
        }
    }

    #[test]
    fn invite_is_reachable_with_and_without_the_seed_trailing_space() {
        let r = Router::default();
        for path in [
            "/_matrix/client/api/v1/rooms/!x:l/invite",
            "/_matrix/client/api/v1/rooms/!x:l/invite%20",
        ] {
            assert_eq!(
                found(r.route("POST", path)).0,
                Operation::PostRoomsRoomIdInvite,
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let r = Router::default();
        assert_eq!(
            r.route("GET", "/_matrix/client/api/v1/rooms/!x:l/join"),
            RouteMatch::MethodNotAllowed {
                allow: vec!["POST", "OPTIONS"]
            }
        );
    }

    #[test]
    fn empty_parameters_and_unknown_paths_do_not_match() {
        let r = Router::default();
        assert_eq!(
            r.route("POST", "/_matrix/client/api/v1/rooms//join"),
            RouteMatch::EmptyParam { name: "roomId".into() }
        );
        assert_eq!(r.route("POST", "/_matrix/client/api/v1/nope"), RouteMatch::NotFound);
        assert_eq!(
            r.route("POST", "/_matrix/client/api/v1x/rooms/!x:l/join"),
            RouteMatch::NotFound
        );
        assert_eq!(
            r.route("POST", "/_matrix/client/api/v1/rooms/%FF/join"),
            RouteMatch::BadEncoding
        );
        assert_eq!(
            r.route("POST", "/_matrix/client/api/v1/rooms/!x%00:l/join"),
            RouteMatch::BadEncoding
        );
    }
}
