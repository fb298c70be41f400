"""Logging: Rust ``log`` records arrive on the ``stratuslab_libcloud`` logger (through pyo3-log);
``LIBCLOUD_DEBUG=<file>`` also writes them to that file, as libcloud's own drivers do."""

from __future__ import annotations

import logging
import os

_installed: str | None = None


def install_libcloud_debug() -> None:
    """Adds a DEBUG file handler for ``LIBCLOUD_DEBUG`` (once per file name)."""
    global _installed
    path = os.environ.get("LIBCLOUD_DEBUG")
    if not path or path == _installed:
        return
    logger = logging.getLogger("stratuslab_libcloud")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
        logger.setLevel(logging.DEBUG)
    _installed = path
    from . import _stratuslab

    _stratuslab.reset_log_cache()
