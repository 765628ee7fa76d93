-- matrix-membership on PostgreSQL, schema version 1.
-- Text that is ordered or compared byte-wise (ids, types, state keys) uses the
-- "C" collation, so listings come out in the same order as on sled.

CREATE TABLE users (
    user_id       text COLLATE "C" PRIMARY KEY,
    password_hash text NOT NULL,
    admin         boolean NOT NULL DEFAULT false,
    deactivated   boolean NOT NULL DEFAULT false
);

CREATE TABLE profiles (
    user_id     text COLLATE "C" PRIMARY KEY,
    displayname text NOT NULL
);

-- Access tokens by SHA-256 hash; one per (user, device).
CREATE TABLE tokens (
    token_hash bytea PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL,
    device_id  text COLLATE "C" NOT NULL,
    UNIQUE (user_id, device_id)
);

-- One row per room; writes to a room lock it (SELECT ... FOR UPDATE), which
-- serializes them across every instance.
CREATE TABLE rooms (
    room_id text COLLATE "C" PRIMARY KEY,
    creator text NOT NULL
);

CREATE TABLE aliases (
    alias   text COLLATE "C" PRIMARY KEY,
    room_id text COLLATE "C" NOT NULL REFERENCES rooms (room_id)
);
CREATE INDEX aliases_by_room ON aliases (room_id, alias);

-- The event log: one row per event at its stream position.
CREATE TABLE events (
    stream_pos       bigint PRIMARY KEY,
    room_id          text COLLATE "C" NOT NULL,
    event_id         text COLLATE "C" NOT NULL UNIQUE,
    sender           text NOT NULL,
    event_type       text COLLATE "C" NOT NULL,
    state_key        text COLLATE "C",
    content          text NOT NULL,
    origin_server_ts bigint NOT NULL
);
CREATE INDEX events_by_room ON events (room_id, stream_pos);

-- Every change of every state key, for state at a position; `membership` is
-- set for member events.
CREATE TABLE state_history (
    room_id    text COLLATE "C" NOT NULL,
    event_type text COLLATE "C" NOT NULL,
    state_key  text COLLATE "C" NOT NULL,
    stream_pos bigint NOT NULL,
    membership text,
    PRIMARY KEY (room_id, event_type, state_key, stream_pos)
);

CREATE TABLE current_state (
    room_id    text COLLATE "C" NOT NULL,
    event_type text COLLATE "C" NOT NULL,
    state_key  text COLLATE "C" NOT NULL,
    stream_pos bigint NOT NULL,
    PRIMARY KEY (room_id, event_type, state_key)
);

-- Current membership, both ways.
CREATE TABLE memberships (
    room_id    text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    membership text NOT NULL,
    stream_pos bigint NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id, room_id);

CREATE TABLE txns (
    user_id    text COLLATE "C" NOT NULL,
    room_id    text COLLATE "C" NOT NULL,
    txn_id     text COLLATE "C" NOT NULL,
    stream_pos bigint NOT NULL,
    event_id   text NOT NULL,
    PRIMARY KEY (user_id, room_id, txn_id)
);

CREATE TABLE filters (
    filter_id bigserial PRIMARY KEY,
    user_id   text COLLATE "C" NOT NULL,
    body      text NOT NULL
);

-- room_id '' is global account data.
CREATE TABLE account_data (
    user_id    text COLLATE "C" NOT NULL,
    room_id    text COLLATE "C" NOT NULL,
    event_type text COLLATE "C" NOT NULL,
    content    text NOT NULL,
    stream_pos bigint NOT NULL,
    PRIMARY KEY (user_id, room_id, event_type)
);
CREATE INDEX account_data_by_position ON account_data (user_id, stream_pos);
CREATE INDEX account_data_newest ON account_data (stream_pos);

CREATE TABLE forgotten (
    user_id    text COLLATE "C" NOT NULL,
    room_id    text COLLATE "C" NOT NULL,
    stream_pos bigint NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

-- Stream positions. `stream_head` is the last position handed out. A
-- position handed out but not yet written (or abandoned) sits in
-- `stream_pending`, with the transaction that will write it, until that
-- transaction commits (it deletes the row) or ends otherwise (a sweep deletes
-- it). `stream_floor` is the highest position an import claimed.
CREATE TABLE stream_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pos      bigint NOT NULL
);
INSERT INTO stream_head (pos) VALUES (0);

CREATE TABLE stream_pending (
    pos bigint PRIMARY KEY,
    xid text NOT NULL
);

CREATE TABLE stream_floor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pos      bigint NOT NULL
);
INSERT INTO stream_floor (pos) VALUES (0);
