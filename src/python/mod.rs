//! The only pyo3 code: the `stratuslab_libcloud._stratuslab` extension module.
//!
//! Every call that waits on the network releases the GIL ([`errors::run`]) and runs on the one
//! process runtime; panics are caught there and raised as `StratusLabError`, never an abort.

mod aio;
mod convert;
mod core;
mod errors;
mod fleet;
mod localcloud;
mod opennebula;

use std::sync::OnceLock;

use pyo3::prelude::*;

static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// Re-reads Python's logging levels (after `logging.getLogger(...).setLevel(...)`).
#[pyfunction]
fn reset_log_cache() {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
}

/// Sends each request line to the `stratuslab_libcloud._libcloud_debug` logger too (libcloud's
/// debug output is on), whatever the application's logging levels.
#[pyfunction]
fn set_libcloud_debug(on: bool) {
    crate::http::set_libcloud_debug(on);
}

/// `~/.stratuslab/stratuslab-user.cfg`, or None without a home directory.
#[pyfunction]
fn default_config_path() -> Option<String> {
    crate::config::default_path().map(|p| p.to_string_lossy().into_owned())
}

/// Reads a configuration file as bytes (decoding and parsing happen in Rust too), with the
/// specific errors for missing, unreadable and directory paths.
#[pyfunction]
fn read_config_file(py: Python<'_>, path: String) -> PyResult<Vec<u8>> {
    errors::run(py, move || {
        use crate::config::ConfigError;
        let p = std::path::Path::new(&path);
        if p.is_dir() {
            return Err(ConfigError::IsDirectory { path: path.clone() }.into());
        }
        std::fs::read(p).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound { path: path.clone() }.into()
            } else {
                ConfigError::Io {
                    path: path.clone(),
                    source,
                }
                .into()
            }
        })
    })
}

/// Test hook: panics inside [`errors::run`], which must raise `StratusLabError`, not abort.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    errors::run(py, || -> Result<(), crate::error::Error> {
        panic!("panic injected by _panic_for_tests")
    })
}

#[pymodule]
fn _stratuslab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    if LOG_RESET.get().is_none() {
        // Our records (target `stratuslab_libcloud`) at every level; other crates' (hyper,
        // rustls…) only from WARN up, so I/O threads do not take the GIL for their chatter.
        if let Ok(handle) = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels)?
            .filter(log::LevelFilter::Warn)
            .filter_target("stratuslab_libcloud".to_owned(), log::LevelFilter::Trace)
            .install()
        {
            let _ = LOG_RESET.set(handle);
        }
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("_debug_build", cfg!(debug_assertions))?;
    m.add("DEFAULT_MAX_IN_FLIGHT", crate::fleet::DEFAULT_MAX_IN_FLIGHT)?;
    m.add("DEFAULT_SETTLE", crate::fleet::DEFAULT_SETTLE.as_secs_f64())?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(reset_log_cache, m)?)?;
    m.add_function(wrap_pyfunction!(set_libcloud_debug, m)?)?;
    m.add_function(wrap_pyfunction!(default_config_path, m)?)?;
    m.add_function(wrap_pyfunction!(read_config_file, m)?)?;
    m.add_class::<core::Core>()?;
    m.add_class::<localcloud::LocalCloudServer>()?;
    m.add_class::<opennebula::PlainSites>()?;
    m.add_class::<fleet::AsyncFleet>()?;
    Ok(())
}
