//! Matrix identifiers as types, parsed once at the edge (room versions 1 to 11).
//!
//! Grammar (Client-Server spec, "Appendices: Identifier grammar"):
//! - server name: `host[:port]`, host a DNS name or IPv4 address (letters,
//!   digits, `-`, `.`) or an IPv6 literal in brackets, port 1 to 5 digits;
//! - user id `@localpart:server`: new localparts use `a-z 0-9 . _ = - /`,
//!   historical ones any printable ASCII but `:`, which is what we accept;
//! - room id `!opaque:server` and alias `#name:server`, with the same
//!   localpart rule; event id `$opaque`, printable ASCII;
//! - every identifier, and every server name, is at most 255 bytes.
//!
//! Localparts are held to printable ASCII, stricter than the spec's "any
//! Unicode but `:` and NUL" for aliases, so that the 255-byte limit is the
//! `maxLength: 255` (which counts characters) the API spec states.
//!
//! The same grammar is written as regular expressions ([`USER_ID_PATTERN`]
//! and friends) for `api-spec/`, which states them as `pattern`s: a test
//! holds every spec pattern to these constants, and property tests hold the
//! parsers to the expressions.

use std::fmt;

macro_rules! server_name_pattern {
    () => {
        r"(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(:[0-9]{1,5})?"
    };
}

/// A localpart: printable ASCII (`!` to `~`) except `:`.
macro_rules! localpart_pattern {
    () => {
        "[!-9;-~]+"
    };
}

/// A whole server name: `host[:port]`.
pub const SERVER_NAME_PATTERN: &str = concat!("^", server_name_pattern!(), "$");
/// `@localpart:server_name`.
pub const USER_ID_PATTERN: &str = concat!("^@", localpart_pattern!(), ":", server_name_pattern!(), "$");
/// `!opaque:server_name`.
pub const ROOM_ID_PATTERN: &str = concat!("^!", localpart_pattern!(), ":", server_name_pattern!(), "$");
/// `#alias:server_name`.
pub const ROOM_ALIAS_PATTERN: &str = concat!("^#", localpart_pattern!(), ":", server_name_pattern!(), "$");
/// A room id or an alias, told apart by the sigil.
pub const ROOM_ID_OR_ALIAS_PATTERN: &str = concat!("^[!#]", localpart_pattern!(), ":", server_name_pattern!(), "$");
/// `$opaque`.
pub const EVENT_ID_PATTERN: &str = r"^\$[!-~]+$";
/// The longest identifier, in bytes: the spec's `maxLength` (all ASCII, so also characters).
pub const MAX_ID_BYTES: usize = 255;

/// Why an identifier did not parse, in words that say what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError(pub String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdError {}

/// Checks `host[:port]`.
pub fn validate_server_name(s: &str) -> Result<(), IdError> {
    let bad = |why: &str| Err(IdError(format!("{s:?} is not a valid server name: {why}")));
    if s.is_empty() {
        return bad("it is empty");
    }
    if s.len() > MAX_ID_BYTES {
        return bad("it is longer than 255 bytes");
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) => {
                if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
                    return bad("the IPv6 literal is malformed");
                }
                if !tail.is_empty() && !tail.starts_with(':') {
                    return bad("only a :port may follow the IPv6 literal");
                }
                (v6, tail.strip_prefix(':'))
            }
            None => return bad("the IPv6 literal has no closing ]"),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !s.starts_with('[')
        && (host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return bad("the host may only hold letters, digits, '-' and '.'");
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.chars().all(|c| c.is_ascii_digit()) {
            return bad("the port must be 1 to 5 digits");
        }
    }
    Ok(())
}

/// Splits `{sigil}{local}:{server}` and checks the common rules.
fn split_id<'a>(s: &'a str, sigil: char, kind: &str) -> Result<(&'a str, &'a str), IdError> {
    if s.len() > MAX_ID_BYTES {
        return Err(IdError(format!("{kind} {s:?} is longer than {MAX_ID_BYTES} bytes")));
    }
    let rest = s
        .strip_prefix(sigil)
        .ok_or_else(|| IdError(format!("{kind} {s:?} must start with '{sigil}'")))?;
    let (local, server) = rest
        .split_once(':')
        .ok_or_else(|| IdError(format!("{kind} {s:?} must have the form {sigil}localpart:server_name")))?;
    if local.is_empty() {
        return Err(IdError(format!("{kind} {s:?} has an empty localpart")));
    }
    // split_once took the first ':', so the localpart holds none.
    if !local.chars().all(|c| c.is_ascii_graphic()) {
        return Err(IdError(format!(
            "{kind} {s:?}: the localpart may only hold printable ASCII (no spaces or control characters)"
        )));
    }
    validate_server_name(server).map_err(|e| IdError(format!("{kind} {s:?}: {e}")))?;
    Ok((local, server))
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

identifier!(
    /// `@localpart:server_name`.
    UserId
);
identifier!(
    /// `!opaque:server_name`.
    RoomId
);
identifier!(
    /// `#name:server_name`.
    RoomAliasId
);
identifier!(
    /// `$opaque` (room versions 4 and later) or `$opaque:server` (1 to 3).
    EventId
);

fn server_part(s: &str) -> &str {
    s.split_once(':').map(|(_, server)| server).unwrap_or("")
}

impl UserId {
    /// Parses a user id; historical localparts (any printable ASCII but ':') are accepted.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        split_id(s, '@', "user id")?;
        Ok(UserId(s.to_string()))
    }

    /// Builds `@localpart:server` from a registration localpart, which must use the modern grammar.
    pub fn new(localpart: &str, server_name: &str) -> Result<Self, IdError> {
        if !is_valid_localpart(localpart) {
            return Err(IdError(format!(
                "{localpart:?} is not a valid username: only a-z, 0-9, '.', '_', '=', '-' and '/' are allowed"
            )));
        }
        Self::parse(&format!("@{localpart}:{server_name}"))
    }

    /// The part between `@` and `:`.
    pub fn localpart(&self) -> &str {
        self.0[1..].split_once(':').map(|(l, _)| l).unwrap_or("")
    }

    /// The server that owns this user.
    pub fn server_name(&self) -> &str {
        server_part(&self.0)
    }
}

/// Whether a localpart follows the current grammar (`a-z 0-9 . _ = - /`).
pub fn is_valid_localpart(localpart: &str) -> bool {
    !localpart.is_empty()
        && localpart
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-/".contains(c))
}

impl RoomId {
    /// Parses `!opaque:server_name`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        split_id(s, '!', "room id")?;
        Ok(RoomId(s.to_string()))
    }

    /// The server that created the room.
    pub fn server_name(&self) -> &str {
        server_part(&self.0)
    }
}

impl RoomAliasId {
    /// Parses `#name:server_name`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        split_id(s, '#', "room alias")?;
        Ok(RoomAliasId(s.to_string()))
    }

    /// The server that owns the alias.
    pub fn server_name(&self) -> &str {
        server_part(&self.0)
    }
}

impl EventId {
    /// Parses `$opaque`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.strip_prefix('$') {
            Some(rest) if !rest.is_empty() && s.len() <= MAX_ID_BYTES && rest.chars().all(|c| c.is_ascii_graphic()) => {
                Ok(EventId(s.to_string()))
            }
            _ => Err(IdError(format!(
                "event id {s:?} must be '$' followed by printable ASCII"
            ))),
        }
    }
}

/// A path parameter that may name a room either way (`/join/{roomIdOrAlias}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOrAlias {
    Room(RoomId),
    Alias(RoomAliasId),
}

impl RoomOrAlias {
    /// Parses by sigil: `!` is a room id, `#` an alias.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.chars().next() {
            Some('!') => RoomId::parse(s).map(Self::Room),
            Some('#') => RoomAliasId::parse(s).map(Self::Alias),
            _ => Err(IdError(format!(
                "{s:?} is neither a room id (!...) nor a room alias (#...)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_identifiers_parse_and_expose_their_parts() {
        let u = UserId::parse("@alice:example.org:8448").unwrap();
        assert_eq!(u.localpart(), "alice");
        assert_eq!(u.server_name(), "example.org:8448");
        assert_eq!(RoomId::parse("!abc:localhost").unwrap().server_name(), "localhost");
        assert_eq!(
            RoomAliasId::parse("#monkeys:matrix.org").unwrap().server_name(),
            "matrix.org"
        );
        assert!(UserId::parse("@bob:[::1]:8008").is_ok());
        assert!(EventId::parse("$abc123").is_ok());
    }

    #[test]
    fn malformed_identifiers_are_rejected_with_a_reason() {
        for bad in [
            "alice:localhost",
            "@alice",
            "@:localhost",
            "@al ice:localhost",
            "@a:bad host",
            "@a:host:",
        ] {
            let err = UserId::parse(bad).unwrap_err();
            assert!(
                err.0.contains("user id") || err.0.contains("server name"),
                "{bad}: {err}"
            );
        }
        assert!(RoomId::parse("#a:b").is_err());
        assert!(RoomAliasId::parse("!a:b").is_err());
        assert!(UserId::parse(&format!("@{}:localhost", "a".repeat(260))).is_err());
        assert!(UserId::new("Alice", "localhost").is_err());
        assert!(EventId::parse("abc").is_err());
    }

    #[test]
    fn room_or_alias_parses_by_sigil() {
        assert!(matches!(RoomOrAlias::parse("!r:localhost"), Ok(RoomOrAlias::Room(_))));
        assert!(matches!(RoomOrAlias::parse("#a:localhost"), Ok(RoomOrAlias::Alias(_))));
        assert!(RoomOrAlias::parse("@u:localhost").is_err());
    }
}
