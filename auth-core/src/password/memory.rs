//! Reused argon2 working memory.
//!
//! Each hashing worker borrows a block buffer sized for the current parameters and
//! gives it back afterwards, so a hash costs no allocation and no page faults once
//! the pool is warm. Only permit holders borrow, so the pool never holds more than
//! `permits` buffers: the hashing memory bound is `permits x m` KiB.

use std::sync::{Mutex, PoisonError};

use argon2::Block;

#[derive(Debug)]
pub(crate) struct MemoryPool {
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl MemoryPool {
    pub(crate) fn new(blocks: usize) -> Self {
        Self {
            blocks,
            free: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` over at least `needed` blocks. A request larger than the pooled size
    /// (a stored hash made with more memory than the current parameters) gets a
    /// one-off buffer that is freed afterwards.
    pub(crate) fn with_memory<T>(&self, needed: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if needed > self.blocks {
            return f(&mut vec![Block::new(); needed]);
        }
        let pooled = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut memory = pooled.unwrap_or_else(|| vec![Block::new(); self.blocks]);
        let result = f(&mut memory);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
        result
    }

    /// Buffers allocated and idle right now.
    pub(crate) fn idle(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
