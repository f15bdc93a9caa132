//! Spare splice buffers, per worker thread.
//!
//! Given-back buffers wait in a small per-thread pool instead of going to the allocator: a bulk
//! transfer outruns its sender and blocks every few records, and allocating and zeroing 16 KiB
//! each time cost about 10% more gateway CPU per byte in the benchmark. The pool is bounded, so
//! it is a fixed cost, not a per-session one.

use std::cell::RefCell;

/// Spare buffers kept per worker thread: enough for the directions that are busy at once on
/// one thread, 128 KiB at most.
const SPARE_PER_THREAD: usize = 8;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `size` bytes from this thread's pool, or a new one. It may hold another
/// session's old bytes; they never leave: only bytes a read has just filled are written on.
pub(super) fn take_buffer(size: usize) -> Box<[u8]> {
    let spare = SPARE
        .try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten();
    match spare {
        Some(buf) if buf.len() == size => buf,
        _ => vec![0u8; size].into_boxed_slice(),
    }
}

/// Keeps `buf` for the next direction that wakes on this thread, or frees it if the pool is
/// full (or the thread is ending).
pub(super) fn give_back(buf: Box<[u8]>) {
    let _ = SPARE.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < SPARE_PER_THREAD {
            pool.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::splice::SPLICE_BUFFER;

    #[test]
    fn given_back_buffers_are_reused_up_to_the_pool_size() {
        let first = take_buffer(SPLICE_BUFFER);
        let address = first.as_ptr();
        give_back(first);
        let again = take_buffer(SPLICE_BUFFER);
        assert_eq!(again.as_ptr(), address, "the spare buffer is taken again");

        // A buffer of another size is never handed out for this one.
        give_back(vec![0u8; 100].into_boxed_slice());
        assert_eq!(take_buffer(SPLICE_BUFFER).len(), SPLICE_BUFFER);

        for _ in 0..SPARE_PER_THREAD + 3 {
            give_back(vec![0u8; SPLICE_BUFFER].into_boxed_slice());
        }
        assert_eq!(SPARE.with(|pool| pool.borrow().len()), SPARE_PER_THREAD);
        drop(again);
    }
}
