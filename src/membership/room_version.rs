//! Room versions: which of the spec's version-dependent authorization rules
//! apply to a room, read from its `m.room.create` `room_version`.
//!
//! Only the differences between the versions we implement (7 to 11) are
//! modelled; everything else is the same in all of them as far as this
//! server's rules go (event formats, state resolution and redaction are
//! federation matters a single server never meets).

use super::state::JoinRule;

/// The room versions whose rules the gate implements, oldest first.
pub const SUPPORTED: &[&str] = &["7", "8", "9", "10", "11"];
/// The version `createRoom` uses when asked for none.
pub const DEFAULT: &str = "10";

/// The rules of one supported room version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomVersion {
    number: u8,
}

impl RoomVersion {
    /// The rules of `version`, if we implement it.
    pub fn parse(version: &str) -> Option<RoomVersion> {
        SUPPORTED.contains(&version).then(|| RoomVersion {
            number: version.parse().expect("supported versions are numbers"),
        })
    }

    /// Whether the version's auth rules know `rule`. A rule a version does
    /// not know is no rule at all there: per the spec's join rules for that
    /// version, nobody can join through it (not even an invitee) and nobody
    /// can knock on it. `knock` came with v7, `restricted` with v8 and
    /// `knock_restricted` with v10. `private` was never defined by any
    /// version; we keep treating it as `invite`, as before.
    pub fn knows(self, rule: JoinRule) -> bool {
        match rule {
            JoinRule::Public | JoinRule::Invite | JoinRule::Private => true,
            JoinRule::Knock => self.number >= 7,
            JoinRule::Restricted => self.number >= 8,
            JoinRule::KnockRestricted => self.number >= 10,
        }
    }

    /// From v11 on, `m.room.create` has no `creator`: its sender is the creator.
    pub fn creator_is_sender(self) -> bool {
        self.number >= 11
    }

    /// The version as the spec writes it.
    pub fn as_str(self) -> &'static str {
        SUPPORTED
            .iter()
            .find(|v| v.parse::<u8>().ok() == Some(self.number))
            .copied()
            .unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> RoomVersion {
        RoomVersion::parse(s).unwrap()
    }

    #[test]
    fn only_versions_7_to_11_are_implemented() {
        for s in ["1", "6", "12", "", "10.0", "org.example.custom"] {
            assert_eq!(RoomVersion::parse(s), None, "{s:?}");
        }
        for s in SUPPORTED {
            assert_eq!(v(s).as_str(), *s);
        }
        assert!(SUPPORTED.contains(&DEFAULT));
    }

    #[test]
    fn each_join_rule_is_known_from_the_version_that_introduced_it() {
        // (rule, first version that knows it)
        let rows = [
            (JoinRule::Public, 7),
            (JoinRule::Invite, 7),
            (JoinRule::Knock, 7),
            (JoinRule::Restricted, 8),
            (JoinRule::KnockRestricted, 10),
        ];
        for (rule, since) in rows {
            for s in SUPPORTED {
                let n: u8 = s.parse().unwrap();
                assert_eq!(v(s).knows(rule), n >= since, "{rule:?} in v{s}");
            }
        }
    }

    #[test]
    fn only_v11_takes_the_creator_from_the_sender() {
        assert!(v("11").creator_is_sender());
        assert!(!v("10").creator_is_sender());
        assert!(!v("7").creator_is_sender());
    }
}
