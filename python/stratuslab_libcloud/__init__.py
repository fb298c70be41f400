"""StratusLab compute driver for Apache Libcloud, with a Rust core and a local StratusLab cloud.

Importing this package registers the ``"stratuslab"`` provider with libcloud::

    import stratuslab_libcloud  # noqa: F401
    from libcloud.compute.providers import get_driver

    driver = get_driver("stratuslab")()
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, cast

from libcloud.compute.providers import DRIVERS, get_driver, set_driver

from ._stratuslab import __version__
from .aio import AsyncStratusLabNodeDriver
from .driver import StratusLabNodeDriver
from .errors import (
    StratusLabAuthError,
    StratusLabConfigError,
    StratusLabConnectionError,
    StratusLabError,
    StratusLabMalformedResponseError,
    StratusLabNotFoundError,
    StratusLabProviderError,
    StratusLabSitesError,
    StratusLabSiteWarning,
    StratusLabStateError,
    StratusLabTimeoutError,
    StratusLabUnsupportedError,
)
from .fleet import FleetInterrupted, FleetResult

__all__ = [
    "PROVIDER",
    "AsyncStratusLabNodeDriver",
    "FleetInterrupted",
    "FleetResult",
    "LocalCloud",
    "StratusLabAuthError",
    "StratusLabConfigError",
    "StratusLabConnectionError",
    "StratusLabError",
    "StratusLabMalformedResponseError",
    "StratusLabNodeDriver",
    "StratusLabNotFoundError",
    "StratusLabProviderError",
    "StratusLabSiteWarning",
    "StratusLabSitesError",
    "StratusLabStateError",
    "StratusLabTimeoutError",
    "StratusLabUnsupportedError",
    "__version__",
    "register",
]

PROVIDER = "stratuslab"

if TYPE_CHECKING:
    from .localcloud import LocalCloud


def __getattr__(name: str) -> Any:
    # LocalCloud is imported on first use: `python -m stratuslab_libcloud.localcloud` then runs
    # the module once, and importing the driver stays cheap.
    if name == "LocalCloud":
        from .localcloud import LocalCloud

        return LocalCloud
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Registers the ``"stratuslab"`` provider with libcloud. Safe to call any number of times,
    and after the user registered the same class by hand. If another class is registered under
    that name, it is left in place and a warning says so."""
    # libcloud types DRIVERS with its Provider enum as key; any string is stored in practice.
    registered = cast("dict[str, tuple[str, str]]", DRIVERS)
    if PROVIDER in registered:
        try:
            current = get_driver(PROVIDER)
        except (ImportError, AttributeError):
            current = None
        if current is not StratusLabNodeDriver:
            warnings.warn(
                f"libcloud provider {PROVIDER!r} is already registered to "
                f"{registered[PROVIDER]!r}; leaving it in place",
                RuntimeWarning,
                stacklevel=2,
            )
        return
    # libcloud's type comment says module and class objects; it takes (and documents) their names.
    set_driver(PROVIDER, "stratuslab_libcloud.driver", "StratusLabNodeDriver")  # type: ignore[arg-type]


register()
