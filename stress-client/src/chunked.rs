//! A vector that grows by adding chunks and never moves what it holds:
//! each worker's op records ([`crate::recorder::Recorder`]).
//!
//! Why: a `Vec` of records that doubles copies everything into fresh pages
//! at each doubling, and the allocator hands the old pages back to the
//! kernel, to be faulted in again by the next growth. In a stream run at
//! zero delay that growth was 4–14 % of the load thread's CPU (perf, bench
//! P5). Here chunks double from [`FIRST_CHUNK`] up to [`MAX_CHUNK`]
//! elements, then stay that size: nothing is copied, and a worker that
//! records a few ops holds a small chunk.

use std::ops::{Index, IndexMut};

/// Elements of the first chunk.
pub const FIRST_CHUNK: usize = 64;
/// Elements of the largest chunk (each later one has this many).
pub const MAX_CHUNK: usize = 16 * 1024;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    /// The index of each chunk's first element.
    starts: Vec<usize>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            starts: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        let full = self.chunks.last().is_none_or(|c| c.len() == c.capacity());
        if full {
            let size = self
                .chunks
                .last()
                .map_or(FIRST_CHUNK, |c| (c.capacity() * 2).min(MAX_CHUNK));
            self.chunks.push(Vec::with_capacity(size));
            self.starts.push(self.len);
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(value);
            self.len += 1;
        }
    }

    /// The chunk holding element `index` and its place there.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        // Most lookups are of a recent element: the last chunk's.
        let chunk = match self.starts.last() {
            Some(&start) if index >= start => self.starts.len() - 1,
            _ => self.starts.partition_point(|&s| s <= index) - 1,
        };
        Some((chunk, index - self.starts[chunk]))
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        let (chunk, at) = self.locate(index)?;
        self.chunks[chunk].get(at)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (chunk, at) = self.locate(index)?;
        self.chunks[chunk].get_mut(at)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Moves every element, in order, to the end of `out`; leaves this empty.
    pub fn move_into(&mut self, out: &mut Vec<T>) {
        out.reserve(self.len);
        for chunk in self.chunks.drain(..) {
            out.extend(chunk);
        }
        self.starts.clear();
        self.len = 0;
    }
}

impl<T> From<Vec<T>> for Chunked<T> {
    fn from(values: Vec<T>) -> Self {
        let mut c = Chunked::default();
        values.into_iter().for_each(|v| c.push(v));
        c
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index).expect("index within the chunked vector")
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.get_mut(index).expect("index within the chunked vector")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_index_their_order_and_their_address() {
        let n = FIRST_CHUNK * 2 + MAX_CHUNK * 3 + 17;
        let mut c = Chunked::default();
        c.push(0usize);
        let first: *const usize = &c[0];
        for i in 1..n {
            c.push(i);
        }
        assert_eq!(c.len(), n);
        assert!(std::ptr::eq(first, &c[0]), "a push never moves an element");
        for i in [
            0,
            1,
            FIRST_CHUNK - 1,
            FIRST_CHUNK,
            3 * FIRST_CHUNK,
            MAX_CHUNK,
            n - MAX_CHUNK,
            n - 1,
        ] {
            assert_eq!(c.get(i), Some(&i), "index {i}");
        }
        assert_eq!(c.get(n), None);
        assert!(c.iter().copied().eq(0..n));
        *c.get_mut(5).unwrap() = 500;
        c[6] = 600;
        let mut out = vec![usize::MAX];
        c.move_into(&mut out);
        assert_eq!(out.len(), n + 1);
        assert_eq!((out[6], out[7], out[n]), (500, 600, n - 1));
        assert!(c.is_empty() && c.get(0).is_none());
        let sizes: Vec<usize> = Chunked::from((0..n).collect::<Vec<_>>())
            .chunks
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes[..3], [FIRST_CHUNK, FIRST_CHUNK * 2, FIRST_CHUNK * 4]);
        assert!(sizes.iter().all(|&s| s <= MAX_CHUNK));
    }
}
