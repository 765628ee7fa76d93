//! Room membership: the authorization gate every event passes, the state it
//! reads, the per-action rules it asks (restricted joins in their own
//! module), the room versions it knows, and the limits every stored event obeys.

pub mod auth;
pub mod auth_state;
pub mod limits;
pub mod restricted;
pub mod room_version;
pub mod rules;
pub mod state;
pub mod third_party;
