//! `max_accounts` and `max_accounts_per_principal` against a model: any
//! sequence of opens by any owners (none, alice, bob) gets exactly the
//! answers the model predicts, and concurrent opens by one owner never pass
//! its quota.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::{Ledger, LedgerConfig, LedgerError};

const MAX_ACCOUNTS: usize = 12;
const PER_PRINCIPAL: usize = 5;
const OWNERS: [Option<&str>; 3] = [None, Some("alice"), Some("bob")];

fn ledger() -> Ledger {
    Ledger::new(LedgerConfig {
        max_accounts: MAX_ACCOUNTS,
        max_accounts_per_principal: PER_PRINCIPAL,
        ..LedgerConfig::default()
    })
}

/// What the model says an open of `id` by `owner` answers: `Ok`, or the
/// error's kind ("exists" or "limit").
fn predicted(
    ids: &HashSet<String>,
    held: &HashMap<&str, usize>,
    id: &str,
    owner: Option<&str>,
) -> &'static str {
    if ids.contains(id) {
        return "exists";
    }
    let owner_full = owner.is_some_and(|o| held.get(o).copied().unwrap_or(0) >= PER_PRINCIPAL);
    if ids.len() >= MAX_ACCOUNTS || owner_full {
        return "limit";
    }
    "ok"
}

proptest! {
    #[test]
    fn opens_follow_the_model(opens in prop::collection::vec((0..3usize, 0..24u8), 0..60)) {
        let ledger = ledger();
        let (mut ids, mut held) = (HashSet::new(), HashMap::new());
        for (who, n) in opens {
            let (owner, id) = (OWNERS[who], format!("acct-{n}"));
            let want = predicted(&ids, &held, &id, owner);
            let got = match ledger.open_owned(&id, 1, owner) {
                Ok(_) => "ok",
                Err(LedgerError::AccountExists(_)) => "exists",
                Err(LedgerError::LimitReached(_)) => "limit",
                Err(e) => panic!("unexpected {e}"),
            };
            prop_assert_eq!(got, want, "{:?} opens {}", owner, id);
            if got == "ok" {
                ids.insert(id);
                if let Some(o) = owner {
                    *held.entry(o).or_insert(0) += 1;
                }
            }
        }
        prop_assert_eq!(ledger.account_count(), ids.len());
        for owner in ["alice", "bob"] {
            prop_assert_eq!(ledger.accounts_of(owner), held.get(owner).copied().unwrap_or(0));
        }
    }
}

#[test]
fn concurrent_opens_never_pass_the_quota() {
    let ledger = Arc::new(ledger());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                (0..5)
                    .filter(|i| ledger.open_owned(&format!("b-{t}-{i}"), 1, Some("bob")).is_ok())
                    .count()
            })
        })
        .collect();
    let opened: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        (opened, ledger.accounts_of("bob")),
        (PER_PRINCIPAL, PER_PRINCIPAL)
    );
    assert!(
        ledger.open_owned("a-0", 1, Some("alice")).is_ok(),
        "alice has room"
    );
}
