//! The single place where Rust errors become Python exceptions (classes of
//! `stratuslab_libcloud.errors`, which subclass libcloud's), and where panics are caught.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{Classify, Error, Kind};
use crate::http::redact_urls;
use crate::runtime::Task;

/// Runs `f` with the GIL released, catching panics, and maps its error to Python.
pub fn run<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, Error> + Send,
    T: Send,
{
    let outcome = py.detach(move || catch_unwind(AssertUnwindSafe(f)));
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, &e)),
        Err(panic) => Err(to_py(py, &panicked(&*panic))),
    }
}

/// The error a caught panic is raised as (`StratusLabError`).
pub fn panicked(panic: &(dyn std::any::Any + Send)) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Error::internal(format!("a bug in the Rust core: {what}"))
}

/// How often a thread waiting for the runtime checks Python's signals (Ctrl-C).
pub const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs a future on the process runtime and waits for it with the GIL released, checking
/// Python's signals every [`SIGNAL_CHECK`]: a `KeyboardInterrupt` (or any exception a signal
/// handler raises) cancels the future, whose connections are then closed, and is raised.
pub fn block<T, Fut>(py: Python<'_>, fut: Fut) -> PyResult<T>
where
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = Task::spawn(fut).map_err(|e| to_py(py, &e))?;
    loop {
        if let Some(result) = run(py, || task.wait(SIGNAL_CHECK))? {
            return result.map_err(|e| to_py(py, &e));
        }
        // Dropping `task` (on return) cancels it.
        py.check_signals()?;
    }
}

/// Builds the Python exception for an error.
pub fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    match build(py, error) {
        Ok(e) => e,
        Err(e) => e,
    }
}

fn build(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let module = py.import("stratuslab_libcloud.errors")?;
    // A URL given with user:password@ must not carry them into a message.
    let message = bounded(&redact_urls(&error.to_string()));
    let context = PyDict::new(py);
    if let Some(c) = error.context() {
        context.set_item("site", &c.site)?;
        context.set_item("endpoint", redact_urls(&c.endpoint))?;
        context.set_item("operation", &c.operation)?;
    }
    if let Some(code) = error.service_code() {
        context.set_item("service_code", code)?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("context", context)?;
    // HTTP 401 is a credentials problem whichever service sent it (as in libcloud's own drivers).
    let kind = match (error.kind(), error.http_status()) {
        (Kind::Provider, Some(401)) => Kind::InvalidCreds,
        (Kind::Provider, _) if is_state_refusal(error) => Kind::State,
        (kind, _) => kind,
    };
    if kind == Kind::Provider && is_not_found(error) {
        let value = module
            .getattr("StratusLabNotFoundError")?
            .call((message, 404), Some(&kwargs))?;
        return Ok(PyErr::from_value(value));
    }
    let value = match kind {
        Kind::InvalidCreds => module
            .getattr("StratusLabAuthError")?
            .call((message,), Some(&kwargs))?,
        Kind::Malformed => module
            .getattr("StratusLabMalformedResponseError")?
            .call((message,), Some(&kwargs))?,
        Kind::Provider => module
            .getattr("StratusLabProviderError")?
            .call((message, error.http_status()), Some(&kwargs))?,
        Kind::Timeout => module
            .getattr("StratusLabTimeoutError")?
            .call((message,), Some(&kwargs))?,
        Kind::Unreachable => module
            .getattr("StratusLabConnectionError")?
            .call((message,), Some(&kwargs))?,
        Kind::State => module
            .getattr("StratusLabStateError")?
            .call((message, error.http_status()), Some(&kwargs))?,
        Kind::Unsupported => module
            .getattr("StratusLabUnsupportedError")?
            .call((message,), Some(&kwargs))?,
        Kind::Internal => module
            .getattr("StratusLabError")?
            .call((message,), Some(&kwargs))?,
        Kind::Config => module.getattr("StratusLabConfigError")?.call1((message,))?,
        Kind::InvalidArgument => return Ok(PyValueError::new_err(message)),
    };
    Ok(PyErr::from_value(value))
}

/// The longest message an exception carries, in characters.
pub const MESSAGE_LIMIT: usize = 1000;

/// A message on one line (control characters become spaces) of at most [`MESSAGE_LIMIT`]
/// characters: a server's text can be any size and shape.
fn bounded(message: &str) -> String {
    let long = message.chars().nth(MESSAGE_LIMIT).is_some();
    let keep = if long {
        MESSAGE_LIMIT - 1
    } else {
        MESSAGE_LIMIT
    };
    let mut out: String = message
        .chars()
        .take(keep)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if long {
        out.push('…');
    }
    out
}

/// A refusal because of the current state, whichever service says it: HTTP 409 Conflict
/// (pdisk: a disk in use) or OpenNebula's `ACTION` (0x800: "wrong state to perform action").
fn is_state_refusal(error: &Error) -> bool {
    const ONE_ACTION: i64 = 0x800;
    error.http_status() == Some(409)
        || (error.http_status().is_none() && error.service_code() == Some(ONE_ACTION))
}

/// "Not found", whichever service says it: HTTP 404 (pdisk, Marketplace) or OpenNebula's
/// `NO_EXISTS` (0x400) for a node.
fn is_not_found(error: &Error) -> bool {
    const ONE_NO_EXISTS: i64 = 0x400;
    error.http_status() == Some(404)
        || (error.http_status().is_none() && error.service_code() == Some(ONE_NO_EXISTS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_messages_are_short_and_on_one_line() {
        assert_eq!(bounded("a\nb\tc"), "a b c");
        let long = "x".repeat(1_000_000);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MESSAGE_LIMIT);
        assert!(cut.ends_with('…'));
        let exact = "y".repeat(MESSAGE_LIMIT);
        assert_eq!(bounded(&exact), exact);
    }
}
