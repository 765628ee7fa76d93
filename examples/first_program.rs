//! A first program against matrix-membership, using only the generated client:
//! register two users (two-step registration), create a private room, invite
//! the second user and have them join.
//!
//! ```sh
//! cargo run --release &                                   # the server, on 127.0.0.1:8008
//! cargo run --example first_program -- http://127.0.0.1:8008
//! ```
//!
//! Every call returns the operation's response enum: one variant per status the
//! spec documents, so each outcome is a `match` arm. Anything the spec does not
//! document comes back as `ClientError::Contract`.

use matrix_membership::generated::api::{
    CreateRoomResponse, GetMembersResponse, PostRoomsRoomIdInviteResponse, PostRoomsRoomIdJoinResponse,
    RegisterResponse,
};
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models;
use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Registers `username` and returns a client that sends the new access token.
///
/// Registration is user-interactive: the first request is answered with 401
/// and a session; the second one completes the `m.login.dummy` stage.
async fn register(client: &Client, username: &str) -> Result<(String, Client)> {
    let mut request = models::RegisterRequest {
        username: Some(username.to_string()),
        password: Some(format!("{username}-correct-horse")),
        device_id: None,
        initial_device_display_name: Some("first_program".into()),
        inhibit_login: None,
        auth: None,
    };
    let session = match client.register(None, Some(&request)).await? {
        RegisterResponse::Unauthorized(challenge) => challenge.session.ok_or("the 401 challenge has no session")?,
        other => return Err(format!("expected a 401 challenge, got {other:?}").into()),
    };
    request.auth = Some(models::AuthenticationData {
        r#type: Some("m.login.dummy".into()),
        session: Some(session),
    });
    match client.register(None, Some(&request)).await? {
        RegisterResponse::Ok(account) => {
            let token = account.access_token.ok_or("no access token")?;
            Ok((account.user_id, client.with_access_token(token)))
        }
        other => Err(format!("registration of {username} failed: {other:?}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8008".into());
    let client = Client::new(&server);
    // Usernames are unique per run, so the program can run twice against one server.
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();

    let (alice_id, alice) = register(&client, &format!("alice{suffix}")).await?;
    println!("registered {alice_id}");
    let (bob_id, bob) = register(&client, &format!("bob{suffix}")).await?;
    println!("registered {bob_id}");

    let room = models::CreateRoomRequest {
        visibility: None,
        room_alias_name: None,
        name: Some("First program".into()),
        topic: None,
        invite: None,
        preset: Some(models::CreateRoomRequestPreset::PrivateChat),
        power_level_content_override: None,
        initial_state: None,
        is_direct: None,
        creation_content: None,
        room_version: None,
    };
    let room_id = match alice.create_room(&room).await? {
        CreateRoomResponse::Ok(created) => created.room_id,
        other => return Err(format!("createRoom failed: {other:?}").into()),
    };
    println!("{alice_id} created the private room {room_id}");

    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob_id.clone()),
        reason: None,
        ..Default::default()
    };
    match alice.post_rooms_room_id_invite(&room_id, &invite).await? {
        PostRoomsRoomIdInviteResponse::Ok(_) => println!("{alice_id} invited {bob_id}"),
        other => return Err(format!("invite failed: {other:?}").into()),
    }

    match bob.post_rooms_room_id_join(&room_id, None).await? {
        PostRoomsRoomIdJoinResponse::Ok(joined) if joined.room_id == room_id => {
            println!("{bob_id} joined {}", joined.room_id)
        }
        other => return Err(format!("join failed: {other:?}").into()),
    }

    match alice.get_members(&room_id, None, Some("join"), None).await? {
        GetMembersResponse::Ok(members) => {
            let mut joined: Vec<String> = members.chunk.into_iter().filter_map(|e| e.state_key).collect();
            joined.sort();
            println!("joined members of {room_id}: {}", joined.join(", "));
            if joined.len() != 2 {
                return Err(format!("expected 2 joined members, got {joined:?}").into());
            }
        }
        other => return Err(format!("members failed: {other:?}").into()),
    }
    Ok(())
}
