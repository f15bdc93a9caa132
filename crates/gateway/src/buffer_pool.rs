//! Spare transfer buffers, per worker thread: the splice's copy buffers and the upstream
//! read-ahead take one while bytes flow and give it back when the stream goes quiet.
//!
//! Given-back buffers wait in a small per-thread pool instead of going to the allocator: a bulk
//! transfer outruns its sender and blocks every few records, and allocating and zeroing 16 KiB
//! each time cost about 10% more gateway CPU per byte in the benchmark. The pool is bounded, so
//! it is a fixed cost, not a per-session one.

use std::cell::RefCell;

/// Spare buffers kept per worker thread and buffer size: enough for the streams that are busy
/// at once on one thread. Counted per size, so bulk reads cannot crowd out the splice's
/// buffers (at most 8 × 16 KiB + 8 × 64 KiB).
const SPARE_PER_SIZE: usize = 8;

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

/// Keeps `buf` for the next stream that wakes on this thread, or frees it if the pool holds
/// enough of its size (or the thread is ending).
pub(crate) fn give_back(buf: Box<[u8]>) {
    let _ = SPARE.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.iter().filter(|b| b.len() == buf.len()).count() < SPARE_PER_SIZE {
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

        // Each size has its own bound: a full pool of one size still takes the other.
        for _ in 0..SPARE_PER_SIZE + 3 {
            give_back(vec![0u8; SIZE * 4].into_boxed_slice());
        }
        for _ in 0..SPARE_PER_SIZE + 3 {
            give_back(vec![0u8; SIZE].into_boxed_slice());
        }
        assert_eq!(SPARE.with(|pool| pool.borrow().len()), 2 * SPARE_PER_SIZE);
        drop(again);
    }
}
