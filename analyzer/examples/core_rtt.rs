//! Core-to-core round trip: two threads pinned to CPUs 0 and 1 hand a cache line back
//! and forth; prints the mean round trip in nanoseconds.
//!
//! `scripts/bench/analyzer.sh` prints it beside its figures: on the benchmark VM a
//! similar probe read ~90 ns and ~400 ns within the same minutes, and whatever makes it
//! dear makes dear everything the analyzer's two threads hand to each other, while two
//! independent processes do not notice.
//!
//! Usage: `core_rtt [ROUND_TRIPS]` (default 500 000).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it for a
    // CPU below CPU_SETSIZE; sched_setaffinity reads `size` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "pinning to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn main() {
    let trips: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 500_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: core_rtt [ROUND_TRIPS]");
            std::process::exit(2);
        }
    };
    if let Err(e) = pin(0) {
        eprintln!("core_rtt: {e}");
        std::process::exit(1);
    }
    // Even values: the main thread's turn; odd: the other's; STOP: the other failed.
    const STOP: u64 = u64::MAX;
    let turn = AtomicU64::new(0);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            if let Err(e) = pin(1) {
                eprintln!("core_rtt: {e}");
                turn.store(STOP, Ordering::Release);
                return;
            }
            for i in 0..trips {
                while turn.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                turn.store(2 * i + 2, Ordering::Release);
            }
        });
        let start = Instant::now();
        for i in 0..trips {
            if turn
                .compare_exchange(2 * i, 2 * i + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return None; // STOP
            }
            loop {
                match turn.load(Ordering::Acquire) {
                    v if v == 2 * i + 2 => break,
                    STOP => return None,
                    _ => std::hint::spin_loop(),
                }
            }
        }
        Some(start.elapsed())
    });
    match result {
        Some(elapsed) => println!("{:.1}", elapsed.as_nanos() as f64 / trips as f64),
        None => std::process::exit(1),
    }
}
