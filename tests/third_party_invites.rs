//! Third-party (email) invites against a real identity server: Sydent,
//! installed pinned and started by `tests/sydent/sydent.sh` on a free port,
//! with a fake mail server whose messages the test reads the validation
//! token from. The homeserver's server name is `127.0.0.1:PORT`, so Sydent
//! reaches it directly over plain HTTP for the OpenID check and `onbind`.

mod common;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use common::{TestServer, User};
use ed25519_dalek::{Signer, SigningKey};
use matrix_membership::generated::api::{GetRoomStateEventResponse, GetRoomStateResponse, RequestOpenIdTokenResponse};
use matrix_membership::generated::models;
use matrix_membership::membership::third_party::canonical_json;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running Sydent; it exits with the test binary (see run_sydent.py).
struct Sydent {
    port: u16,
    data: PathBuf,
    _child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this machine can make a Python venv; Sydent needs one.
fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The one Sydent of this test binary, started on first use; `None` (with a
/// printed reason) only where there is no python3 with venv.
fn sydent() -> Option<&'static Sydent> {
    static SYDENT: OnceLock<Option<Sydent>> = OnceLock::new();
    SYDENT.get_or_init(start_sydent).as_ref()
}

fn start_sydent() -> Option<Sydent> {
    if !python_available() {
        eprintln!("SKIPPED: third-party invite tests need python3 with venv to run Sydent, and this machine has none");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::Builder::new().prefix("sydent").tempdir().unwrap().keep();
    let port = free_port();
    let log = std::fs::File::create(data.join("sydent.log")).unwrap();
    let child = Command::new("bash")
        .arg(root.join("tests/sydent/sydent.sh"))
        .args(["--port", &port.to_string(), "--data"])
        .arg(&data)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run tests/sydent/sydent.sh");
    let mut sydent = Sydent {
        port,
        data,
        _child: child,
    };
    // The first run installs the venv; later ones start in a second or two.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(sydent);
        }
        if let Ok(Some(status)) = sydent._child.try_wait() {
            let log = std::fs::read_to_string(sydent.data.join("sydent.log")).unwrap_or_default();
            panic!("Sydent exited ({status}) before listening:\n{log}");
        }
        assert!(Instant::now() < deadline, "Sydent did not listen on {port} in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Sydent {
    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One request to Sydent's client API; its status and JSON answer. Plain
    /// HTTP/1.1 over a socket: the harness's checked client is for our server only.
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let payload = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        // Twisted may answer chunked: the JSON object sits between the chunk sizes.
        let json = payload
            .find('{')
            .and_then(|a| payload.rfind('}').map(|b| &payload[a..=b]))
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or(Value::Null);
        (status, json)
    }

    /// Registers `user` at Sydent with an OpenID token from our server
    /// (Sydent checks it at our `/openid/userinfo`); returns the id_access_token.
    async fn register(&self, user: &User) -> String {
        let openid = match user
            .client
            .request_open_id_token(&user.id, Some(&Default::default()))
            .await
            .unwrap()
        {
            RequestOpenIdTokenResponse::Ok(ok) => ok,
            other => panic!("request_token: {other:?}"),
        };
        assert_eq!(openid.expires_in, 3600);
        let body = serde_json::to_value(&openid).unwrap();
        let (status, answer) = self
            .call("POST", "/_matrix/identity/v2/account/register", None, Some(body))
            .await;
        assert_eq!(status, 200, "Sydent refused the registration: {answer}");
        answer["token"].as_str().expect("token").to_string()
    }

    /// Proves `email` belongs to the holder of `token` (requestToken, the
    /// token from the fake mail, submitToken) and binds it to `mxid`.
    async fn bind_email(&self, token: &str, email: &str, mxid: &str) {
        let secret = format!("secret{}", free_port());
        let before = self.mails();
        let (status, answer) = self
            .call(
                "POST",
                "/_matrix/identity/v2/validate/email/requestToken",
                Some(token),
                Some(json!({"client_secret": secret, "email": email, "send_attempt": 1})),
            )
            .await;
        assert_eq!(status, 200, "requestToken: {answer}");
        let sid = answer["sid"].as_str().expect("sid").to_string();
        let mail = self.wait_for_mail(&before, email).await;
        let code = mail
            .lines()
            .find_map(|l| l.strip_prefix("Validation-Token: "))
            .expect("a validation token in the mail")
            .trim()
            .to_string();
        let (status, answer) = self
            .call(
                "POST",
                "/_matrix/identity/v2/validate/email/submitToken",
                Some(token),
                Some(json!({"sid": sid, "client_secret": secret, "token": code})),
            )
            .await;
        assert_eq!(
            (status, &answer["success"]),
            (200, &json!(true)),
            "submitToken: {answer}"
        );
        let (status, answer) = self
            .call(
                "POST",
                "/_matrix/identity/v2/3pid/bind",
                Some(token),
                Some(json!({"sid": sid, "client_secret": secret, "mxid": mxid})),
            )
            .await;
        assert_eq!(status, 200, "bind: {answer}");
    }

    fn mails(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.data.join("mail"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        v.sort();
        v
    }

    /// The first mail to `email` that was not among `before`. Tests share one
    /// Sydent and run at once, so the newest mail may be someone else's.
    async fn wait_for_mail(&self, before: &[PathBuf], email: &str) -> String {
        for _ in 0..100 {
            for path in self.mails().iter().filter(|p| !before.contains(p)) {
                let mail = std::fs::read_to_string(path).unwrap();
                if mail.contains(email) {
                    return mail;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail arrived");
    }
}

/// A homeserver named after its own address, so Sydent can reach it, and
/// allowed to reach the identity server on loopback.
async fn homeserver(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--identity-server-allow-private"];
    flags.extend_from_slice(extra);
    homeserver_as_shipped(&flags).await
}

/// A homeserver with the shipped default: no identity servers at non-public addresses.
async fn homeserver_as_shipped(extra: &[&str]) -> TestServer {
    let port = free_port();
    let name = format!("127.0.0.1:{port}");
    let mut flags = vec!["--server-name", name.as_str()];
    flags.extend_from_slice(extra);
    common::start_in(tempfile::tempdir().unwrap(), &name, &flags).await
}

/// A homeserver where alice (registered at Sydent) has invited `email`, not
/// yet bound, to a private room; carol exists but has bound nothing.
async fn carol_invited_by_email(sydent: &Sydent, email: &str) -> (TestServer, User, User, String) {
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let carol = s.register("carol").await;
    let alice_is = sydent.register(&alice).await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let resp = invite_raw(
        &s,
        &alice,
        &room,
        &third_party_body(&sydent.server(), Some(&alice_is), email),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    (s, alice, carol, room)
}

fn third_party_body(id_server: &str, token: Option<&str>, email: &str) -> Value {
    let mut body = json!({"id_server": id_server, "medium": "email", "address": email});
    if let Some(t) = token {
        body["id_access_token"] = json!(t);
    }
    body
}

async fn invite_raw(s: &TestServer, user: &User, room: &str, body: &Value) -> common::RawResponse {
    let token = user.client.access_token().unwrap().to_string();
    let path = format!("/_matrix/client/v3/rooms/{}/invite", urlencode(room));
    s.raw(
        "POST",
        &path,
        &[("authorization", &format!("Bearer {token}"))],
        body.to_string().as_bytes(),
    )
    .await
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `who`'s membership event content in `room`, as `reader` sees it.
async fn member_content(reader: &User, room: &str, who: &str) -> Option<Value> {
    match reader
        .client
        .get_room_state_event(room, "m.room.member", who)
        .await
        .unwrap()
    {
        GetRoomStateEventResponse::Ok(content) => Some(Value::Object(content)),
        _ => None,
    }
}

/// The room's `m.room.third_party_invite` events.
async fn third_party_invites(reader: &User, room: &str) -> Vec<models::ClientEvent> {
    match reader.client.get_room_state(room).await.unwrap() {
        GetRoomStateResponse::Ok(events) => events
            .into_iter()
            .filter(|e| e.r#type == "m.room.third_party_invite")
            .collect(),
        other => panic!("state: {other:?}"),
    }
}

#[tokio::test]
async fn an_email_bound_at_the_identity_server_invites_its_user_directly() {
    let Some(sydent) = sydent() else { return };
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let alice_is = sydent.register(&alice).await;
    let bob_is = sydent.register(&bob).await;
    sydent.bind_email(&bob_is, "bob@example.org", &bob.id).await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;

    let resp = invite_raw(
        &s,
        &alice,
        &room,
        &third_party_body(&sydent.server(), Some(&alice_is), "bob@example.org"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    let content = member_content(&alice, &room, &bob.id)
        .await
        .expect("bob's member event");
    assert_eq!(content["membership"], "invite");
    assert!(
        content.get("third_party_invite").is_none(),
        "a bound address is an ordinary invite"
    );
    assert!(third_party_invites(&alice, &room).await.is_empty());
    bob.join(&room).await;
}

#[tokio::test]
async fn an_unbound_email_gets_a_third_party_invite_that_becomes_a_member_invite_on_bind() {
    let Some(sydent) = sydent() else { return };
    let email = "carol@example.org";
    let (_server, alice, carol, room) = carol_invited_by_email(sydent, email).await;
    let pending = third_party_invites(&alice, &room).await;
    assert_eq!(pending.len(), 1);
    let event = &pending[0];
    assert_eq!(event.sender, alice.id);
    let token = event.state_key.clone().expect("state key is the token");
    assert!(!token.is_empty());
    assert!(event.content["public_key"].is_string());
    assert!(event.content["public_keys"].as_array().is_some_and(|k| !k.is_empty()));
    assert!(event.content["key_validity_url"].is_string());
    assert!(event.content["display_name"]
        .as_str()
        .is_some_and(|d| !d.contains(email)));
    assert!(member_content(&alice, &room, &carol.id).await.is_none());

    // Carol binds her address; Sydent calls our onbind with the signed invite.
    let carol_is = sydent.register(&carol).await;
    sydent.bind_email(&carol_is, email, &carol.id).await;
    let mut content = None;
    for _ in 0..100 {
        content = member_content(&alice, &room, &carol.id).await;
        if content.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let content = content.expect("onbind turned the invite into a member invite");
    assert_eq!(content["membership"], "invite");
    assert_eq!(content["third_party_invite"]["signed"]["mxid"], carol.id.as_str());
    assert_eq!(content["third_party_invite"]["signed"]["token"], token.as_str());
    assert_eq!(
        content["third_party_invite"]["display_name"],
        event.content["display_name"]
    );
    carol.join(&room).await;
    assert_eq!(
        member_content(&alice, &room, &carol.id).await.unwrap()["membership"],
        "join"
    );
}

#[tokio::test]
async fn a_user_who_blocks_invites_gets_no_member_invite_when_binding_a_pending_address() {
    let Some(sydent) = sydent() else { return };
    let email = "blocking-carol@example.org";
    let (s, alice, carol, room) = carol_invited_by_email(sydent, email).await;
    let config = json!({"default_action": "block"});
    let config = config.as_object().unwrap().clone();
    let set = carol
        .client
        .set_account_data(&carol.id, "m.invite_permission_config", &config)
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let before = s.service_pos();
    let carol_is = sydent.register(&carol).await;
    sydent.bind_email(&carol_is, email, &carol.id).await;
    // Unblocked, the invite arrives well within a second (see the test above).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        member_content(&alice, &room, &carol.id).await.is_none(),
        "a user who blocks invites was invited on bind"
    );
    assert_eq!(s.service_pos(), before, "the refused bind writes nothing");
}

#[tokio::test]
async fn a_forged_signature_on_a_third_party_invite_is_refused_and_writes_nothing() {
    let Some(sydent) = sydent() else { return };
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let dave = s.register("dave").await;
    let alice_is = sydent.register(&alice).await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let resp = invite_raw(
        &s,
        &alice,
        &room,
        &third_party_body(&sydent.server(), Some(&alice_is), "dave@example.org"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.json);
    let token = third_party_invites(&alice, &room).await[0].state_key.clone().unwrap();

    // Signed, but by a key the room was never told of.
    let forger = SigningKey::from_bytes(&[42u8; 32]);
    let bare = json!({"mxid": dave.id, "token": token});
    let sig = forger.sign(canonical_json(&bare).unwrap().as_bytes());
    let bind = json!({
        "medium": "email", "address": "dave@example.org", "mxid": dave.id,
        "invites": [{"room_id": room, "sender": alice.id, "mxid": dave.id, "signed": {
            "mxid": dave.id, "token": token,
            "signatures": {sydent.server(): {"ed25519:0": STANDARD_NO_PAD.encode(sig.to_bytes())}}
        }}]
    });
    let before = s.service_pos();
    let resp = s
        .raw(
            "PUT",
            "/_matrix/federation/v1/3pid/onbind",
            &[],
            bind.to_string().as_bytes(),
        )
        .await;
    resp.assert_error(403, "M_FORBIDDEN");
    assert!(
        resp.json["error"].as_str().unwrap().contains("No signature"),
        "{}",
        resp.json
    );
    assert_eq!(s.service_pos(), before, "a refused invite writes nothing");
    assert!(member_content(&alice, &room, &dave.id).await.is_none());
    // The signing rules cover every field: a token the identity server never signed for dave.
    let mut wrong_user = bind.clone();
    wrong_user["invites"][0]["signed"]["mxid"] = json!(alice.id);
    let resp = s
        .raw(
            "POST",
            "/_matrix/federation/v1/3pid/onbind",
            &[],
            wrong_user.to_string().as_bytes(),
        )
        .await;
    resp.assert_error(403, "M_FORBIDDEN");
    assert_eq!(s.service_pos(), before);
}

#[tokio::test]
async fn a_third_party_invite_without_id_access_token_is_400_missing_param() {
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let before = s.service_pos();
    let resp = invite_raw(
        &s,
        &alice,
        &room,
        &third_party_body("127.0.0.1:1", None, "x@example.org"),
    )
    .await;
    resp.assert_error(400, "M_MISSING_PARAM");
    assert!(resp.json["error"].as_str().unwrap().contains("id_access_token"));
    let mut both = third_party_body("127.0.0.1:1", Some("t"), "x@example.org");
    both["user_id"] = json!(alice.id);
    invite_raw(&s, &alice, &room, &both)
        .await
        .assert_error(400, "M_BAD_JSON");
    invite_raw(&s, &alice, &room, &json!({}))
        .await
        .assert_error(400, "M_MISSING_PARAM");
    assert_eq!(s.service_pos(), before);
}

#[tokio::test]
async fn an_identity_server_that_is_down_or_refuses_gets_a_matrix_error_and_nothing_is_written() {
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let before = s.service_pos();
    let down = format!("127.0.0.1:{}", free_port());
    let resp = invite_raw(&s, &alice, &room, &third_party_body(&down, Some("t"), "x@example.org")).await;
    resp.assert_error(504, "M_UNKNOWN");
    assert!(resp.json["error"].as_str().unwrap().contains(&down));
    assert_eq!(s.service_pos(), before);

    let Some(sydent) = sydent() else { return };
    // Sydent answers 401 to a token it never issued.
    let resp = invite_raw(
        &s,
        &alice,
        &room,
        &third_party_body(&sydent.server(), Some("not-a-token"), "x@example.org"),
    )
    .await;
    resp.assert_error(502, "M_UNKNOWN");
    assert!(resp.json["error"].as_str().unwrap().contains("401"), "{}", resp.json);
    assert_eq!(s.service_pos(), before);
    assert!(third_party_invites(&alice, &room).await.is_empty());
}

#[tokio::test]
async fn a_client_cannot_point_the_server_at_private_addresses_or_arbitrary_urls() {
    let s = homeserver_as_shipped(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let before = s.service_pos();
    // A listener that would see any request the server sent it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let inside = listener.local_addr().unwrap().to_string();
    for target in [
        inside.as_str(),
        "localhost",
        "10.0.0.1:80",
        "[::1]:8090",
        "169.254.169.254",
    ] {
        let resp = invite_raw(&s, &alice, &room, &third_party_body(target, Some("t"), "x@example.org")).await;
        resp.assert_error(403, "M_FORBIDDEN");
        assert!(
            resp.json["error"].as_str().unwrap().contains("not a public address"),
            "{target}: {}",
            resp.json
        );
    }
    assert!(listener.accept().is_err(), "the server connected to a loopback address");
    for not_a_name in [
        format!("{inside}/_matrix/admin#"),
        format!("user@{inside}"),
        "http://example.org".into(),
    ] {
        invite_raw(
            &s,
            &alice,
            &room,
            &third_party_body(&not_a_name, Some("t"), "x@example.org"),
        )
        .await
        .assert_error(400, "M_INVALID_PARAM");
    }
    assert_eq!(s.service_pos(), before, "nothing is written");
}

#[tokio::test]
async fn third_party_invites_have_their_own_rate_limit() {
    let s = homeserver(&["--third-party-invite-rate", "0.001", "--third-party-invite-burst", "2"]).await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let down = format!("127.0.0.1:{}", free_port());
    let body = third_party_body(&down, Some("t"), "x@example.org");
    // Charged before the identity server is asked, so failed attempts count too.
    for _ in 0..2 {
        invite_raw(&s, &alice, &room, &body)
            .await
            .assert_error(504, "M_UNKNOWN");
    }
    invite_raw(&s, &alice, &room, &body)
        .await
        .assert_error(429, "M_LIMIT_EXCEEDED");
    // Ordinary invites draw on their own budget.
    let resp = invite_raw(&s, &alice, &room, &json!({"user_id": bob.id})).await;
    assert_eq!(resp.status, 200, "{}", resp.json);
}

#[tokio::test]
async fn openid_tokens_are_only_for_oneself_and_name_their_user() {
    let s = homeserver(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    match alice.client.request_open_id_token(&bob.id, None).await.unwrap() {
        RequestOpenIdTokenResponse::Forbidden(e) => assert_eq!(e.errcode, "M_FORBIDDEN"),
        other => panic!("{other:?}"),
    }
    let token = match alice.client.request_open_id_token(&alice.id, None).await.unwrap() {
        RequestOpenIdTokenResponse::Ok(ok) => {
            assert_eq!(ok.matrix_server_name, s.service.server_name());
            ok.access_token
        }
        other => panic!("{other:?}"),
    };
    let path = format!("/_matrix/federation/v1/openid/userinfo?access_token={token}");
    let resp = s.raw("GET", &path, &[], b"").await;
    assert_eq!((resp.status, resp.json["sub"].as_str()), (200, Some(alice.id.as_str())));
    s.raw(
        "GET",
        "/_matrix/federation/v1/openid/userinfo?access_token=nope",
        &[],
        b"",
    )
    .await
    .assert_error(401, "M_UNKNOWN_TOKEN");
}
