//! The login yardstick: Argon2id hashes per second on every core, with the
//! parameters identity uses (m=19456 KiB, t=2, p=1 unless given), by the
//! fastest implementation available here — `argon2-rust` (runtime SIMD
//! dispatch, AVX-512 where the CPU has it), each thread reusing its arena.
//! One hash by RustCrypto's `argon2` is timed too, for reference.
//! Prints `single_ms=... rustcrypto_single_ms=... rate=... backend=...`.
//! `bare-argon2 [SECONDS] [THREADS] [M_KIB] [T] [P]`.
//!
//! `bare-argon2 --phc PASSWORD` prints an Argon2id PHC string of PASSWORD
//! at identity's parameters instead (the many-projects run imports users
//! with it, so setting them up costs no hashing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2_rust::params::Memory;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--phc") {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let password = args.get(1).expect("bare-argon2 --phc PASSWORD");
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("hash");
        println!("{phc}");
        return;
    }
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let secs = arg(0, 10);
    let threads = arg(
        1,
        std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
    ) as usize;
    let (m, t, p) = (arg(2, 19_456) as u32, arg(3, 2) as u32, arg(4, 1) as u32);
    let params = argon2_rust::Params::builder()
        .memory(Memory::kib(u64::from(m)))
        .passes(t)
        .lanes(p)
        .build()
        .expect("parameters");
    let argon = argon2_rust::Argon2::new(
        argon2_rust::Algorithm::Argon2id,
        argon2_rust::Version::V0x13,
        params,
    );
    let single = time_one(|salt, out| {
        let mut hasher = argon.hasher();
        move || hasher.hash_into(b"correct horse", salt, out).expect("hash")
    });
    let rustcrypto_single = {
        use argon2::{Algorithm, Argon2, Block, Params, Version};
        let params = Params::new(m, t, p, None).expect("parameters");
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut memory = vec![Block::default(); params.block_count()];
        time_one(|salt, out| {
            move || {
                reference
                    .hash_password_into_with_memory(b"correct horse", salt, out, &mut memory)
                    .expect("hash")
            }
        })
    };
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (done, stop) = (done.clone(), stop.clone());
            let mut hasher = argon.hasher();
            std::thread::spawn(move || {
                let mut out = [0u8; 32];
                let salt = [i as u8; 16];
                while !stop.load(Ordering::Relaxed) {
                    hasher
                        .hash_into(b"correct horse", &salt, &mut out)
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
        "single_ms={:.2} rustcrypto_single_ms={:.2} rate={rate:.1} threads={threads} backend={:?}",
        single.as_secs_f64() * 1000.0,
        rustcrypto_single.as_secs_f64() * 1000.0,
        argon2_rust::detected_backend(),
    );
}

/// The mean time of one hash on one thread, after a warm-up: `make` builds
/// the hashing closure from a salt and an output buffer.
fn time_one<F: FnMut()>(make: impl FnOnce(&'static [u8], &'static mut [u8; 32]) -> F) -> Duration {
    let out: &'static mut [u8; 32] = Box::leak(Box::new([0u8; 32]));
    let mut hash = make(b"saltsaltsaltsalt", out);
    hash();
    let n = 5;
    let started = Instant::now();
    for _ in 0..n {
        hash();
    }
    started.elapsed() / n
}
