//! Registration: whether it is open, which usernames may be taken, and the
//! two-step user-interactive flow (`m.login.dummy`) that ends in an account.
//!
//! Where the Matrix spec is silent this follows Synapse
//! (`synapse/rest/client/register.py`, `synapse/handlers/register.py`):
//! the address limit is checked on every request and charged when an
//! account is created; usernames are lowercased, may not begin with `_` and
//! may not be numeric; a session named by the client that is unknown or
//! expired is 400 `M_UNKNOWN` "Unknown session ID", and one used for a
//! different username than it was opened for is 400 `M_UNKNOWN`, as Synapse
//! answers when a session's registered user ID differs.

use super::error::{ServiceError, ServiceResult};
use super::uia::{UiaSessions, UnknownSession};
use super::{random_string, Service};
use crate::caller::ClientAddr;
use crate::config::{RegistrationMode, Settings};
use crate::ids::{is_valid_localpart, UserId};

/// The only user-interactive-auth stage we offer.
pub const DUMMY_STAGE: &str = "m.login.dummy";

/// Longest accepted `device_id`, as Synapse.
pub const MAX_DEVICE_ID_LEN: usize = 512;

/// What `/register` needs from its request body.
pub struct Registration {
    pub username: Option<String>,
    pub password: Option<String>,
    pub device_id: Option<String>,
    pub inhibit_login: bool,
    /// The UIA stage and session the client completed, if any.
    pub auth: Option<(Option<String>, Option<String>)>,
}

/// The result of one `/register` call.
pub enum RegisterOutcome {
    /// More auth is needed: the 401 body's session.
    NeedsAuth { session: String },
    Registered {
        user_id: UserId,
        session: Option<super::accounts::Session>,
    },
}

/// Whether registration is open, and its sessions.
pub struct Registrar {
    open: bool,
    sessions: UiaSessions,
}

impl Registrar {
    /// The registration `--registration` and the session flags ask for.
    pub fn from_config(settings: &Settings) -> Self {
        Registrar {
            open: settings.registration.mode == RegistrationMode::Open,
            sessions: UiaSessions::from_config(&settings.registration),
        }
    }

    /// The open registration sessions.
    pub fn sessions(&self) -> &UiaSessions {
        &self.sessions
    }
}

/// The warning to log at start when anyone on the network can register.
pub fn open_registration_warning(settings: &Settings) -> Option<String> {
    let bind = settings.server.bind;
    let exposed = !bind.ip().is_loopback();
    (settings.registration.mode == RegistrationMode::Open && exposed).then(|| {
        format!(
            "registration is open and the server listens on {}, beyond this machine: anyone who can reach it \
             can create accounts; start with --registration closed (MATRIX_MEMBERSHIP_REGISTRATION=closed) \
             to turn it off",
            bind
        )
    })
}

/// Logs [`open_registration_warning`], if any; `main` calls it once at start.
pub fn warn_if_registration_is_exposed(settings: &Settings) {
    if let Some(warning) = open_registration_warning(settings) {
        tracing::warn!("{warning}");
    }
}

/// Synapse's username rules beyond the grammar; the `Err` is the sentence for the client.
pub fn check_username(localpart: &str) -> Result<(), String> {
    if !is_valid_localpart(localpart) {
        return Err(format!(
            "{localpart:?} is not a valid username: use only a-z, 0-9, '.', '_', '=', '-' and '/'"
        ));
    }
    if localpart.starts_with('_') {
        return Err(format!(
            "{localpart:?} is not a valid username: user IDs may not begin with '_'"
        ));
    }
    if is_numeric(localpart) {
        return Err(format!(
            "{localpart:?} is not a valid username: numeric user IDs are reserved for guest users"
        ));
    }
    Ok(())
}

/// What Synapse's `int(localpart)` accepts within our grammar: an optional
/// sign, then digits with single underscores between them.
fn is_numeric(localpart: &str) -> bool {
    let digits = localpart.strip_prefix('-').unwrap_or(localpart);
    !digits.is_empty()
        && digits
            .split('_')
            .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit()))
}

/// A localpart for a registration that names none; it starts with a letter,
/// so it is never numeric nor begins with `_`.
fn generated_localpart() -> String {
    format!("u{}", random_string(10).to_lowercase())
}

/// The username a completing request registers: the session's, which the
/// request may restate or omit (Synapse reuses the parameters a session was
/// opened with when a request leaves them out) but not change.
fn bound_username(opened_for: Option<String>, requested: Option<String>) -> ServiceResult<Option<String>> {
    match (opened_for, requested) {
        (opened_for, None) => Ok(opened_for),
        (Some(a), Some(b)) if a == b => Ok(Some(a)),
        (opened_for, Some(b)) => Err(ServiceError::new(
            400,
            "M_UNKNOWN",
            format!(
                "A different user ID was requested when this registration session was opened ({}), not {b:?}; \
                 start a new session to register {b:?}",
                opened_for.map_or_else(|| "a generated one".to_string(), |a| format!("{a:?}"))
            ),
        )),
    }
}

/// Refuses a `device_id` longer than Synapse accepts, or holding U+0000
/// (a key no store can hold on every backend: PostgreSQL `text` cannot).
pub fn check_device_id(device_id: Option<&str>) -> ServiceResult<()> {
    match device_id {
        Some(d) if d.len() > MAX_DEVICE_ID_LEN => Err(ServiceError::invalid_param(format!(
            "device_id cannot be longer than {MAX_DEVICE_ID_LEN} characters"
        ))),
        Some(d) if d.contains('\0') => Err(ServiceError::invalid_param("device_id may not contain U+0000")),
        _ => Ok(()),
    }
}

impl Service {
    /// Whether registration is open, and its sessions (for tests that check the bound).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Registers an account; a call without a session only opens one.
    pub async fn register(&self, reg: Registration, client: Option<ClientAddr>) -> ServiceResult<RegisterOutcome> {
        if let Some(ClientAddr(address)) = &client {
            self.limits.registration.peek(address)?;
        }
        if !self.registrar.open {
            return Err(ServiceError::forbidden("Registration has been disabled"));
        }
        check_device_id(reg.device_id.as_deref())?;
        let requested = reg.username.as_deref().map(str::to_lowercase);
        let session = match &reg.auth {
            Some((Some(stage), _)) if stage != DUMMY_STAGE => {
                return Err(ServiceError::new(
                    400,
                    "M_UNRECOGNIZED",
                    format!("auth type {stage:?} is not offered; use {DUMMY_STAGE}"),
                ))
            }
            // No stage: the client asks how far it got (Synapse answers the
            // flows again, with its session, or a new one if it had none).
            Some((None, session)) => {
                let session = match session {
                    Some(id) => {
                        self.registrar
                            .sessions
                            .username(id)
                            .map_err(|e| self.unknown_session(e))?;
                        id.clone()
                    }
                    None => self.registrar.sessions.open(requested),
                };
                return Ok(RegisterOutcome::NeedsAuth { session });
            }
            Some((Some(_), session)) => session.clone(),
            None => None,
        };
        let username = match &session {
            None => requested,
            Some(id) => {
                let opened_for = self
                    .registrar
                    .sessions
                    .username(id)
                    .map_err(|e| self.unknown_session(e))?;
                bound_username(opened_for, requested)?
            }
        };
        if let Some(name) = &username {
            self.check_available(name).await?;
        }
        let Some(session) = session else {
            return Ok(RegisterOutcome::NeedsAuth {
                session: self.registrar.sessions.open(username),
            });
        };
        self.complete_registration(reg, username, &session, client).await
    }

    /// 400 for a username the rules refuse or someone holds.
    async fn check_available(&self, localpart: &str) -> ServiceResult<UserId> {
        check_username(localpart).map_err(|why| ServiceError::new(400, "M_INVALID_USERNAME", why))?;
        let user_id =
            UserId::new(localpart, &self.server_name).map_err(|e| ServiceError::new(400, "M_INVALID_USERNAME", e.0))?;
        if self.store.user_exists(&user_id).await? {
            return Err(ServiceError::new(
                400,
                "M_USER_IN_USE",
                format!("{user_id} is already taken"),
            ));
        }
        Ok(user_id)
    }

    fn unknown_session(&self, _: UnknownSession) -> ServiceError {
        ServiceError::new(
            400,
            "M_UNKNOWN",
            format!(
                "Unknown session ID: the registration session is unknown or expired (sessions last {} s); \
                 start again with a request without auth",
                self.registrar.sessions.ttl().as_secs()
            ),
        )
    }

    async fn complete_registration(
        &self,
        reg: Registration,
        username: Option<String>,
        session: &str,
        client: Option<ClientAddr>,
    ) -> ServiceResult<RegisterOutcome> {
        // Charged before the deliberately slow hash, so the limit bounds that work too.
        if let Some(ClientAddr(address)) = &client {
            self.limits.registration.check(address)?;
        }
        // An account without a password (Matrix allows it) skips the hash; it
        // simply cannot log in with m.login.password.
        let hash = match reg.password.filter(|p| !p.is_empty()) {
            None => String::new(),
            Some(password) => self.passwords.hash(password).await?,
        };
        if !self.registrar.sessions.close(session) {
            return Err(self.unknown_session(UnknownSession));
        }
        let user_id = match username {
            Some(name) => self.check_available(&name).await?,
            None => self.check_available(&generated_localpart()).await?,
        };
        if !self.store.create_user(&user_id, &hash).await? {
            return Err(ServiceError::new(
                400,
                "M_USER_IN_USE",
                format!("{user_id} is already taken"),
            ));
        }
        let session = if reg.inhibit_login {
            None
        } else {
            Some(self.open_session(&user_id, reg.device_id).await?)
        };
        Ok(RegisterOutcome::Registered { user_id, session })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_synapses_rules() {
        for ok in ["alice", "a_b", "1a", "a1", "1.5", "u=1", "x-1", "1-2"] {
            assert_eq!(check_username(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("_alice", "may not begin with '_'"),
            ("_", "may not begin with '_'"),
            ("12345", "numeric user IDs are reserved"),
            ("0", "numeric user IDs are reserved"),
            ("-12", "numeric user IDs are reserved"),
            ("1_000", "numeric user IDs are reserved"),
            ("Alice", "use only a-z"),
            ("", "use only a-z"),
        ] {
            let err = check_username(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn generated_usernames_satisfy_the_rules() {
        for _ in 0..1000 {
            let name = generated_localpart();
            assert_eq!(check_username(&name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_session_binds_the_username_it_was_opened_for() {
        let a = || Some("alice".to_string());
        assert_eq!(bound_username(a(), a()).unwrap(), a());
        assert_eq!(bound_username(a(), None).unwrap(), a(), "omitted: the session's");
        assert_eq!(bound_username(None, None).unwrap(), None);
        for (opened, asked) in [(a(), Some("bob".to_string())), (None, a())] {
            let err = bound_username(opened, asked).unwrap_err();
            assert_eq!((err.status, err.errcode), (400, "M_UNKNOWN"), "{}", err.message);
        }
    }

    fn config(args: &[&str]) -> Settings {
        crate::config::settings_from_args(std::iter::once("matrix-membership").chain(args.iter().copied()))
            .expect("settings")
    }

    #[test]
    fn open_registration_beyond_loopback_is_warned_about() {
        assert!(
            open_registration_warning(&config(&[])).is_none(),
            "127.0.0.1 by default"
        );
        assert!(open_registration_warning(&config(&["--bind", "[::1]:8008"])).is_none());
        let warning = open_registration_warning(&config(&["--bind", "0.0.0.0:8008"])).unwrap();
        assert!(warning.contains("--registration closed"), "{warning}");
        assert!(open_registration_warning(&config(&["--bind", "0.0.0.0:8008", "--registration", "closed"])).is_none());
    }
}
