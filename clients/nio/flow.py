"""matrix-nio end-to-end membership flow against a matrix-membership server.

    HOMESERVER=http://127.0.0.1:8008 python flow.py

alice registers and logs in, creates a private room with an alias and invites
bob; bob sees the invite (with the room name) in his sync, joins by alias and
receives alice's message in his next sync; carol is invited by alias, joins
and is kicked; a ban and an unban round-trip. Then carol knocks on a room
with the knock join rule and alice lets her in by inviting her; and bob joins
a restricted room through his membership of the first room, vouched for by
alice. Every check is on what nio reports: response types, sync sections and
its room objects.
"""

import asyncio
import os
import sys
import time

from nio.responses import RegisterInteractiveResponse
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteNameEvent,
    InviteMemberEvent,
    JoinError,
    JoinResponse,
    LoginResponse,
    RegisterResponse,
    RoomBanResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomInviteResponse,
    RoomKickResponse,
    RoomKnockError,
    RoomKnockResponse,
    RoomMemberEvent,
    RoomMessageText,
    RoomPreset,
    RoomResolveAliasResponse,
    RoomSendResponse,
    RoomUnbanResponse,
    RoomVisibility,
    SyncResponse,
)

HOMESERVER = os.environ.get("HOMESERVER")
SUFFIX = format(int(time.time() * 1000), "x")
CONFIG = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
clients = []


def step(what):
    print(f"nio: {what}", flush=True)


def expect(response, kind, what):
    assert isinstance(response, kind), f"{what}: expected {kind.__name__}, got {response!r}"
    return response


async def register_and_login(name):
    """Registers through the dummy user-interactive auth stage, then logs in with the password."""
    username, password = f"{name}_{SUFFIX}", f"{name}-password"
    anonymous = AsyncClient(HOMESERVER, config=CONFIG)
    clients.append(anonymous)
    challenge = expect(
        await anonymous.register_interactive(username, password, auth_dict={}),
        RegisterInteractiveResponse,
        f"{name}: registration without a session",
    )
    assert challenge.stages == ["m.login.dummy"], challenge.stages
    registered = expect(
        await anonymous.register(username, password, session_token=challenge.session),
        RegisterResponse,
        f"{name}: registration",
    )
    client = AsyncClient(HOMESERVER, registered.user_id, config=CONFIG)
    clients.append(client)
    login = expect(await client.login(password, device_name=f"nio flow {name}"), LoginResponse, f"{name}: login")
    assert client.user_id == registered.user_id == login.user_id
    assert client.logged_in
    return client


async def sync(client, what, timeout=0):
    return expect(await client.sync(timeout=timeout), SyncResponse, f"{what}: sync")


async def main():
    step("registering and logging in alice, bob and carol")
    alice = await register_and_login("alice")
    bob = await register_and_login("bob")
    carol = await register_and_login("carol")
    for c in (alice, bob, carol):
        await sync(c, "first sync")

    step("alice creates a private room with an alias and invites bob")
    alias_local = f"flow_{SUFFIX}"
    created = expect(
        await alice.room_create(
            visibility=RoomVisibility.private,
            alias=alias_local,
            name="nio flow",
            preset=RoomPreset.private_chat,
        ),
        RoomCreateResponse,
        "room_create",
    )
    room_id = created.room_id
    alias = f"#{alias_local}:{alice.user_id.split(':', 1)[1]}"
    expect(await alice.room_invite(room_id, bob.user_id), RoomInviteResponse, "invite bob")

    step("bob's sync shows the invite with the room name in invite_state")
    synced = await sync(bob, "bob after the invite")
    assert room_id in synced.rooms.invite, f"invite missing: {synced.rooms.invite}"
    invite_state = synced.rooms.invite[room_id].invite_state
    names = [e.name for e in invite_state if isinstance(e, InviteNameEvent)]
    assert names == ["nio flow"], f"room name in invite_state: {invite_state}"
    invites = [
        e for e in invite_state if isinstance(e, InviteMemberEvent) and e.state_key == bob.user_id
    ]
    assert invites and invites[0].membership == "invite" and invites[0].sender == alice.user_id, invite_state
    assert bob.invited_rooms[room_id].name == "nio flow", bob.invited_rooms

    step("bob joins by alias")
    joined = expect(await bob.join(alias), JoinResponse, "bob joins by alias")
    assert joined.room_id == room_id, (joined.room_id, room_id)
    synced = await sync(bob, "bob after joining")
    assert room_id in synced.rooms.join, f"joined room missing: {synced.rooms}"
    assert room_id in bob.rooms and room_id not in bob.invited_rooms
    assert bob.user_id in bob.rooms[room_id].users

    step("alice sends a message and bob receives it in his next sync")
    await sync(alice, "alice before sending")
    expect(
        await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}),
        RoomSendResponse,
        "room_send",
    )
    synced = await sync(bob, "bob after the message", timeout=5000)
    timeline = synced.rooms.join[room_id].timeline.events
    texts = [e for e in timeline if isinstance(e, RoomMessageText)]
    assert [(e.sender, e.body) for e in texts] == [(alice.user_id, "hello bob")], timeline

    step("alice resolves the alias and invites carol, who joins")
    resolved = expect(await alice.room_resolve_alias(alias), RoomResolveAliasResponse, "resolve alias")
    assert resolved.room_id == room_id
    expect(await alice.room_invite(resolved.room_id, carol.user_id), RoomInviteResponse, "invite carol")
    synced = await sync(carol, "carol after the invite")
    assert room_id in synced.rooms.invite
    expect(await carol.join(room_id), JoinResponse, "carol joins")
    synced = await sync(carol, "carol after joining")
    assert room_id in synced.rooms.join and room_id in carol.rooms

    step("alice kicks carol")
    expect(await alice.room_kick(room_id, carol.user_id, reason="flow test"), RoomKickResponse, "kick carol")
    synced = await sync(carol, "carol after the kick")
    assert room_id in synced.rooms.leave, f"left room missing: {synced.rooms}"
    kicks = [
        e
        for e in synced.rooms.leave[room_id].timeline.events
        if isinstance(e, RoomMemberEvent) and e.state_key == carol.user_id
    ]
    assert kicks and kicks[-1].membership == "leave" and kicks[-1].sender == alice.user_id, kicks
    await sync(alice, "alice after the kick")
    assert carol.user_id not in alice.rooms[room_id].users

    step("ban and unban round-trip")
    expect(await alice.room_ban(room_id, carol.user_id, reason="flow test"), RoomBanResponse, "ban carol")
    await sync(alice, "alice after the ban")
    expect(await carol.join(room_id), JoinError, "a banned user cannot join")
    expect(await alice.room_unban(room_id, carol.user_id), RoomUnbanResponse, "unban carol")
    expect(await alice.room_invite(room_id, carol.user_id), RoomInviteResponse, "invite carol again")
    await sync(carol, "carol after the new invite")
    assert room_id in carol.invited_rooms
    expect(await carol.join(room_id), JoinResponse, "carol joins again")
    await sync(carol, "carol after joining again")
    assert room_id in carol.rooms
    await sync(alice, "alice after carol is back")
    assert carol.user_id in alice.rooms[room_id].users

    await knock_and_accept(alice, bob)
    await restricted_join(alice, bob, room_id)
    step("passed")


async def member_content(reader, room_id, user_id):
    event = expect(
        await reader.room_get_state_event(room_id, "m.room.member", user_id),
        RoomGetStateEventResponse,
        f"{user_id}'s member event in {room_id}",
    )
    return event.content


async def knock_and_accept(alice, bob):
    step("dave knocks on a knock room (v7), alice accepts by inviting, dave joins")
    dave = await register_and_login("dave")
    await sync(dave, "dave's first sync")
    door = expect(
        await alice.room_create(
            name="nio knock",
            preset=RoomPreset.private_chat,
            room_version="7",
            initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}],
        ),
        RoomCreateResponse,
        "room_create with the knock join rule",
    ).room_id
    expect(await dave.join(door), JoinError, "joining a knock room without an invite")
    expect(await dave.room_knock(door, reason="let me in"), RoomKnockResponse, "dave knocks")
    knocked = await member_content(alice, door, dave.user_id)
    assert knocked["membership"] == "knock" and knocked["reason"] == "let me in", knocked
    expect(await alice.room_invite(door, dave.user_id), RoomInviteResponse, "alice accepts the knock")
    synced = await sync(dave, "dave after the invite")
    assert door in synced.rooms.invite, f"accepted knock missing from invites: {synced.rooms.invite}"
    expect(await dave.room_knock(door), RoomKnockError, "an invited user cannot knock")
    expect(await dave.join(door), JoinResponse, "dave joins after the accepted knock")
    await sync(dave, "dave after joining")
    assert door in dave.rooms and dave.user_id in dave.rooms[door].users


async def restricted_join(alice, bob, lobby):
    step("bob joins a restricted room (v8) through the first room, vouched for by alice")
    eve = await register_and_login("eve")
    inner = expect(
        await alice.room_create(
            name="nio restricted",
            preset=RoomPreset.private_chat,
            room_version="8",
            initial_state=[
                {
                    "type": "m.room.join_rules",
                    "state_key": "",
                    "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": lobby}]},
                }
            ],
        ),
        RoomCreateResponse,
        "room_create with the restricted join rule",
    ).room_id
    expect(await eve.join(inner), JoinError, "someone outside the lobby cannot join")
    joined = expect(await bob.join(inner), JoinResponse, "bob joins through the lobby")
    assert joined.room_id == inner
    content = await member_content(alice, inner, bob.user_id)
    assert content["membership"] == "join", content
    assert content["join_authorised_via_users_server"] == alice.user_id, content
    synced = await sync(bob, "bob after the restricted join")
    assert inner in synced.rooms.join and inner in bob.rooms


async def run():
    if not HOMESERVER:
        print("HOMESERVER is not set", file=sys.stderr)
        return 2
    try:
        await main()
        return 0
    finally:
        for c in clients:
            await c.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(run()))
