//! Third-party invites, as the authorization rules see them: who may send an
//! `m.room.third_party_invite`, and when an `m.room.member` invite that
//! carries `third_party_invite` is allowed (the identity server vouched for
//! the bound user by signing `{mxid, token}` with a key the room was told of).
//!
//! Pure: the gate hands in the room's `m.room.third_party_invite` for the
//! token; signatures are checked here, over the Matrix canonical JSON.

use super::rules::{Decision, RoomView};
use super::state::Membership;
use crate::ids::UserId;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

/// The state event type that holds a pending third-party invite, keyed by token.
pub const THIRD_PARTY_INVITE: &str = "m.room.third_party_invite";

/// `m.room.third_party_invite`: the sender must be joined (checked by the
/// gate before) and reach the room's invite level. The spec allows it then,
/// whatever the state level.
pub fn may_send_third_party_invite(room: RoomView<'_>, sender: &UserId, sender_m: Option<Membership>) -> Decision {
    if sender_m != Some(Membership::Join) {
        return Decision::Denied(format!(
            "{sender} is not in the room, so cannot invite by third-party address."
        ));
    }
    let level = room.power_levels.user_level(sender);
    if level < room.power_levels.invite {
        return Decision::Denied(format!(
            "{sender} has power level {level}, below the invite level {}, so cannot invite by third-party address.",
            room.power_levels.invite
        ));
    }
    Decision::Allowed
}

/// An invite carrying `third_party_invite`, by the spec's rules: the target
/// is not banned (nor already joined); `signed` names the target and a token
/// of a pending `m.room.third_party_invite` (`pending`) sent by the same
/// sender; and a signature in `signed` verifies against one of its keys.
pub fn may_invite_by_third_party(
    sender: &UserId,
    target: &UserId,
    target_m: Option<Membership>,
    third_party_invite: &Value,
    pending: Option<&PendingInvite>,
) -> Decision {
    match target_m {
        Some(Membership::Ban) => return Decision::Denied(format!("{target} is banned from the room.")),
        Some(Membership::Join) => return Decision::Denied(format!("{target} is already in the room.")),
        _ => {}
    }
    let Some(signed) = third_party_invite.get("signed").and_then(Value::as_object) else {
        return Decision::Denied("third_party_invite has no signed object.".into());
    };
    let (Some(mxid), Some(token)) = (
        signed.get("mxid").and_then(Value::as_str),
        signed.get("token").and_then(Value::as_str),
    ) else {
        return Decision::Denied("third_party_invite.signed needs mxid and token.".into());
    };
    if mxid != target.as_str() {
        return Decision::Denied(format!(
            "third_party_invite.signed is for {mxid}, but the invite is for {target}."
        ));
    }
    let Some(pending) = pending.filter(|p| p.token == token) else {
        return Decision::Denied(format!(
            "The room has no m.room.third_party_invite with token {token:?}."
        ));
    };
    if pending.sender != *sender {
        return Decision::Denied(format!(
            "The third-party invite {token:?} was sent by {}, not by {sender}.",
            pending.sender
        ));
    }
    if signed_by_any(signed, &pending.public_keys) {
        Decision::Allowed
    } else {
        Decision::Denied(format!(
            "No signature on the third-party invite {token:?} verifies against the room's keys for it."
        ))
    }
}

/// What the gate knows of one `m.room.third_party_invite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvite {
    pub token: String,
    pub sender: UserId,
    /// `content.public_key` and every `content.public_keys[].public_key`, decoded.
    pub public_keys: Vec<[u8; 32]>,
    pub display_name: String,
}

impl PendingInvite {
    /// Reads the event's content; keys that are not 32 bytes of base64 are ignored.
    pub fn from_content(token: &str, sender: UserId, content: &Map<String, Value>) -> Self {
        let mut encoded: Vec<&str> = content.get("public_key").and_then(Value::as_str).into_iter().collect();
        if let Some(keys) = content.get("public_keys").and_then(Value::as_array) {
            encoded.extend(keys.iter().filter_map(|k| k.get("public_key").and_then(Value::as_str)));
        }
        PendingInvite {
            token: token.to_string(),
            sender,
            public_keys: encoded.into_iter().filter_map(decode_key).collect(),
            display_name: content
                .get("display_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// Unpadded base64; identity servers use both alphabets (Sydent's ephemeral keys are URL-safe).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    STANDARD_NO_PAD.decode(s).or_else(|_| URL_SAFE_NO_PAD.decode(s)).ok()
}

fn decode_key(s: &str) -> Option<[u8; 32]> {
    decode_base64(s)?.try_into().ok()
}

/// Whether any ed25519 signature in `signed.signatures` verifies, against
/// any of `keys`, over the canonical JSON of `signed` without `signatures`
/// and `unsigned` (the Matrix signing rules).
pub fn signed_by_any(signed: &Map<String, Value>, keys: &[[u8; 32]]) -> bool {
    let Some(signatures) = signed.get("signatures").and_then(Value::as_object) else {
        return false;
    };
    let mut bare = signed.clone();
    bare.remove("signatures");
    bare.remove("unsigned");
    let Some(message) = canonical_json(&Value::Object(bare)) else {
        return false;
    };
    let sigs = signatures
        .values()
        .filter_map(Value::as_object)
        .flat_map(|by_key| by_key.iter())
        .filter(|(key_id, _)| key_id.starts_with("ed25519:"))
        .filter_map(|(_, sig)| sig.as_str().and_then(decode_base64))
        .filter_map(|bytes| Signature::from_slice(&bytes).ok());
    let verifiers: Vec<VerifyingKey> = keys.iter().filter_map(|k| VerifyingKey::from_bytes(k).ok()).collect();
    sigs.into_iter().any(|sig| {
        verifiers
            .iter()
            .any(|key| key.verify_strict(message.as_bytes(), &sig).is_ok())
    })
}

/// Matrix canonical JSON: keys sorted by code point, no insignificant
/// whitespace, integers only (`None` for a float, which it does not allow).
pub fn canonical_json(value: &Value) -> Option<String> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Some(out)
}

fn write_canonical(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).ok()?);
                out.push(':');
                write_canonical(v, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out)?;
            }
            out.push(']');
        }
        Value::Number(n) if n.is_f64() => return None,
        other => out.push_str(&serde_json::to_string(other).ok()?),
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    const ALICE: &str = "@alice:example.org";
    const BOB: &str = "@bob:example.org";

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn pending(signer: &SigningKey) -> PendingInvite {
        let content = json!({
            "display_name": "b...@e...",
            "public_key": STANDARD_NO_PAD.encode(signer.verifying_key().to_bytes()),
            "public_keys": [{"public_key": URL_SAFE_NO_PAD.encode([9u8; 32]), "key_validity_url": "http://id/isvalid"}],
        });
        PendingInvite::from_content("tok", user(ALICE), content.as_object().unwrap())
    }

    fn signed_invite(signer: &SigningKey, mxid: &str, token: &str) -> Value {
        let bare = json!({"mxid": mxid, "token": token});
        let sig = signer.sign(canonical_json(&bare).unwrap().as_bytes());
        json!({"display_name": "b...@e...", "signed": {
            "mxid": mxid, "token": token,
            "signatures": {"id.example.org": {"ed25519:0": STANDARD_NO_PAD.encode(sig.to_bytes())}}
        }})
    }

    #[test]
    fn third_party_invite_events_need_a_joined_sender_at_the_invite_level_not_the_state_level() {
        let levels: crate::membership::state::PowerLevels =
            serde_json::from_value(json!({"invite": 50, "state_default": 100, "users": {ALICE: 50}})).unwrap();
        let room = RoomView {
            join_rule: crate::membership::state::JoinRule::Invite,
            power_levels: &levels,
        };
        let alice = user(ALICE);
        let bob = user(BOB);
        assert_eq!(
            may_send_third_party_invite(room, &alice, Some(Membership::Join)),
            Decision::Allowed
        );
        assert!(
            matches!(may_send_third_party_invite(room, &bob, Some(Membership::Join)), Decision::Denied(why) if why.contains("below the invite level"))
        );
        assert!(
            matches!(may_send_third_party_invite(room, &alice, Some(Membership::Invite)), Decision::Denied(why) if why.contains("not in the room"))
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_refuses_floats() {
        let v = json!({"b": 1, "a": {"d": [true, null], "c": "é\n"}});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"a\":{\"c\":\"é\\n\",\"d\":[true,null]},\"b\":1}"
        );
        assert_eq!(canonical_json(&json!({"x": 1.5})), None);
    }

    #[test]
    fn invite_signed_by_the_rooms_key_for_the_target_is_allowed() {
        let k = key();
        let d = may_invite_by_third_party(
            &user(ALICE),
            &user(BOB),
            None,
            &signed_invite(&k, BOB, "tok"),
            Some(&pending(&k)),
        );
        assert_eq!(d, Decision::Allowed);
    }

    #[test]
    fn invite_signed_by_another_key_is_denied() {
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let d = may_invite_by_third_party(
            &user(ALICE),
            &user(BOB),
            None,
            &signed_invite(&other, BOB, "tok"),
            Some(&pending(&key())),
        );
        assert!(matches!(d, Decision::Denied(why) if why.contains("No signature")));
    }

    #[test]
    fn a_signature_over_other_content_does_not_verify() {
        let k = key();
        let mut invite = signed_invite(&k, BOB, "tok");
        invite["signed"]["mxid"] = json!("@carol:example.org");
        let d = may_invite_by_third_party(&user(ALICE), &user(BOB), None, &invite, Some(&pending(&k)));
        assert!(matches!(d, Decision::Denied(why) if why.contains("is for @carol")));
    }

    #[test]
    fn invite_for_another_mxid_unknown_token_other_sender_or_banned_target_is_denied() {
        let k = key();
        let p = pending(&k);
        let cases = [
            (
                ALICE,
                BOB,
                Some(Membership::Ban),
                signed_invite(&k, BOB, "tok"),
                "banned",
            ),
            (
                ALICE,
                BOB,
                Some(Membership::Join),
                signed_invite(&k, BOB, "tok"),
                "already in",
            ),
            (ALICE, BOB, None, signed_invite(&k, ALICE, "tok"), "is for"),
            (
                ALICE,
                BOB,
                None,
                signed_invite(&k, BOB, "other"),
                "no m.room.third_party_invite",
            ),
            (BOB, BOB, None, signed_invite(&k, BOB, "tok"), "was sent by"),
            (ALICE, BOB, None, json!({"display_name": "x"}), "no signed"),
        ];
        for (sender, target, target_m, invite, expect) in cases {
            match may_invite_by_third_party(&user(sender), &user(target), target_m, &invite, Some(&p)) {
                Decision::Denied(why) => assert!(why.contains(expect), "{expect}: {why}"),
                Decision::Allowed => panic!("{expect}: allowed"),
            }
        }
    }
}
