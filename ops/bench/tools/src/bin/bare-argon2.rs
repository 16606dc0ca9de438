//! The login yardstick: Argon2id hashes per second on every core, with the
//! parameters identity uses (m=19456 KiB, t=2, p=1 unless given), each
//! thread reusing its memory (the fastest way to run the RustCrypto
//! implementation identity uses). Prints `single_ms=... rate=...`.
//! `bare-argon2 [SECONDS] [THREADS] [M_KIB] [T] [P]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let secs = arg(0, 10);
    let threads = arg(
        1,
        std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
    ) as usize;
    let (m, t, p) = (arg(2, 19_456) as u32, arg(3, 2) as u32, arg(4, 1) as u32);
    let params = Params::new(m, t, p, None).expect("parameters");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut memory = vec![Block::default(); params.block_count()];
    let mut out = [0u8; 32];
    // One hash alone, after a warm-up.
    argon
        .hash_password_into_with_memory(b"warm up", b"saltsaltsaltsalt", &mut out, &mut memory)
        .expect("hash");
    let started = Instant::now();
    let n = 5;
    for _ in 0..n {
        argon
            .hash_password_into_with_memory(
                b"correct horse",
                b"saltsaltsaltsalt",
                &mut out,
                &mut memory,
            )
            .expect("hash");
    }
    let single = started.elapsed() / n;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (done, stop, argon) = (done.clone(), stop.clone(), argon.clone());
            let mut memory = vec![Block::default(); params.block_count()];
            std::thread::spawn(move || {
                let mut out = [0u8; 32];
                let salt = [i as u8; 16];
                while !stop.load(Ordering::Relaxed) {
                    argon
                        .hash_password_into_with_memory(
                            b"correct horse",
                            &salt,
                            &mut out,
                            &mut memory,
                        )
                        .expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for w in workers {
        let _ = w.join();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    println!(
        "single_ms={:.2} rate={rate:.1} threads={threads}",
        single.as_secs_f64() * 1000.0
    );
}
