"""Drives the Python client generated from generated/swagger.json against a running server.

The client package `mm_client` is generated in CI only (see run.sh) and never committed. This
script registers two users through the two-step m.login.dummy flow, has the first create a
private room and invite the second, has the second join, and asserts every result, using only
the generated functions and models.

Usage: python flow.py http://127.0.0.1:8008   (with mm_client on PYTHONPATH)
"""

import sys
import time

from mm_client import AuthenticatedClient, Client
from mm_client.api.default import (
    create_room,
    get_members,
    post_rooms_room_id_invite,
    post_rooms_room_id_join,
    register,
    whoami,
)
from mm_client.models import (
    AuthenticationData,
    CreateRoomRequest,
    CreateRoomRequestPreset,
    CreateRoomResponse200,
    Error,
    GetMembersMembership,
    GetMembersResponse200,
    PostRoomsRoomIdInviteBody,
    PostRoomsRoomIdInviteResponse200,
    PostRoomsRoomIdJoinResponse200,
    RegisterRequest,
    RegisterResponse,
    UserInteractiveAuth,
    WhoamiResponse200,
)

API = "/_matrix/client/api/v1"


def expect(response, status, model):
    """The parsed body of `response`, after checking its status and type."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert isinstance(response.parsed, model), (
        f"expected a {model.__name__}, got {response.parsed!r}"
    )
    return response.parsed


def register_user(server, username):
    """Registers `username` and returns (user_id, an authenticated client)."""
    anonymous = Client(base_url=server + API, raise_on_unexpected_status=True)
    body = RegisterRequest(username=username, password=username + "-correct-horse")
    challenge = expect(register.sync_detailed(client=anonymous, body=body), 401, UserInteractiveAuth)
    assert ["m.login.dummy"] in [flow.stages for flow in challenge.flows], challenge
    body.auth = AuthenticationData(type_="m.login.dummy", session=challenge.session)
    account = expect(register.sync_detailed(client=anonymous, body=body), 200, RegisterResponse)
    assert account.user_id.startswith("@" + username + ":"), account.user_id
    client = AuthenticatedClient(base_url=server + API, token=account.access_token, raise_on_unexpected_status=True)
    me = expect(whoami.sync_detailed(client=client), 200, WhoamiResponse200)
    assert me.user_id == account.user_id, me
    print(f"registered {account.user_id}")
    return account.user_id, client


def main():
    server = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8008").rstrip("/")
    suffix = str(int(time.time() * 1000))
    alice_id, alice = register_user(server, "pyalice" + suffix)
    bob_id, bob = register_user(server, "pybob" + suffix)

    request = CreateRoomRequest(name="From Python", preset=CreateRoomRequestPreset.PRIVATE_CHAT)
    room_id = expect(create_room.sync_detailed(client=alice, body=request), 200, CreateRoomResponse200).room_id
    print(f"{alice_id} created {room_id}")

    # The room is invite-only: Bob's join is refused until Alice invites him.
    refused = expect(post_rooms_room_id_join.sync_detailed(room_id, client=bob), 403, Error)
    assert refused.errcode == "M_FORBIDDEN", refused

    body = PostRoomsRoomIdInviteBody(user_id=bob_id)
    expect(post_rooms_room_id_invite.sync_detailed(room_id, client=alice, body=body), 200, PostRoomsRoomIdInviteResponse200)
    print(f"{alice_id} invited {bob_id}")

    joined = expect(post_rooms_room_id_join.sync_detailed(room_id, client=bob), 200, PostRoomsRoomIdJoinResponse200)
    assert joined.room_id == room_id, joined
    print(f"{bob_id} joined {joined.room_id}")

    members = expect(get_members.sync_detailed(room_id, client=alice, membership=GetMembersMembership.JOIN), 200, GetMembersResponse200)
    joined_ids = sorted(event.state_key for event in members.chunk)
    assert joined_ids == sorted([alice_id, bob_id]), joined_ids
    print(f"joined members: {', '.join(joined_ids)}")
    print("python client flow: ok")


if __name__ == "__main__":
    main()
