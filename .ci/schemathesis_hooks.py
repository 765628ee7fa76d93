"""schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

`positive_data_acceptance` expects every request the schema admits to be
accepted (2xx, 401, 403, 404, 409, 429). A few of the server's 400s are not
about the request's form but about the server's state or capabilities, which
no schema can state; Matrix answers them with 400 on purpose. For schema-valid
(positive) cases only, these hooks keep generated values clear of those rules,
so that every 400 that is left means the server refused a request it should
have taken. Negative cases are left alone: they must be refused anyway.

Each rule names what it works around:

- A path parameter whose generated value holds `%XX`: schemathesis 4.32.5
  percent-decodes a path value before encoding it (transport/serialization.py
  `quote_all`: "unquote first to keep quoting idempotent"), so `!a%09b:x` is
  sent as `!a<TAB>b:x`, which is not the value it judged valid. Such cases are
  dropped (a schemathesis quirk, not a server rule).
- createRoom `room_version`: the server creates room versions 7 to 11 only and
  answers others with 400 M_UNSUPPORTED_ROOM_VERSION, as the Matrix spec asks;
  GET /capabilities says which versions exist at run time.
- createRoom `room_alias_name` and register `username`: a name that is taken
  is 400 M_ROOM_IN_USE / M_USER_IN_USE. Generated names get a unique suffix.
- register `auth.type`: the only user-interactive stage on offer is
  m.login.dummy (the 401 lists the flows); another is 400 M_UNRECOGNIZED.
  An `auth` without `type` asks how far the session got and is left alone.
  register `auth.session`: a session is server state, and one the server did
  not hand out is 400 M_UNKNOWN "Unknown session ID", as in Synapse; it is
  dropped, which asks for the flows (401).
- sync `since`, messages `from`/`to`, members `at`: a stream token is server state, and one
  beyond the server's stream (which it never handed out) is 400
  M_INVALID_PARAM, so that a client is told rather than silently skipped
  ahead; generated tokens become `s0`, the start of every stream.
- createRoom `power_level_content_override`: the spec types it as an open
  object (the model the service reads is a JSON object); the server refuses
  content that is not power levels (400 M_BAD_JSON). Keys whose values are not
  what m.room.power_levels holds are dropped.
- login `type`: the login types on offer are what GET /login lists (only
  m.login.password); others are 400 M_UNKNOWN, as the Matrix spec asks. An
  `identifier` is the m.id.user kind, which needs a `user`; the schema cannot
  say "required when type is m.id.user" (Swagger 2.0 has no oneOf), and
  without one, or without any `identifier` or `user`, the server answers 400
  M_MISSING_PARAM.
- invite: the body names one of two forms (the overlay's `x-forms`), a
  `user_id` or a third-party address; Swagger 2.0 has no oneOf to say "not
  both", and a body with both is 400 M_BAD_JSON. A generated body that has a
  `user_id` keeps only that form. Third-party invites need an identity server
  and are covered by tests/third_party_invites.rs against Sydent.
- PUT /directory/room/{roomAlias}: only aliases on this server can be
  created (400 M_INVALID_PARAM otherwise); the server name is configuration,
  so the generated alias gets this server's name (`localhost`).
"""

import itertools
import re
from urllib.parse import quote, unquote

import schemathesis

_unique = itertools.count()
_SERVER_NAME = "localhost"
_LEVEL_KEYS = {"ban", "kick", "invite", "redact", "state_default", "events_default", "users_default"}
_LEVEL_MAPS = {"users", "events", "notifications"}
_I64 = (-(2**63), 2**63 - 1)
_TOKEN_PARAMETERS = {"sync": ("since",), "get_room_events": ("from", "to"), "get_members": ("at",)}
_THIRD_PARTY_FIELDS = ("id_server", "id_access_token", "medium", "address")


def _positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _operation_id(case):
    return case.operation.definition.raw.get("operationId")


def _is_level(value):
    return isinstance(value, int) and not isinstance(value, bool) and _I64[0] <= value <= _I64[1]


@schemathesis.hook
def filter_case(ctx, case):
    if not _positive(case):
        return True
    for parameter in case.operation.path_parameters:
        pattern = parameter.definition.get("pattern")
        value = (case.path_parameters or {}).get(parameter.name)
        if pattern and isinstance(value, str) and re.search(pattern, unquote(value)) is None:
            return False
    return True


@schemathesis.hook
def map_case(ctx, case):
    if _positive(case):
        _keep_clear_of_server_rules(case)
    return case


@schemathesis.hook
def before_add_examples(ctx, examples):
    # The examples phase does not run map_case; its cases are all schema-valid.
    for case in examples:
        _keep_clear_of_server_rules(case)


def _keep_clear_of_server_rules(case):
    operation = _operation_id(case)
    body = case.body if isinstance(case.body, dict) else None
    if operation == "create_room" and body is not None:
        if "room_version" in body:
            body["room_version"] = "10"
        if isinstance(body.get("room_alias_name"), str):
            body["room_alias_name"] += f"-{next(_unique)}"
        levels = body.get("power_level_content_override")
        if isinstance(levels, dict):
            for key in list(levels):
                value = levels[key]
                fits = (key in _LEVEL_KEYS and _is_level(value)) or (
                    key in _LEVEL_MAPS and isinstance(value, dict) and all(_is_level(v) for v in value.values())
                )
                if key in _LEVEL_KEYS | _LEVEL_MAPS and not fits:
                    del levels[key]
    elif operation == "register" and body is not None:
        if isinstance(body.get("username"), str):
            body["username"] += f"-{next(_unique)}"
        if isinstance(body.get("auth"), dict):
            if "type" in body["auth"]:
                body["auth"]["type"] = "m.login.dummy"
            body["auth"].pop("session", None)
    elif operation == "login" and body is not None:
        if "type" in body:
            body["type"] = "m.login.password"
        identifier = body.get("identifier")
        if isinstance(identifier, dict):
            identifier["type"] = "m.id.user"
            if not isinstance(identifier.get("user"), str):
                identifier["user"] = "cheeky_monkey"
        elif not isinstance(body.get("user"), str):
            body["identifier"] = {"type": "m.id.user", "user": "cheeky_monkey"}
    elif operation == "post_rooms_room_id_invite" and body is not None and "user_id" in body:
        for field in _THIRD_PARTY_FIELDS:
            body.pop(field, None)
    elif operation in _TOKEN_PARAMETERS and case.query:
        for name in _TOKEN_PARAMETERS[operation]:
            if name in case.query:
                case.query[name] = "s0"
    elif operation == "set_room_alias" and case.path_parameters and "roomAlias" in case.path_parameters:
        alias = unquote(case.path_parameters["roomAlias"])
        local = alias.split(":", 1)[0]
        case.path_parameters["roomAlias"] = quote(f"{local}:{_SERVER_NAME}", safe="")
