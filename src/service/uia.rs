//! Registration's user-interactive-auth sessions: short-lived, bounded in
//! number, and each bound to the username it was opened for.
//!
//! Opening one costs nothing but a request, so the table is capped: opening
//! one more than the cap forgets the oldest. Forgetting beats refusing new
//! ones, which would let whoever fills the table once per lifetime shut
//! everyone else out; an evicted client, who normally completes the dummy
//! stage within a second, only has to start again.

use crate::config::RegistrationSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The open sessions.
pub struct UiaSessions {
    ttl: Duration,
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Session>,
    /// Opening order (one lifetime for all, so also expiry order): seq → id.
    by_age: BTreeMap<u64, String>,
    next_seq: u64,
}

struct Session {
    opened: Instant,
    seq: u64,
    /// The lowercased username it was opened for; `None` for a generated one.
    username: Option<String>,
}

/// A session the client named that is not (or no longer) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSession;

impl Table {
    fn remove(&mut self, id: &str) -> Option<Session> {
        let session = self.by_id.remove(id)?;
        self.by_age.remove(&session.seq);
        Some(session)
    }

    fn remove_oldest(&mut self) {
        if let Some((_, id)) = self.by_age.pop_first() {
            self.by_id.remove(&id);
        }
    }

    fn expire(&mut self, ttl: Duration) {
        while let Some(id) = self.by_age.first_key_value().map(|(_, id)| id.clone()) {
            match self.by_id.get(&id) {
                Some(s) if s.opened.elapsed() < ttl => break,
                _ => {
                    self.remove(&id);
                }
            }
        }
    }
}

impl UiaSessions {
    /// Sessions that last `ttl`, at most `max` open at once.
    pub fn new(ttl: Duration, max: usize) -> Self {
        UiaSessions {
            ttl,
            max: max.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// The table `--registration-session-ttl` and `--registration-sessions` ask for.
    pub fn from_config(config: &RegistrationSettings) -> Self {
        Self::new(Duration::from_secs(config.session_ttl), config.sessions)
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for registering `username` and returns its id.
    pub fn open(&self, username: Option<String>) -> String {
        let id = super::random_string(24);
        let mut table = self.lock();
        table.expire(self.ttl);
        while table.by_id.len() >= self.max {
            table.remove_oldest();
        }
        let seq = table.next_seq;
        table.next_seq += 1;
        table.by_age.insert(seq, id.clone());
        table.by_id.insert(
            id.clone(),
            Session {
                opened: Instant::now(),
                seq,
                username,
            },
        );
        id
    }

    /// The username the session was opened for, leaving it open.
    pub fn username(&self, id: &str) -> Result<Option<String>, UnknownSession> {
        let mut table = self.lock();
        table.expire(self.ttl);
        table.by_id.get(id).map(|s| s.username.clone()).ok_or(UnknownSession)
    }

    /// Closes the session; `false` if it was not open (a concurrent request took it).
    pub fn close(&self, id: &str) -> bool {
        let mut table = self.lock();
        table.expire(self.ttl);
        table.remove(id).is_some()
    }

    /// How many sessions are open now.
    pub fn len(&self) -> usize {
        let mut table = self.lock();
        table.expire(self.ttl);
        table.by_id.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_remembers_its_username_until_closed() {
        let sessions = UiaSessions::new(Duration::from_secs(60), 10);
        let a = sessions.open(Some("alice".into()));
        let generated = sessions.open(None);
        assert_eq!(sessions.username(&a), Ok(Some("alice".into())));
        assert_eq!(sessions.username(&generated), Ok(None));
        assert!(sessions.close(&a));
        assert!(!sessions.close(&a), "closed once only");
        assert_eq!(sessions.username(&a), Err(UnknownSession));
        assert_eq!(sessions.username("never opened"), Err(UnknownSession));
    }

    #[test]
    fn sessions_expire() {
        let sessions = UiaSessions::new(Duration::from_millis(20), 10);
        let a = sessions.open(Some("alice".into()));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(sessions.username(&a), Err(UnknownSession));
        assert!(sessions.is_empty());
    }

    #[test]
    fn opening_past_the_cap_forgets_the_oldest_and_the_table_stays_bounded() {
        let sessions = UiaSessions::new(Duration::from_secs(60), 3);
        let ids: Vec<_> = (0..1000).map(|i| sessions.open(Some(format!("u{i}")))).collect();
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.username(&ids[996]), Err(UnknownSession));
        for (i, id) in ids.iter().enumerate().skip(997) {
            assert_eq!(sessions.username(id), Ok(Some(format!("u{i}"))));
        }
        assert_eq!(sessions.lock().by_age.len(), 3, "both indexes shrink together");
    }
}
