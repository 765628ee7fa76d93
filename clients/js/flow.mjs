// matrix-js-sdk end-to-end membership flow against a matrix-membership server.
//
// HOMESERVER=http://127.0.0.1:8008 node flow.mjs
//
// alice and bob register and log in with loginWithPassword, start their
// clients, alice creates a room and invites bob; bob's client must report
// the invite as a RoomMember.membership event, join, and reach "join".
// bob then writes account data (global and per room), which his running
// client and a fresh client instance both receive through /sync.
// Every assertion is on what the library reports. Crypto is never started.
import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const baseUrl = process.env.HOMESERVER;
if (!baseUrl) {
    console.error("HOMESERVER is not set");
    process.exit(2);
}
logger.setLevel(process.env.JS_SDK_LOG ?? "error");
const suffix = Date.now().toString(36);
const clients = [];

function step(what) {
    console.log(`js-sdk: ${what}`);
}

/** Resolves with the first emission of `event` on `emitter` for which `pick` returns a value. */
function waitFor(emitter, event, pick, what, ms = 20000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            emitter.removeListener(event, listener);
            reject(new Error(`timed out waiting for ${what}`));
        }, ms);
        function listener(...args) {
            const value = pick(...args);
            if (value !== undefined && value !== false) {
                clearTimeout(timer);
                emitter.removeListener(event, listener);
                resolve(value);
            }
        }
        emitter.on(event, listener);
    });
}

/** Registers through the dummy user-interactive auth stage, then logs in with the password. */
async function registerAndLogin(name) {
    const username = `${name}_${suffix}`;
    const password = `${name}-password`;
    const anonymous = sdk.createClient({ baseUrl });
    let session;
    try {
        await anonymous.registerRequest({ username, password });
        assert.fail("registration without auth should ask for user-interactive auth");
    } catch (e) {
        assert.equal(e.httpStatus, 401, `first register: ${e}`);
        session = e.data.session;
        assert.ok(session, "the 401 carries a UIA session");
        assert.deepEqual(e.data.flows, [{ stages: ["m.login.dummy"] }]);
    }
    const registered = await anonymous.registerRequest({
        username,
        password,
        auth: { type: "m.login.dummy", session },
    });
    assert.match(registered.user_id, new RegExp(`^@${username}:`));

    const client = sdk.createClient({ baseUrl });
    const login = await client.loginWithPassword(registered.user_id, password);
    assert.equal(login.user_id, registered.user_id);
    assert.ok(login.access_token);
    assert.equal(client.getUserId(), registered.user_id, "the client knows who it is after login");
    assert.equal(client.getAccessToken(), login.access_token);
    clients.push(client);
    return client;
}

async function start(client) {
    const prepared = waitFor(client, sdk.ClientEvent.Sync, (state) => state === "PREPARED" || undefined, "PREPARED");
    await client.startClient({ initialSyncLimit: 10 });
    await prepared;
}

async function main() {
    step("checking the server is one the SDK supports");
    const probe = sdk.createClient({ baseUrl });
    assert.ok(await probe.isVersionSupported("v1.1"), "the server advertises v1.1");

    step("registering and logging in alice and bob");
    const alice = await registerAndLogin("alice");
    const bob = await registerAndLogin("bob");

    step("starting both clients");
    await start(alice);
    await start(bob);
    assert.ok(["PREPARED", "SYNCING"].includes(alice.getSyncState()), alice.getSyncState());

    step("alice creates a room and invites bob");
    const bobId = bob.getUserId();
    const invited = waitFor(
        bob,
        sdk.RoomMemberEvent.Membership,
        (event, member) => member.userId === bobId && member.membership === "invite" && member,
        "bob's invite",
    );
    const bobGetsRoom = waitFor(bob, sdk.ClientEvent.Room, (r) => r, "bob's client storing the room");
    const { room_id: roomId } = await alice.createRoom({ name: "js-sdk flow", preset: "private_chat" });
    assert.match(roomId, /^!/);
    await alice.invite(roomId, bobId);

    step("bob's client reports the invite");
    const member = await invited;
    assert.equal(member.roomId, roomId);
    assert.equal(member.events.member.getSender(), alice.getUserId(), "alice sent the invite");
    const inviteRoom = await bobGetsRoom;
    assert.equal(inviteRoom.roomId, roomId, "bob's client stores the room it is invited to");
    assert.equal(inviteRoom.getMyMembership(), "invite");
    assert.equal(inviteRoom.name, "js-sdk flow", "the invite carries the room name");

    step("bob joins");
    const joined = waitFor(
        bob,
        sdk.RoomMemberEvent.Membership,
        (event, m) => m.userId === bobId && m.roomId === roomId && m.membership === "join" && m,
        "bob's join",
    );
    const reachedJoin = waitFor(
        bob,
        sdk.RoomEvent.MyMembership,
        (r, membership) => r.roomId === roomId && membership === "join" && r,
        "bob's room reaching the joined state",
    );
    const aliceSeesBob = waitFor(
        alice,
        sdk.RoomMemberEvent.Membership,
        (event, m) => m.userId === bobId && m.roomId === roomId && m.membership === "join" && m,
        "alice seeing bob's join",
    );
    const room = await bob.joinRoom(roomId);
    assert.equal(room.roomId, roomId);
    await joined;
    await reachedJoin;
    assert.equal(bob.getRoom(roomId).getMyMembership(), "join");

    step("alice sees bob joined and bob receives alice's message");
    await aliceSeesBob;
    const received = waitFor(
        bob,
        sdk.RoomEvent.Timeline,
        (event, r) => r?.roomId === roomId && event.getType() === "m.room.message" && event,
        "alice's message",
    );
    await alice.sendTextMessage(roomId, "hello bob");
    const message = await received;
    assert.equal(message.getContent().body, "hello bob");
    assert.equal(message.getSender(), alice.getUserId());
    assert.deepEqual(
        bob
            .getRoom(roomId)
            .getJoinedMembers()
            .map((m) => m.userId)
            .sort(),
        [alice.getUserId(), bobId].sort(),
    );

    step("bob writes account data, global and for the room; a fresh client reads it back from its first sync");
    const liveEcho = waitFor(
        bob,
        sdk.ClientEvent.AccountData,
        (event) => event.getType() === "org.example.flow" && event,
        "bob's running client receiving its own account data",
    );
    await bob.setAccountData("org.example.flow", { colour: "teal", suffix });
    await bob.setRoomAccountData(roomId, "org.example.flow.room", { pinned: true });
    const echoed = await liveEcho;
    assert.equal(echoed.getContent().colour, "teal", "an incremental sync delivers the change");
    const fresh = sdk.createClient({ baseUrl, userId: bobId, accessToken: bob.getAccessToken() });
    clients.push(fresh);
    await start(fresh);
    assert.deepEqual(fresh.getAccountData("org.example.flow")?.getContent(), { colour: "teal", suffix });
    assert.deepEqual(
        fresh.getRoom(roomId)?.getAccountData("org.example.flow.room")?.getContent(),
        { pinned: true },
        "the room's account data arrives with the room",
    );
    step("passed");
}

try {
    await main();
} finally {
    for (const c of clients) {
        c.stopClient();
    }
}
process.exit(0);
