"""Logging: Rust ``log`` records arrive on the ``stratuslab_libcloud`` logger (through pyo3-log);
``LIBCLOUD_DEBUG=<file>`` also writes them to that file, as libcloud's own drivers do. Also the
warning about configuration files other users can read."""

from __future__ import annotations

import logging
import os
import stat
import warnings

from . import _stratuslab
from .errors import StratusLabSecurityWarning

log = logging.getLogger("stratuslab_libcloud")


class _DebugFile:
    """The LIBCLOUD_DEBUG handler in place, its file, and the logger level it replaced."""

    current: tuple[logging.Handler, str, int] | None = None


def install_libcloud_debug() -> None:
    """Follows ``LIBCLOUD_DEBUG``: a DEBUG file handler on the ``stratuslab_libcloud`` logger
    while it names a file (replaced when it names another, removed when unset), and makes the Rust
    side re-read the Python logging levels (pyo3-log caches them)."""
    path = os.environ.get("LIBCLOUD_DEBUG") or None
    current = _DebugFile.current
    if current is not None and current[1] != path:
        handler, _, level = current
        log.removeHandler(handler)
        handler.close()
        log.setLevel(level)
        current = _DebugFile.current = None
    if path is not None and current is None:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.setLevel(logging.DEBUG)
        log.addHandler(handler)
        _DebugFile.current = (handler, path, log.level)
        if log.level == logging.NOTSET or log.level > logging.DEBUG:
            log.setLevel(logging.DEBUG)
    _stratuslab.reset_log_cache()


def warn_if_exposed(path: str | os.PathLike[str]) -> None:
    """Warns (``StratusLabSecurityWarning`` and a log record) when a configuration file, which
    holds the password, is accessible by its group or by others, as ssh does for private keys."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # reading it reports the problem
    if os.name != "posix" or not stat.S_ISREG(mode) or not mode & 0o077:
        return
    message = (
        f"{os.fspath(path)} is accessible by its group or others "
        f"(mode {stat.S_IMODE(mode):04o}); it holds the StratusLab credentials: "
        "run 'chmod 600' on it"
    )
    log.warning("%s", message)
    warnings.warn(message, StratusLabSecurityWarning, stacklevel=4)
