//! Password hashing: Argon2id for every new hash, bcrypt accepted for
//! imports and replaced at the next successful login, on fixed hashing
//! threads (each reusing its Argon2 memory) behind the bounded,
//! per-project-fair queue, so hashing never stalls the async runtime.

use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use argon2::{Params, Version};
use identity_shared::error::ApiError;

use crate::password::argon::{HashParams, Worker, new_phc, verify_phc};
use crate::password::policy::is_bcrypt;
use crate::password::queue::Queue;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash should be replaced by this one (bcrypt,
    /// or Argon2 with other parameters).
    YesRehashed(String),
}

/// Fixed hashing workers behind a bounded queue that shares them fairly
/// between projects. Each worker owns one Argon2 arena and reuses it, so
/// memory is bounded by the worker count and no hash page-faults a fresh
/// 19 MiB allocation. The compute is `argon2-rust` (SIMD, chosen at run
/// time); PHC strings are parsed and written with RustCrypto's types, so
/// their form is unchanged (ADR 0008).
pub struct Hasher {
    core: Arc<Core>,
    queue: Arc<Queue<Job>>,
}

/// What every job needs: the parameters of new hashes and the dummy hash.
struct Core {
    params: HashParams,
    /// A real hash of a random password: unknown accounts are checked
    /// against it so they cost the same time as known ones.
    dummy: String,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

impl Drop for Hasher {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Hasher {
    /// `workers` hashes run at once (the cores); at most `queue_capacity`
    /// wait, and one project at most three quarters of them.
    pub fn new(
        params: HashParams,
        workers: usize,
        queue_capacity: usize,
    ) -> Result<Arc<Self>, String> {
        let mut scratch = Worker::new(&params)?;
        let dummy = new_phc(
            &params,
            &mut scratch,
            &identity_shared::crypto::random_token(),
        )?;
        drop(scratch);
        let core = Arc::new(Core { params, dummy });
        let capacity = queue_capacity.max(1);
        // Room for other projects is always left: one project's flood
        // cannot fill the queue.
        let queue = Arc::new(Queue::<Job>::new(capacity, capacity * 3 / 4));
        for i in 0..workers.max(1) {
            let queue = queue.clone();
            let mut worker = Worker::new(&params)?;
            std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    while let Some(job) = queue.pop() {
                        // A job that panics must not take the worker with it.
                        let run = std::panic::AssertUnwindSafe(|| job(&mut worker));
                        if std::panic::catch_unwind(run).is_err() {
                            tracing::error!("a password hash panicked");
                            if let Ok(fresh) = Worker::new(&params) {
                                worker = fresh;
                            }
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(Arc::new(Self { core, queue }))
    }

    /// Whether a job of `project` would find room in the queue now (checked
    /// before reserving a lockout attempt, so a flood refused with 503 does
    /// not cost two database writes per request).
    pub fn has_room(&self, project: &str) -> bool {
        self.queue.has_room(project)
    }

    pub fn params(&self) -> HashParams {
        self.core.params
    }

    /// Runs `f` on a hashing worker, queued under `project`; `503
    /// server_busy` at once when the queue (or the project's share) is full.
    async fn run<T: Send + 'static>(
        &self,
        project: &str,
        f: impl FnOnce(&Core, &mut Worker) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let core = self.core.clone();
        self.queue.push(
            project,
            Box::new(move |worker| {
                // The request went away while waiting: spend nothing on it.
                if tx.is_closed() {
                    return;
                }
                let _ = tx.send(f(&core, worker));
            }),
        )?;
        rx.await
            .map_err(|_| ApiError::internal("a hashing worker stopped"))
    }

    pub async fn hash(&self, project: &str, password: String) -> Result<String, ApiError> {
        self.run(project, move |core, worker| {
            new_phc(&core.params, worker, &password)
        })
        .await?
        .map_err(ApiError::internal)
    }

    /// Checks `password` against `stored` (or against the dummy hash when
    /// there is no account, with the same cost). Never errors on a damaged
    /// hash: that is a "no".
    pub async fn verify(
        &self,
        project: &str,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        self.run(project, move |core, worker| {
            let Some(stored) = stored else {
                let _ = verify_phc(worker, &password, &core.dummy);
                return Verified::No;
            };
            if !verify_phc(worker, &password, &stored) {
                return Verified::No;
            }
            if needs_rehash(&core.params, &stored) {
                match new_phc(&core.params, worker, &password) {
                    Ok(new) => Verified::YesRehashed(new),
                    Err(_) => Verified::Yes,
                }
            } else {
                Verified::Yes
            }
        })
        .await
    }
}

/// Hashing threads run at the lowest CPU priority: logins use every idle
/// cycle, but a session check never waits behind a hash for a core.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "could not lower the hashing thread's priority");
    }
}

fn needs_rehash(params: &HashParams, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() != params.memory_kib
                || p.t_cost() != params.iterations
                || p.p_cost() != params.parallelism
                || parsed.version != Some(Version::V0x13 as u32)
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> HashParams {
        HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn argon2id_round_trip_and_rehash_on_new_params() {
        let h = Hasher::new(fast(), 2, 64).unwrap();
        let hash = h.hash("p", "correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            h.verify("p", "correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify("p", "wrong".into(), Some(hash.clone()))
                .await
                .unwrap(),
            Verified::No
        );
        assert_eq!(h.verify("p", "x".into(), None).await.unwrap(), Verified::No);
        assert_eq!(
            h.verify("p", "x".into(), Some("garbage".into()))
                .await
                .unwrap(),
            Verified::No
        );
        let stronger = Hasher::new(
            HashParams {
                memory_kib: 2048,
                ..fast()
            },
            1,
            64,
        )
        .unwrap();
        match stronger
            .verify("p", "correct horse battery".into(), Some(hash))
            .await
            .unwrap()
        {
            Verified::YesRehashed(new) => assert!(new.contains("m=2048")),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bcrypt_verifies_and_is_rehashed() {
        let h = Hasher::new(fast(), 1, 64).unwrap();
        let b = bcrypt::hash("hunter2hunter2", 4).unwrap();
        for variant in [
            b.clone(),
            b.replacen("$2b$", "$2a$", 1),
            b.replacen("$2b$", "$2y$", 1),
        ] {
            crate::password::policy::validate_import(&variant).unwrap();
            match h
                .verify("p", "hunter2hunter2".into(), Some(variant))
                .await
                .unwrap()
            {
                Verified::YesRehashed(new) => assert!(new.starts_with("$argon2id$")),
                other => panic!("expected a rehash, got {other:?}"),
            }
        }
        assert_eq!(
            h.verify("p", "nope".into(), Some(b)).await.unwrap(),
            Verified::No
        );
    }
}
