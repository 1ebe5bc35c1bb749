//! The in-process monitors of the PostgreSQL ledger: one sync mutex per
//! account id, held around each of the account's transactions. It orders
//! one server's ops on an account (so they queue here, not as row-lock
//! waiters inside the database); the row lock orders them across servers.
//! Only accounts known to exist get one; past `max` known accounts an id
//! gets a mutex of its own (still correct: the row lock decides), so memory
//! stays bounded. A known account's owner (`--auth-tokens`) is kept beside
//! its mutex: it never changes once the account is opened.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// Every known account's mutex.
#[derive(Debug)]
pub struct Monitors {
    map: RwLock<HashMap<Arc<str>, Known>>,
    max: usize,
}

/// What is kept of a known account: its interned id, owner and mutex.
#[derive(Debug, Clone)]
pub struct Known {
    pub id: Arc<str>,
    pub owner: Option<Arc<str>>,
    mutex: Arc<Mutex<()>>,
}

impl Monitors {
    /// Room for `max` accounts' monitors.
    pub fn new(max: usize) -> Self {
        Monitors {
            map: RwLock::default(),
            max: max.max(1),
        }
    }

    /// Whether `id` is known to exist (it has a monitor).
    pub fn knows(&self, id: &str) -> bool {
        self.map.read().contains_key(id)
    }

    /// What is known of `id`, if it is known to exist.
    pub fn known(&self, id: &str) -> Option<Known> {
        self.map.read().get(id).cloned()
    }

    /// Notes that `id` exists, opened by `owner` (it gets its monitor) if
    /// there is room; returns what is known of it either way.
    pub fn add(&self, id: &str, owner: Option<&str>) -> Known {
        let mut map = self.map.write();
        if let Some(known) = map.get(id) {
            return known.clone();
        }
        let known = Known {
            id: Arc::from(id),
            owner: owner.map(Arc::from),
            mutex: Arc::default(),
        };
        if map.len() < self.max {
            map.insert(Arc::clone(&known.id), known.clone());
        }
        known
    }

    /// `id`'s monitor (a fresh, unshared one when `id` is not known).
    pub fn of(&self, id: &str) -> Arc<Mutex<()>> {
        self.map
            .read()
            .get(id)
            .map(|k| Arc::clone(&k.mutex))
            .unwrap_or_default()
    }

    /// Known accounts.
    pub fn count(&self) -> usize {
        self.map.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_accounts_share_one_mutex_and_the_map_is_bounded() {
        let m = Monitors::new(2);
        m.add("a", None);
        m.add("b", Some("alice"));
        m.add("c", None);
        assert_eq!(m.known("b").and_then(|k| k.owner).as_deref(), Some("alice"));
        assert!(m.knows("a") && m.knows("b") && !m.knows("c"));
        assert!(Arc::ptr_eq(&m.of("a"), &m.of("a")));
        assert!(
            !Arc::ptr_eq(&m.of("c"), &m.of("c")),
            "an unknown id shares nothing"
        );
        assert_eq!(m.count(), 2);
    }
}
