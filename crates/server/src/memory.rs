//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps what a large answer freed in its arenas (one per thread that
//! allocated), so without help a server that once built a large answer keeps its resident size
//! long after. [`trim_every`] asks glibc to return free pages (`malloc_trim(0)`) at a fixed
//! interval; it costs a walk of the arenas (well under a millisecond when there is nothing to
//! return) and changes nothing on other C libraries, where it does nothing.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Hand back the free pages of every arena, now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own arenas under their locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Call [`trim`] every `interval`, forever (the task is aborted at shutdown).
pub async fn trim_every(interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        trim();
    }
}
