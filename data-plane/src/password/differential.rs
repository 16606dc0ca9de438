//! Differential tests: our Argon2id PHC strings against RustCrypto's own
//! hasher and verifier, over random passwords and parameter sets.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::password::hashing::{HashParams, Hasher, Verified};

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
