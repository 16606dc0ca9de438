//! Logs without slowing requests: each event is formatted on the thread
//! that emits it and handed to one writer thread through a bounded queue,
//! so no request waits on stderr. Colours only when stderr is a terminal.
//! When the queue is full a line is dropped and counted, never blocked on.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use identity_shared::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread at most.
const QUEUE: usize = 16_384;

#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<Vec<u8>>,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    pending: AtomicUsize,
    dropped: AtomicU64,
}

impl LogSink {
    /// A sink writing to `out` from a thread of its own.
    pub fn spawn(out: impl Write + Send + 'static) -> LogSink {
        let (tx, rx) = sync_channel(QUEUE);
        let state = Arc::new(State::default());
        let thread_state = state.clone();
        let _ = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(rx, out, &thread_state));
        LogSink { tx, state }
    }

    /// Waits (at most `limit`) until every queued line is written.
    pub fn flush(&self, limit: Duration) {
        let started = Instant::now();
        while self.state.pending.load(Ordering::Acquire) > 0 && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

fn write_lines(rx: Receiver<Vec<u8>>, out: impl Write, state: &State) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(&line);
        state.pending.fetch_sub(1, Ordering::AcqRel);
        // Write in batches, but never leave a line unflushed while idle.
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(&line);
            state.pending.fetch_sub(1, Ordering::AcqRel);
        }
        let dropped = state.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "log: {dropped} lines dropped (the log writer fell behind)"
            );
        }
        let _ = out.flush();
    }
}

/// One event's line, sent when the formatter is done with it.
pub struct Line<'a> {
    buf: Vec<u8>,
    sink: &'a LogSink,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        self.sink.state.pending.fetch_add(1, Ordering::AcqRel);
        match self.sink.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.sink.state.pending.fetch_sub(1, Ordering::AcqRel);
                self.sink.state.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            buf: Vec::with_capacity(256),
            sink: self,
        }
    }
}

/// Installs the global subscriber (`RUST_LOG` filters) writing to stderr
/// through a [`LogSink`]; returns the sink so the caller can flush it.
pub fn init(format: LogFormat) -> LogSink {
    let sink = LogSink::spawn(std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hickory=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(sink.clone());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    sink
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let out = Shared::default();
        let sink = LogSink::spawn(out.clone());
        for i in 0..1000 {
            let mut line = sink.make_writer();
            writeln!(line, "line {i}").unwrap();
        }
        sink.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, l)| *l == format!("line {i}"))
        );
        assert_eq!(sink.dropped(), 0);
    }
}
