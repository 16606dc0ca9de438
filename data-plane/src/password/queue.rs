//! The hashing queue: per-project FIFO queues served round-robin, bounded
//! in total and per project; full answers `503 server_busy` at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use identity_shared::error::ApiError;

/// Per-project FIFO queues served round-robin: a project flooding logins
/// waits behind its own requests, not in front of other projects'.
pub struct Queue<J> {
    state: Mutex<QueueState<J>>,
    ready: Condvar,
    capacity: usize,
    per_project: usize,
}

struct QueueState<J> {
    jobs: HashMap<String, VecDeque<J>>,
    /// Projects with waiting jobs, in the order they are next served.
    ring: VecDeque<String>,
    total: usize,
    closed: bool,
}

/// The queue is full: answered `503 server_busy` with `Retry-After`.
pub fn busy() -> ApiError {
    ApiError::unavailable_retry(
        "server_busy",
        "too many password checks are waiting; retry shortly",
        1,
    )
}

impl<J> Queue<J> {
    /// At most `capacity` jobs wait, at most `per_project` of one project.
    pub fn new(capacity: usize, per_project: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
                jobs: HashMap::new(),
                ring: VecDeque::new(),
                total: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            per_project: per_project.max(1),
        }
    }

    pub fn has_room(&self, project: &str) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !st.closed
            && st.total < self.capacity
            && st.jobs.get(project).map_or(0, VecDeque::len) < self.per_project
    }

    pub fn push(&self, project: &str, job: J) -> Result<(), ApiError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed || st.total >= self.capacity {
            return Err(busy());
        }
        let waiting = st.jobs.get(project).map_or(0, VecDeque::len);
        if waiting >= self.per_project {
            return Err(busy());
        }
        if waiting == 0 {
            st.ring.push_back(project.to_string());
        }
        st.jobs
            .entry(project.to_string())
            .or_default()
            .push_back(job);
        st.total += 1;
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, round-robin over projects; `None` once closed.
    pub fn pop(&self) -> Option<J> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.closed {
                return None;
            }
            if let Some(project) = st.ring.pop_front() {
                let (job, more) = match st.jobs.get_mut(&project) {
                    Some(q) => (q.pop_front(), !q.is_empty()),
                    None => (None, false),
                };
                if more {
                    st.ring.push_back(project);
                } else {
                    st.jobs.remove(&project);
                }
                if let Some(job) = job {
                    st.total -= 1;
                    return Some(job);
                }
                continue;
            }
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    type Job = Box<dyn FnOnce(&mut ()) + Send>;

    #[test]
    fn queue_is_bounded_and_round_robin_between_projects() {
        let q: Queue<Job> = Queue::new(5, 2);
        let order = Arc::new(Mutex::new(Vec::new()));
        let job = |label: &'static str| -> Job {
            let order = order.clone();
            Box::new(move |_| order.lock().unwrap().push(label))
        };
        q.push("a", job("a1")).unwrap();
        q.push("a", job("a2")).unwrap();
        // A project's share is full; other projects still get in.
        assert_eq!(q.push("a", job("a3")).unwrap_err().code(), "server_busy");
        q.push("b", job("b1")).unwrap();
        q.push("c", job("c1")).unwrap();
        q.push("b", job("b2")).unwrap();
        // The whole queue is full.
        assert_eq!(q.push("d", job("d1")).unwrap_err().code(), "server_busy");
        let mut worker = ();
        for _ in 0..5 {
            q.pop().unwrap()(&mut worker);
        }
        assert_eq!(*order.lock().unwrap(), ["a1", "b1", "c1", "a2", "b2"]);
        q.close();
        assert!(q.pop().is_none());
    }
}
