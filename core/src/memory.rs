//! Keeps the allocator's resident memory close to what is in use. glibc's allocator gives each
//! thread that contends for it an arena of its own, up to eight per core, and memory freed in one
//! arena serves only that arena: a large, short-lived computation on one of tokio's blocking
//! threads (a store commit, an interval's reports) leaves its peak resident in that arena for
//! good. [`limit_arenas`] allows one arena per core; [`release`] hands free pages back after
//! such a computation. With another allocator both do nothing.

/// Allows one allocator arena per core (glibc's `M_ARENA_MAX`), unless `MALLOC_ARENA_MAX` is set
/// in the environment. Call it before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        // SAFETY: mallopt changes a tuning parameter of the allocator; called before threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
        }
    }
}

/// Returns the allocator's free memory to the operating system (glibc's `malloc_trim`).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
