"""Logging: Rust ``log`` records arrive on the ``stratuslab_libcloud`` logger (through pyo3-log),
which has a ``NullHandler``; libcloud's debug output (``LIBCLOUD_DEBUG=<file>``,
``libcloud.enable_debug(fo)``) also gets the request lines, as libcloud's own drivers write
theirs. Also the warning about configuration files other users can read."""

from __future__ import annotations

import logging
import os
import stat
import warnings
from typing import IO

from . import _stratuslab
from .errors import StratusLabSecurityWarning

log = logging.getLogger("stratuslab_libcloud")
# Library practice: records nobody asked for are dropped, not printed by logging's last resort.
log.addHandler(logging.NullHandler())

# libcloud's debug output (LIBCLOUD_DEBUG, libcloud.enable_debug) gets every request line,
# whatever the application's levels: the Rust core sends a copy of each to this private logger,
# which never passes them to the application's handlers.
_debug_log = logging.getLogger("stratuslab_libcloud._libcloud_debug")
_debug_log.propagate = False
_debug_log.setLevel(logging.DEBUG)


class _LibcloudDebugHandler(logging.Handler):
    """Writes each record as one line to libcloud's debug stream, when there is one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stream: IO[str] | None = None
        self.setFormatter(
            logging.Formatter("%(asctime)s stratuslab_libcloud %(levelname)s %(message)s")
        )

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.stream
        if stream is None:
            return
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


_handler = _LibcloudDebugHandler()
_debug_log.addHandler(_handler)


class _DebugFile:
    """The LIBCLOUD_DEBUG file opened here (the variable was set after libcloud's import)."""

    current: tuple[str, IO[str]] | None = None


def install_libcloud_debug() -> None:
    """Follows libcloud's debug switch when a driver is built (as libcloud's drivers pick their
    connection class then): the stream of ``libcloud.enable_debug(fo)`` (which ``LIBCLOUD_DEBUG``
    sets when libcloud is imported), else the file ``LIBCLOUD_DEBUG`` names now (opened here,
    replaced when it names another, closed when unset), else none. No logger level or handler
    of the application is touched."""
    from libcloud.utils.loggingconnection import LoggingConnection

    stream: IO[str] | None = getattr(LoggingConnection, "log", None)
    path = None if stream is not None else (os.environ.get("LIBCLOUD_DEBUG") or None)
    current = _DebugFile.current
    if current is not None and current[0] != path:
        current[1].close()
        current = _DebugFile.current = None
    if path is not None:
        if current is None:
            current = _DebugFile.current = (path, open(path, "a", encoding="utf-8"))  # noqa: SIM115
        stream = current[1]
    _handler.stream = stream
    _stratuslab.set_libcloud_debug(stream is not None)
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
