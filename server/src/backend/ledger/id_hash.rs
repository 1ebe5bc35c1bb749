//! The hasher of the maps keyed by ids that clients choose (request ids,
//! account ids), looked up on every op: foldhash, several times cheaper than
//! std's SipHash on short keys. Its seeds come from std's `RandomState`
//! (the OS's randomness), not foldhash's own address-and-clock seed, so a
//! client cannot pick ids that collide (HashDoS) without knowing them.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;

/// The `BuildHasher` of the id-keyed maps; each one made gets seeds of its own.
#[derive(Debug, Clone)]
pub struct IdHasher(SeedableRandomState);

impl Default for IdHasher {
    /// A hasher with this process's random shared seed and a random seed of its own.
    fn default() -> Self {
        static SHARED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED.get_or_init(|| SharedSeed::from_u64(random_u64()));
        IdHasher(SeedableRandomState::with_seed(random_u64(), shared))
    }
}

impl BuildHasher for IdHasher {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        self.0.build_hasher()
    }
}

/// 64 random bits: std's `RandomState` is keyed from the OS's randomness.
fn random_u64() -> u64 {
    RandomState::new().hash_one(0u8)
}
