//! The homeserver as a client of an identity server (Identity Service API
//! v2): hash details, hashed lookup and store-invite, with the caller's
//! `id_access_token` as the Bearer token.
//!
//! Everything it reads is hostile: each call has a deadline and a cap on the
//! answer's size, and a failure becomes a Matrix error (504 when the server
//! cannot be reached in time, 502 when it answers with an error or nonsense)
//! before anything is written.
//!
//! `id_server` comes from the client, so it is checked before any request:
//! it must be a server name (`host` or `host:port`, nothing else), and unless
//! the operator allows it (`server.identity_server_allow_private`), every
//! address it resolves to must be a public one. The request then goes to the
//! address that was checked, so a name cannot resolve to a public address for
//! the check and a private one for the connection.
//!
//! Identity servers are reached over plain HTTP: this server has no TLS
//! client. That is what the tests' Sydent on loopback speaks; a production
//! identity server behind HTTPS needs a TLS-terminating proxy in between.

use super::error::{ServiceError, ServiceResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long one identity-server request may take, connecting included.
const DEADLINE: Duration = Duration::from_secs(10);
/// The largest answer read from an identity server.
const MAX_ANSWER: usize = 64 * 1024;

/// A client for identity servers, shared by all requests.
#[derive(Clone)]
pub struct IdentityClient {
    http: Client<HttpConnector, Full<Bytes>>,
    /// Whether non-public addresses may be contacted (the tests' Sydent is on loopback).
    allow_private: bool,
}

/// One conversation with one identity server, as one user.
pub struct IdentitySession<'a> {
    client: &'a IdentityClient,
    server: &'a str,
    token: &'a str,
}

/// What `store-invite` hands back, to be put in `m.room.third_party_invite`.
pub struct StoredInvite {
    pub token: String,
    pub content: Map<String, Value>,
}

impl IdentityClient {
    /// A client; `allow_private` lets it reach loopback and private addresses.
    pub fn new(allow_private: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(DEADLINE));
        IdentityClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            allow_private,
        }
    }

    /// Talks to `server` (`host` or `host:port`) with the user's `token`.
    pub fn session<'a>(&'a self, server: &'a str, token: &'a str) -> IdentitySession<'a> {
        IdentitySession {
            client: self,
            server,
            token,
        }
    }
}

/// The Identity Service API's lookup hash: sha256 of `address medium pepper`, URL-safe unpadded base64.
pub fn lookup_hash(address: &str, medium: &str, pepper: &str) -> String {
    let digest = Sha256::digest(format!("{address} {medium} {pepper}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

impl IdentitySession<'_> {
    /// The Matrix user `address` is bound to, if any: hash details, then a hashed lookup.
    pub async fn lookup(&self, medium: &str, address: &str) -> ServiceResult<Option<String>> {
        let details = self.call("GET", "/_matrix/identity/v2/hash_details", None).await?;
        let pepper = details.get("lookup_pepper").and_then(Value::as_str);
        let sha256 = details
            .get("algorithms")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "sha256"));
        let Some(pepper) = pepper.filter(|_| sha256) else {
            return Err(self.nonsense("hash_details offers no sha256 lookup with a pepper"));
        };
        let hashed = lookup_hash(address, medium, pepper);
        let body = json!({"addresses": [hashed], "algorithm": "sha256", "pepper": pepper});
        let found = self.call("POST", "/_matrix/identity/v2/lookup", Some(body)).await?;
        let mappings = found
            .get("mappings")
            .and_then(Value::as_object)
            .ok_or_else(|| self.nonsense("the lookup answer has no mappings"))?;
        match mappings.get(&hashed) {
            None => Ok(None),
            Some(Value::String(mxid)) => Ok(Some(mxid.clone())),
            Some(_) => Err(self.nonsense("the lookup maps the address to something that is not a user ID")),
        }
    }

    /// Stores an invite for `address` and returns its token and the event content.
    pub async fn store_invite(&self, request: Value) -> ServiceResult<StoredInvite> {
        let answer = self
            .call("POST", "/_matrix/identity/v2/store-invite", Some(request))
            .await?;
        let token = answer.get("token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let public_keys = answer.get("public_keys").and_then(Value::as_array);
        let (Some(token), Some(public_keys)) = (token, public_keys) else {
            return Err(self.nonsense("the store-invite answer lacks a token or public_keys"));
        };
        let first = public_keys.first().and_then(Value::as_object);
        let mut content = Map::new();
        content.insert(
            "display_name".into(),
            answer.get("display_name").cloned().unwrap_or_else(|| json!("")),
        );
        if let Some(first) = first {
            for field in ["public_key", "key_validity_url"] {
                if let Some(v) = first.get(field) {
                    content.insert(field.into(), v.clone());
                }
            }
        }
        if let Some(key) = answer.get("public_key") {
            content.insert("public_key".into(), key.clone());
        }
        content.insert("public_keys".into(), Value::Array(public_keys.clone()));
        Ok(StoredInvite {
            token: token.to_string(),
            content,
        })
    }

    /// The address to send a request to: `id_server` parsed, resolved and
    /// checked against the non-public ranges.
    async fn address(&self) -> ServiceResult<SocketAddr> {
        let (host, port) = parse_server_name(self.server).ok_or_else(|| {
            ServiceError::invalid_param(format!(
                "id_server {:?} is not a server name (host or host:port)",
                self.server
            ))
        })?;
        let resolved = tokio::time::timeout(DEADLINE, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| self.unreachable(format!("resolving {host} took over {DEADLINE:?}")))?
            .map_err(|e| self.unreachable(e))?
            .collect::<Vec<_>>();
        let first = *resolved
            .first()
            .ok_or_else(|| self.unreachable(format!("{host} has no address")))?;
        if !self.client.allow_private {
            if let Some(private) = resolved.iter().find(|a| !is_public(a.ip())) {
                return Err(ServiceError::new(
                    403,
                    "M_FORBIDDEN",
                    format!(
                        "The identity server {} is at {}, which is not a public address; this server does not \
                         contact those unless its operator allows it (server.identity_server_allow_private)",
                        self.server,
                        private.ip()
                    ),
                ));
            }
        }
        Ok(first)
    }

    /// One request; its JSON object answer, or a Matrix error naming what went wrong.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> ServiceResult<Map<String, Value>> {
        let uri = format!("http://{}{path}", self.address().await?);
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::HOST, self.server)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
            .map_err(|e| ServiceError::invalid_param(format!("id_server {:?} is not a host: {e}", self.server)))?;
        let exchange = async {
            let response = self
                .client
                .http
                .request(request)
                .await
                .map_err(|e| self.unreachable(e))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| self.nonsense(&format!("reading the answer to {path} failed: {e}")))?
                .to_bytes();
            Ok::<_, ServiceError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(DEADLINE, exchange)
            .await
            .map_err(|_| self.unreachable(format!("no answer to {path} within {DEADLINE:?}")))??;
        let parsed: Option<Map<String, Value>> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            let said = parsed
                .as_ref()
                .map(|m| format!(" ({} {})", text(m, "errcode"), text(m, "error")))
                .unwrap_or_default();
            return Err(self.nonsense(&format!("it answered {status} to {path}{said}")));
        }
        parsed.ok_or_else(|| self.nonsense(&format!("its answer to {path} is not a JSON object")))
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ServiceError {
        ServiceError::new(
            504,
            "M_UNKNOWN",
            format!("Could not reach the identity server {}: {e}", self.server),
        )
    }

    fn nonsense(&self, what: &str) -> ServiceError {
        ServiceError::new(
            502,
            "M_UNKNOWN",
            format!("The identity server {} failed: {what}", self.server),
        )
    }
}

/// `host` or `host:port` as the Matrix spec's server-name grammar has it:
/// a DNS name, an IPv4 address or a bracketed IPv6 address, then an optional
/// port (80 when absent, as for any plain-HTTP URL).
fn parse_server_name(name: &str) -> Option<(&str, u16)> {
    let (host, port) = match name.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<Ipv6Addr>().ok()?;
            (v6, after)
        }
        None => match name.find(':') {
            Some(i) => (&name[..i], &name[i..]),
            None => (name, ""),
        },
    };
    let port = match port {
        "" => 80,
        p => {
            let digits = p.strip_prefix(':')?;
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    let dns_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (dns_ok || name.starts_with('[')).then_some((host, port))
}

/// Whether `ip` is an address on the public internet: not loopback, private,
/// link-local, shared (CGNAT), documentation, benchmarking, multicast,
/// broadcast, reserved or unspecified.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

fn text<'a>(m: &'a Map<String, Value>, field: &str) -> &'a str {
    m.get(field).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_host_and_optional_port_and_nothing_else() {
        assert_eq!(parse_server_name("id.example.org"), Some(("id.example.org", 80)));
        assert_eq!(parse_server_name("127.0.0.1:8090"), Some(("127.0.0.1", 8090)));
        assert_eq!(parse_server_name("[::1]:8090"), Some(("::1", 8090)));
        for bad in [
            "",
            "id.example.org/x",
            "id.example.org:80/_matrix",
            "user@id.example.org",
            "id.example.org:",
            "id.example.org:99999",
            "id.example.org?a",
            "[::1",
            "[nope]:80",
            "http://id.example.org",
        ] {
            assert_eq!(parse_server_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn lookup_hash_is_sha256_of_address_medium_pepper_in_url_safe_base64() {
        // The example of the Identity Service API (the hash of "alice@example.com email matrixrocks").
        assert_eq!(
            lookup_hash("alice@example.com", "email", "matrixrocks"),
            "4kenr7N9drpCJ4AfalmlGQVsOn3o2RHjkADUpXJWZUc"
        );
    }
}
