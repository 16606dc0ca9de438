//! The Argon2 computation and the PHC strings around it. The compute is
//! `argon2-rust` (a port of the reference implementation that picks
//! AVX-512, AVX2, SSE2 or NEON at run time), each hashing worker reusing
//! one arena; PHC strings are parsed and written with RustCrypto's
//! `password-hash` types, so their form is what it always was (ADR 0008,
//! and the differential tests beside this file).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};

use crate::password::policy::is_bcrypt;

/// The Argon2id parameters of new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        // OWASP's Argon2id baseline.
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// One worker's reusable state: its Argon2 arena, kept up to the memory of
/// new hashes.
pub(crate) struct Worker {
    arena: argon2_rust::Hasher,
    keep_kib: u32,
}

impl Worker {
    pub(crate) fn new(params: &HashParams) -> Result<Self, String> {
        let argon = Spec::new_hashes(params)
            .argon2()
            .map_err(|e| format!("Argon2 parameters: {e}"))?;
        Ok(Self {
            arena: argon.hasher(),
            keep_kib: params.memory_kib,
        })
    }
}

/// The Argon2 computation for one parameter set: algorithm, version, memory
/// (KiB), passes, lanes and tag length, as a PHC string states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub algorithm: argon2_rust::Algorithm,
    pub version: argon2_rust::Version,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub tag_len: usize,
}

impl Spec {
    /// The Argon2id v19 spec of new hashes.
    fn new_hashes(params: &HashParams) -> Self {
        Self {
            algorithm: argon2_rust::Algorithm::Argon2id,
            version: argon2_rust::Version::V0x13,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            tag_len: TAG_LEN,
        }
    }

    fn argon2(&self) -> Result<argon2_rust::Argon2, argon2_rust::Error> {
        use argon2_rust::params::{Memory, TagLen};
        let params = argon2_rust::Params::builder()
            .memory(Memory::kib(u64::from(self.memory_kib)))
            .passes(self.iterations)
            .lanes(self.parallelism)
            // Lanes are computed one after another on the worker's thread:
            // the hashing workers stay the only threads that hash.
            .threads(1)
            .tag_len(TagLen::bytes(self.tag_len as u64))
            .build()?;
        Ok(argon2_rust::Argon2::new(
            self.algorithm,
            self.version,
            params,
        ))
    }
}

/// Tag length of new hashes (RustCrypto's and the reference's default).
const TAG_LEN: usize = 32;

/// Computes the Argon2 tag of `password` and `salt` under `spec` into `out`
/// (whose length is the spec's tag length). The worker's arena serves every
/// spec up to the memory of new hashes; a larger (imported) one gets an
/// arena of its own that is wiped and freed afterwards, so the kept arena
/// never grows past what new hashes need.
pub(crate) fn argon2_tag(
    worker: &mut Worker,
    spec: &Spec,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2_rust::Error> {
    let argon = spec.argon2()?;
    if spec.memory_kib > worker.keep_kib {
        return argon.hash_into(password, salt, out);
    }
    worker.arena.set_argon2(argon);
    worker.arena.hash_into(password, salt, out)
}

/// A new Argon2id PHC string for `password`, in the exact form RustCrypto's
/// `argon2` writes (`$argon2id$v=19$m=..,t=..,p=..$salt$tag`).
pub(crate) fn new_phc(
    params: &HashParams,
    worker: &mut Worker,
    password: &str,
) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let spec = Spec::new_hashes(params);
    let mut out = [0u8; TAG_LEN];
    argon2_tag(worker, &spec, password.as_bytes(), salt_raw, &mut out)
        .map_err(|e| e.to_string())?;
    let mut params = ParamsString::new();
    for (name, value) in [
        ("m", spec.memory_kib),
        ("t", spec.iterations),
        ("p", spec.parallelism),
    ] {
        params.add_decimal(name, value).map_err(|e| e.to_string())?;
    }
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(0x13),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// The spec a stored Argon2id PHC string was made with, its salt and tag.
fn parse_stored(parsed: &PasswordHash<'_>) -> Option<(Spec, Vec<u8>)> {
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return None;
    }
    let salt = parsed.salt?;
    let expected = parsed.hash?;
    let params = argon2::Params::try_from(parsed).ok()?;
    let version = argon2_rust::Version::from_u32(parsed.version.unwrap_or(0x13))?;
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).ok()?.to_vec();
    let spec = Spec {
        algorithm: argon2_rust::Algorithm::Argon2id,
        version,
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
        tag_len: expected.len(),
    };
    Some((spec, salt_raw))
}

/// Whether `password` matches `stored` (Argon2id, or bcrypt from an import),
/// computed with the parameters stored in the hash itself. A damaged hash is
/// a "no".
pub(crate) fn verify_phc(worker: &mut Worker, password: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Some((spec, salt)) = parse_stored(&parsed) else {
        return false;
    };
    let Some(expected) = parsed.hash else {
        return false;
    };
    let mut out = vec![0u8; spec.tag_len];
    if argon2_tag(worker, &spec, password.as_bytes(), &salt, &mut out).is_err() {
        return false;
    }
    identity_shared::crypto::ct_eq(&out, expected.as_bytes())
}
