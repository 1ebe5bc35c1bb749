//! The storage under a request log: its ids in the order they came, each in
//! a slot with what it did, kept in a ring (a `VecDeque`); and an index from
//! an id to its slot's position, hashed with [`IdHasher`].
//!
//! Why not a map from id to entry beside a queue of ids: at the default
//! retention (100,000 ids per account) that map's buckets (id and entry,
//! 88 bytes) made a table of tens of MB that every op probed at random and
//! grew page by page. The index here holds 8-byte positions (a table of a
//! few MB that stays in cache), the entries sit in the ring in arrival
//! order, and the slot that ages out is the ring's front, whose own index
//! entry is found by position without reading its id again.
//!
//! A slot whose id was forgotten stays in the ring without an entry (stale)
//! until it reaches the front, as the ids of the queue it replaces did.
//! Positions only grow: the front's is `front`, the next one's after it.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::id_hash::IdHasher;

/// One id in arrival order: the id, its hash, what it did (`None` once
/// forgotten), and its node in the server-wide budget (`id_budget`; only
/// meaningful while the entry is there).
#[derive(Debug)]
pub(super) struct Slot<E> {
    pub(super) key: Arc<str>,
    pub(super) hash: u64,
    pub(super) node: u32,
    pub(super) entry: Option<E>,
}

/// The ring of slots and the index of the ones that hold an entry.
#[derive(Debug)]
pub(super) struct Slots<E> {
    ring: VecDeque<Slot<E>>,
    /// The position of the ring's front slot.
    front: u64,
    /// The position of every slot that holds an entry, by its id's hash.
    index: HashTable<u64>,
    hasher: IdHasher,
    /// The ring's usual largest length: it doubles up to this, not past it.
    usual_len: usize,
}

impl<E> Slots<E> {
    /// Empty slots whose ring usually holds at most `usual_len` (the log's
    /// retention + 1): its capacity stops there instead of doubling past it
    /// (a ring of 100,001 slots doubled to 131,072 wasted 30 % of its bytes;
    /// beyond it, stale slots make it double again).
    pub(super) fn new(usual_len: usize) -> Self {
        Slots {
            ring: VecDeque::new(),
            front: 0,
            index: HashTable::new(),
            hasher: IdHasher::default(),
            usual_len,
        }
    }

    /// How many slots hold an entry (ids remembered).
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// How many slots the ring holds, stale ones included.
    pub(super) fn order_len(&self) -> usize {
        self.ring.len()
    }

    /// The hash of `key` in this index.
    pub(super) fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The position of the slot that holds `key` (whose hash is `hash`).
    pub(super) fn find(&self, key: &str, hash: u64) -> Option<u64> {
        self.index.find(hash, |&pos| *self.get(pos).key == *key).copied()
    }

    /// The slot at `pos`, which must be in the ring.
    pub(super) fn get(&self, pos: u64) -> &Slot<E> {
        &self.ring[self.offset(pos)]
    }

    /// The slot at `pos`, if the ring still (or already) holds that position.
    pub(super) fn at(&self, pos: u64) -> Option<&Slot<E>> {
        let at = usize::try_from(pos.checked_sub(self.front)?).ok()?;
        self.ring.get(at)
    }

    /// The position the next slot pushed will take.
    pub(super) fn next_pos(&self) -> u64 {
        self.front + self.ring.len() as u64
    }

    /// The entry of the slot at `pos`, if it holds one.
    pub(super) fn entry_mut(&mut self, pos: u64) -> Option<&mut E> {
        let at = self.offset(pos);
        self.ring[at].entry.as_mut()
    }

    /// The front slot and its position.
    pub(super) fn front(&self) -> Option<(u64, &Slot<E>)> {
        self.ring.front().map(|slot| (self.front, slot))
    }

    /// Appends `slot` (indexed if it holds an entry); returns its position.
    pub(super) fn push_back(&mut self, slot: Slot<E>) -> u64 {
        let pos = self.next_pos();
        let (hash, held) = (slot.hash, slot.entry.is_some());
        self.grow_if_full();
        self.ring.push_back(slot);
        if held {
            // Pushed first: a resize rehashes every indexed slot, this one too.
            let (ring, front) = (&self.ring, self.front);
            self.index
                .insert_unique(hash, pos, |&p| ring[(p - front) as usize].hash);
        }
        pos
    }

    /// Removes the front slot, and its index entry if it held one.
    pub(super) fn pop_front(&mut self) -> Option<Slot<E>> {
        let slot = self.ring.pop_front()?;
        if slot.entry.is_some() {
            self.unindex(slot.hash, self.front);
        }
        self.front += 1;
        Some(slot)
    }

    /// Takes the entry of the slot at `pos` (it stays in the ring, stale).
    pub(super) fn take(&mut self, pos: u64) -> Option<E> {
        let at = self.offset(pos);
        let slot = &mut self.ring[at];
        let (hash, entry) = (slot.hash, slot.entry.take());
        if entry.is_some() {
            self.unindex(hash, pos);
        }
        entry
    }

    /// Every slot, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot<E>> {
        self.ring.iter()
    }

    /// Makes room for one more slot: the capacity doubles, but not past
    /// `usual_len` when below it (amortized O(1) either way).
    fn grow_if_full(&mut self) {
        let (len, capacity) = (self.ring.len(), self.ring.capacity());
        if len < capacity {
            return;
        }
        let doubled = capacity.max(4);
        let more = match capacity < self.usual_len {
            true => doubled.min(self.usual_len - len),
            false => doubled,
        };
        self.ring.reserve_exact(more.max(1));
    }

    /// Drops the index entry of position `pos` (found by position: no id read).
    fn unindex(&mut self, hash: u64, pos: u64) {
        if let Ok(found) = self.index.find_entry(hash, |&p| p == pos) {
            found.remove();
        }
    }

    fn offset(&self, pos: u64) -> usize {
        // Every indexed position is in the ring, at or after the front.
        (pos - self.front) as usize
    }
}
