//! pyo3 bindings (in progress).
