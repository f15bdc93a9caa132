//! Spare transfer buffers, per worker thread: the splice's copy buffers and the upstream
//! read-ahead take one while bytes flow and give it back when the stream goes quiet.
//!
//! Given-back buffers wait in a small per-thread pool instead of going to the allocator: a bulk
//! transfer outruns its sender and blocks every few records, and allocating and zeroing 16 KiB
//! each time cost about 10% more gateway CPU per byte in the benchmark. The pool is bounded, so
//! it is a fixed cost, not a per-session one.

use std::cell::RefCell;

/// Spare buffers kept per worker thread, of any size: enough for the streams that are busy at
/// once on one thread (at most 8 × 64 KiB).
const SPARE_PER_THREAD: usize = 8;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `size` bytes from this thread's pool, or a new one. It may hold another
/// session's old bytes; they never leave: only bytes a read has just filled are written on.
pub(crate) fn take_buffer(size: usize) -> Box<[u8]> {
    let spare = SPARE
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let found = pool.iter().rposition(|buf| buf.len() == size)?;
            Some(pool.swap_remove(found))
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| vec![0u8; size].into_boxed_slice())
}

/// Keeps `buf` for the next direction that wakes on this thread, or frees it if the pool is
/// full (or the thread is ending).
pub(crate) fn give_back(buf: Box<[u8]>) {
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

    const SIZE: usize = 16 * 1024;

    #[test]
    fn given_back_buffers_are_reused_up_to_the_pool_size() {
        let first = take_buffer(SIZE);
        let address = first.as_ptr();
        give_back(first);
        let again = take_buffer(SIZE);
        assert_eq!(again.as_ptr(), address, "the spare buffer is taken again");

        // A buffer of another size is never handed out for this one, and stays for its size.
        give_back(vec![0u8; 100].into_boxed_slice());
        assert_eq!(take_buffer(SIZE).len(), SIZE);
        assert_eq!(take_buffer(100).len(), 100);
        assert!(SPARE.with(|pool| pool.borrow().is_empty()));

        for _ in 0..SPARE_PER_THREAD + 3 {
            give_back(vec![0u8; SIZE].into_boxed_slice());
        }
        assert_eq!(SPARE.with(|pool| pool.borrow().len()), SPARE_PER_THREAD);
        drop(again);
    }
}
