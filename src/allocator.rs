//! glibc malloc settings for a long-running server on a small box.
//!
//! Two glibc defaults make RSS grow far past what the heap holds (measured by the steady-fleet
//! benchmark: 26 MB of live heap, 92 MB RSS):
//! - **The dynamic mmap threshold.** A password check (argon2id) allocates a ~19 MiB block.
//!   The first such block is mmapped, but freeing it raises the threshold to its size, so every
//!   later one is carved from an arena, and the trim threshold doubles with it: each arena that
//!   ever checked a password keeps ~19 MiB for good. A fixed threshold keeps large blocks in
//!   their own mappings, which go back to the system when freed.
//! - **One arena per thread, up to 8 × cores.** Blocking-pool threads each grow their own arena
//!   and keep its free space. Two arenas are enough for a 2-worker runtime; polls measured the
//!   same with them.
//!
//! musl's allocator already returns large blocks on free, so this is glibc only. A variable
//! the operator sets (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) wins over these defaults.

/// Applies the settings. Call first thing in `main`, before any thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Blocks from this size up get their own mapping.
        const MMAP_THRESHOLD: i32 = 256 * 1024;
        const ARENA_MAX: i32 = 2;
        // SAFETY: mallopt only changes malloc parameters; it is called before other threads
        // exist, so no allocation races with the change.
        unsafe {
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
            }
        }
    }
}
