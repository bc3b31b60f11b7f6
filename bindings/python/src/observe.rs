//! Observability: the core's `log` records forwarded to Python's `logging` (logger
//! `tokencache`), and `stats()` converted to a dict.
//!
//! Forwarding never waits for the GIL in the thread that logs (which may hold a core
//! lock that a thread holding the GIL waits for): records go, without the GIL,
//! through a bounded channel to one emitter thread, which takes the GIL and calls
//! `logging.getLogger("tokencache").log(...)`. Warnings, errors and info are always
//! sent (they are rare); debug and trace only when the `tokencache` logger's
//! effective level, cached and refreshed by the emitter at most once a second, lets
//! them through. A full channel drops the record. The core never logs token values.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokencache::{CacheStats, CredentialType};

/// A record ready for Python: level, message, target, module path.
struct Msg {
    level: u8,
    text: String,
    target: String,
    module: Option<String>,
}

enum Job {
    Record(Msg),
    Refresh,
}

struct PyLogger {
    tx: SyncSender<Job>,
    /// The `tokencache` logger's effective level (Python's numbers), as last read.
    effective: AtomicU8,
    /// Seconds since the epoch of the last refresh request.
    refreshed: AtomicU64,
}

const fn py_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Log for PyLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let level = py_level(metadata.level());
        if level >= 20 || level >= self.effective.load(Ordering::Relaxed) {
            return true;
        }
        // Debug/trace while disabled: ask for a fresh level at most once a second.
        let now = now_secs();
        let last = self.refreshed.load(Ordering::Relaxed);
        if now > last && self.refreshed.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let _ = self.tx.try_send(Job::Refresh);
        }
        false
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = Msg {
            level: py_level(record.level()),
            text: record.args().to_string(),
            target: record.target().to_owned(),
            module: record.module_path().map(str::to_owned),
        };
        // Full: drop rather than block the core.
        let _ = self.tx.try_send(Job::Record(msg));
    }

    fn flush(&self) {}
}

static LOGGER: OnceLock<PyLogger> = OnceLock::new();

fn effective_level(logger: &Bound<'_, PyAny>) -> Option<u8> {
    logger.call_method0("getEffectiveLevel").ok()?.extract::<u8>().ok()
}

fn emit(py: Python<'_>, logger: &Bound<'_, PyAny>, m: Msg) -> PyResult<()> {
    if !logger.call_method1("isEnabledFor", (m.level,))?.is_truthy()? {
        return Ok(());
    }
    let extra = PyDict::new(py);
    extra.set_item("target", m.target)?;
    extra.set_item("module_path", m.module)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("extra", extra)?;
    logger.call_method("log", (m.level, "%s", m.text), Some(&kwargs))?;
    Ok(())
}

fn run_emitter(rx: &Receiver<Job>, logger: &Py<PyAny>) {
    while let Ok(job) = rx.recv() {
        let done = Python::try_attach(|py| {
            let logger = logger.bind(py);
            if let Job::Record(m) = job {
                // A failing handler must not stop forwarding; logging reports its own errors.
                if let Err(e) = emit(py, logger, m) {
                    e.print(py);
                }
            }
            if let (Some(level), Some(l)) = (effective_level(logger), LOGGER.get()) {
                l.effective.store(level, Ordering::Relaxed);
            }
        });
        if done.is_none() {
            return; // the interpreter is shutting down
        }
    }
}

/// Installs the forwarding logger once per process (when another `log` logger is
/// already installed, that one stays).
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    if LOGGER.get().is_some() {
        return Ok(());
    }
    let logger = py.import("logging")?.call_method1("getLogger", ("tokencache",))?;
    let effective = effective_level(&logger).unwrap_or(30);
    let (tx, rx) = sync_channel(1024);
    if LOGGER.set(PyLogger { tx, effective: AtomicU8::new(effective), refreshed: AtomicU64::new(0) }).is_err() {
        return Ok(());
    }
    let logger = logger.unbind();
    std::thread::Builder::new().name("tokencache-log".into()).spawn(move || run_emitter(&rx, &logger)).map_err(
        |e| pyo3::exceptions::PyRuntimeError::new_err(format!("tokencache: cannot start the log thread: {e}")),
    )?;
    if let Some(l) = LOGGER.get()
        && log::set_logger(l).is_ok()
    {
        log::set_max_level(LevelFilter::Trace);
    }
    Ok(())
}

/// `CacheStats` as a dict: `hits`/`misses` per credential type name, `evictions`
/// by reason, then `entries`, `partitions`, `bytes`, `examined`.
pub(crate) fn stats_to_dict<'py>(py: Python<'py>, s: &CacheStats) -> PyResult<Bound<'py, PyDict>> {
    let per_type = |counts: &[u64; 5]| -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (ct, n) in CredentialType::ALL.iter().zip(counts) {
            d.set_item(ct.as_str(), n)?;
        }
        Ok(d)
    };
    let evictions = PyDict::new(py);
    evictions.set_item("capacity", s.evictions.capacity)?;
    evictions.set_item("absolute", s.evictions.absolute)?;
    evictions.set_item("sliding", s.evictions.sliding)?;
    evictions.set_item("expired_tokens", s.evictions.expired_tokens)?;
    let d = PyDict::new(py);
    d.set_item("hits", per_type(&s.hits)?)?;
    d.set_item("misses", per_type(&s.misses)?)?;
    d.set_item("evictions", evictions)?;
    d.set_item("entries", s.entries)?;
    d.set_item("partitions", s.partitions)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("examined", s.examined)?;
    Ok(d)
}
