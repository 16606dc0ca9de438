//! Differential tests: our Argon2id PHC strings against RustCrypto's own
//! hasher and verifier, over random passwords and parameter sets; the raw
//! tags of the `argon2-rust` compute against RustCrypto's; RFC 9106's test
//! vectors and the reference implementation's own PHC string.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::password::argon::{HashParams, Spec, Worker, argon2_tag};
use crate::password::hashing::{Hasher, Verified};

#[tokio::test]
async fn phc_strings_agree_with_rustcrypto_both_ways() {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for (m, t, p) in [(1024, 1, 1), (2048, 2, 1), (4096, 1, 2), (1536, 3, 4)] {
        let params = HashParams {
            memory_kib: m,
            iterations: t,
            parallelism: p,
        };
        let h = Hasher::new(params, 2, 64).unwrap();
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(m, t, p, None).unwrap(),
        );
        for _ in 0..6 {
            let len = rng.gen_range(1..80);
            let password: String = (0..len).map(|_| rng.gen_range(' '..='\u{2FF}')).collect();
            // Ours, checked by RustCrypto's own verifier.
            let ours = h.hash("p", password.clone()).await.unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .unwrap();
            // RustCrypto's, checked by ours (and the PHC string is the same shape).
            let salt = SaltString::generate(&mut OsRng);
            let theirs = reference
                .hash_password(password.as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                theirs.rsplitn(3, '$').nth(2),
                ours.rsplitn(3, '$').nth(2),
                "same algorithm, version and parameters"
            );
            assert_eq!(
                h.verify("p", password.clone(), Some(theirs.clone()))
                    .await
                    .unwrap(),
                Verified::Yes
            );
            let mut wrong = password.clone();
            wrong.push('x');
            assert_eq!(
                h.verify("p", wrong, Some(theirs)).await.unwrap(),
                Verified::No
            );
        }
    }
}

/// RustCrypto's raw tag for `spec`.
fn rustcrypto_tag(spec: &Spec, password: &[u8], salt: &[u8]) -> Vec<u8> {
    let version = match spec.version {
        argon2_rust::Version::V0x10 => Version::V0x10,
        argon2_rust::Version::V0x13 => Version::V0x13,
    };
    let params = Params::new(
        spec.memory_kib,
        spec.iterations,
        spec.parallelism,
        Some(spec.tag_len),
    )
    .unwrap();
    let mut out = vec![0u8; spec.tag_len];
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into(password, salt, &mut out)
        .unwrap();
    out
}

/// The compute identity runs (`argon2-rust`, through a worker's reused
/// arena and through the one-shot path for larger memory) gives the same
/// tags as RustCrypto over random inputs and parameter sets.
#[test]
fn raw_tags_agree_with_rustcrypto_over_random_parameters() {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // The arena is kept up to 1 MiB: bigger specs take the one-shot path.
    let mut worker = Worker::new(&HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let mut one_shot = 0;
    for round in 0..300 {
        let parallelism = rng.gen_range(1..=4u32);
        let spec = Spec {
            algorithm: argon2_rust::Algorithm::Argon2id,
            version: if round % 10 == 0 {
                argon2_rust::Version::V0x10
            } else {
                argon2_rust::Version::V0x13
            },
            memory_kib: rng.gen_range(8 * parallelism..=1400),
            iterations: rng.gen_range(1..=4),
            parallelism,
            tag_len: rng.gen_range(4..=64),
        };
        if spec.memory_kib > 1024 {
            one_shot += 1;
        }
        let password: Vec<u8> = (0..rng.gen_range(0..128)).map(|_| rng.r#gen()).collect();
        let salt: Vec<u8> = (0..rng.gen_range(8..48)).map(|_| rng.r#gen()).collect();
        let mut ours = vec![0u8; spec.tag_len];
        argon2_tag(&mut worker, &spec, &password, &salt, &mut ours).unwrap();
        assert_eq!(
            ours,
            rustcrypto_tag(&spec, &password, &salt),
            "round {round}: {spec:?}"
        );
    }
    assert!(one_shot > 10, "both paths were exercised");
}

/// RFC 9106 §5.1–5.3 test vectors (password 32 × 0x01, salt 16 × 0x02,
/// secret 8 × 0x03, associated data 12 × 0x04, m=32, t=3, p=4) for the
/// implementation identity hashes with.
#[test]
fn rfc_9106_test_vectors() {
    use argon2_rust::params::{Memory, TagLen};
    let params = argon2_rust::Params::builder()
        .memory(Memory::kib(32))
        .passes(3)
        .lanes(4)
        .threads(1)
        .tag_len(TagLen::bytes(32))
        .build()
        .unwrap();
    for (algorithm, expected) in [
        (
            argon2_rust::Algorithm::Argon2d,
            "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
        ),
        (
            argon2_rust::Algorithm::Argon2i,
            "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
        ),
        (
            argon2_rust::Algorithm::Argon2id,
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
        ),
    ] {
        let argon = argon2_rust::Argon2::new(algorithm, argon2_rust::Version::V0x13, params);
        let mut tag = [0u8; 32];
        argon
            .hash_into_with_ad(&[1; 32], &[2; 16], &[3; 8], &[4; 12], &mut tag)
            .unwrap();
        assert_eq!(hex(&tag), expected, "{algorithm:?}");
    }
}

/// The reference implementation's own test (`test.c`): "password" with
/// "somesalt" at m=64 MiB, t=2, p=1 — a PHC string any Argon2 library
/// writes, verified through the whole hashing path (one-shot arena, as 64
/// MiB is above what workers keep here).
#[tokio::test]
async fn reference_phc_string_verifies() {
    let stored =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let h = Hasher::new(
        HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        1,
        8,
    )
    .unwrap();
    assert!(matches!(
        h.verify("p", "password".into(), Some(stored.into()))
            .await
            .unwrap(),
        Verified::YesRehashed(_)
    ));
    assert_eq!(
        h.verify("p", "Password".into(), Some(stored.into()))
            .await
            .unwrap(),
        Verified::No
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
