//! While the load runs, the client's new memory comes in 4 KiB pages, not
//! transparent huge pages (Linux `PR_SET_THP_DISABLE`); the setting before
//! comes back when the guard drops.
//!
//! Why: mimalloc asks for huge pages on its arenas, and the records a run
//! keeps grow into fresh memory all along. Each first touch of a huge page
//! clears 2 MiB in the kernel (≈ 100 µs), on the cores the server under
//! test shares: `clear_page_erms` was 3–7.5 % of the load thread's CPU in a
//! stream run (perf, bench P5), 0.15 % with small pages. The checker, which
//! runs after, gets huge pages again for its large tables.

/// Small pages for the process while it lives (see the module docs).
#[derive(Debug)]
pub struct SmallPages {
    /// What `PR_GET_THP_DISABLE` said before (restored on drop); none where
    /// the call is not available.
    before: Option<libc::c_ulong>,
}

impl SmallPages {
    /// Turns huge pages off for the process; a kernel without the call
    /// changes nothing (the load runs as before).
    pub fn during_load() -> SmallPages {
        let before = thp_disabled();
        if before.is_some() {
            set_thp_disabled(1);
        }
        SmallPages { before }
    }
}

impl Drop for SmallPages {
    fn drop(&mut self) {
        if let Some(before) = self.before {
            set_thp_disabled(before);
        }
    }
}

#[cfg(target_os = "linux")]
fn thp_disabled() -> Option<libc::c_ulong> {
    // SAFETY: PR_GET_THP_DISABLE takes no pointers; it returns the flag or -1.
    let r = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    libc::c_ulong::try_from(r).ok()
}

#[cfg(target_os = "linux")]
fn set_thp_disabled(value: libc::c_ulong) {
    // SAFETY: PR_SET_THP_DISABLE takes a flag, no pointers; a failure leaves
    // the pages as they were, which only costs speed.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, value, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn thp_disabled() -> Option<libc::c_ulong> {
    None
}

#[cfg(not(target_os = "linux"))]
fn set_thp_disabled(_: libc::c_ulong) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_are_off_during_the_load_and_as_before_after() {
        let before = thp_disabled().expect("prctl(PR_GET_THP_DISABLE) works on Linux");
        {
            let _small = SmallPages::during_load();
            assert_eq!(thp_disabled(), Some(1));
        }
        assert_eq!(thp_disabled(), Some(before));
    }
}
