"""Exceptions raised by the StratusLab driver.

Every class subclasses the libcloud exception a Libcloud user already catches. Messages name the
site, the endpoint and the operation, never a credential, and are at most 1,000 characters long.
Raised from Rust through one mapping (``src/python/errors.rs``); the driver that raised is in
``driver`` (libcloud's ``LibcloudError.driver``).

Every class pickles with its attributes (a ``ProcessPoolExecutor`` worker can raise them); the
``driver`` travels only when the driver itself pickles, else it comes back as ``None``.
"""

from __future__ import annotations

import pickle
from typing import Any

from libcloud.common.types import (
    InvalidCredsError,
    LibcloudError,
    MalformedResponseError,
    ProviderError,
)

__all__ = [
    "StratusLabAuthError",
    "StratusLabConfigError",
    "StratusLabConnectionError",
    "StratusLabError",
    "StratusLabMalformedResponseError",
    "StratusLabNotFoundError",
    "StratusLabProviderError",
    "StratusLabSecurityWarning",
    "StratusLabSiteWarning",
    "StratusLabSitesError",
    "StratusLabStateError",
    "StratusLabTimeoutError",
    "StratusLabUnsupportedError",
]


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickles an exception of this module: no ``__init__`` call, every attribute back."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _picklable(driver: Any) -> Any:
    """The driver if it pickles, else ``None`` (an exception must pickle whatever its driver)."""
    if driver is None:
        return None
    try:
        pickle.dumps(driver)
    except Exception:  # whatever the reason, the exception is sent without it
        return None
    return driver


class _Pickles:
    """``__reduce__`` that keeps ``args`` and every attribute (libcloud's exceptions take
    positional arguments that ``BaseException``'s default pickling would not pass back)."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        if "driver" in state:
            state["driver"] = _picklable(state["driver"])
        return (_restore, (type(self), self.args, state))  # type: ignore[attr-defined]


class _Context(_Pickles):
    """Where a failure happened: ``site``, ``endpoint``, ``operation`` (``None`` when not remote),
    the HTTP status ``http_code`` and the service's own ``service_code`` when there were any."""

    site: str | None = None
    endpoint: str | None = None
    operation: str | None = None
    service_code: int | None = None

    value: Any

    def __str__(self) -> str:
        return str(self.value)

    def _set_context(self, context: dict[str, Any] | None) -> None:
        if context:
            self.site = context.get("site")
            self.endpoint = context.get("endpoint")
            self.operation = context.get("operation")
            self.service_code = context.get("service_code")


class StratusLabError(_Context, LibcloudError):
    """Base class of the driver's own failures that are not one of libcloud's specific kinds."""

    def __init__(
        self, value: str, driver: Any = None, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(value, driver)
        self._set_context(context)


class StratusLabTimeoutError(StratusLabError):
    """No reply within the timeout."""


class StratusLabConnectionError(StratusLabError):
    """The site could not be reached (connection refused or reset, DNS, TLS)."""


class StratusLabUnsupportedError(StratusLabError):
    """The site's OpenNebula version cannot do this."""


class StratusLabSitesError(StratusLabError):
    """Every site of a multi-site call failed: ``errors`` maps each site to its own exception."""

    def __init__(self, value: str, errors: dict[str, BaseException], driver: Any = None) -> None:
        super().__init__(value, driver)
        self.errors = dict(errors)


class StratusLabProviderError(_Context, ProviderError):
    """The service refused: HTTP status in ``http_code``, OpenNebula/pdisk code in
    ``service_code``."""

    def __init__(
        self,
        value: str,
        http_code: int | None,
        driver: Any = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        # libcloud types http_code as int; None means the refusal came without an HTTP status.
        super().__init__(value, http_code, driver)  # type: ignore[arg-type]
        self._set_context(context)


class StratusLabStateError(StratusLabProviderError):
    """The cloud's current state forbids the request: attach to a node that is not running,
    detach a volume that is not attached, act on a node that is already destroyed (found by the
    driver reading the state, before the action is sent: ``http_code`` ``None``), OpenNebula's
    ``ACTION`` refusal (``service_code`` 2048), pdisk's HTTP 409 (a disk in use)."""


class StratusLabNotFoundError(StratusLabProviderError):
    """No such node, image or volume: ``http_code`` is 404 whichever service said so
    (OpenNebula's ``NO_EXISTS`` for a node, HTTP 404 from the Marketplace or pdisk)."""


class StratusLabAuthError(_Context, InvalidCredsError):
    """Wrong or missing credentials."""

    def __init__(
        self, value: str, driver: Any = None, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(value, driver)
        self._set_context(context)


class StratusLabMalformedResponseError(_Context, MalformedResponseError):
    """The service answered something the driver cannot read."""

    def __init__(
        self,
        value: str,
        body: str | None = None,
        driver: Any = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(value, body, driver)
        self._set_context(context)


class StratusLabConfigError(_Pickles, ValueError):
    """The configuration (file, section, key, line in the message) is wrong."""


class StratusLabSiteWarning(UserWarning):
    """A site failed during a multi-site listing; the other sites' results are still returned."""


class StratusLabSecurityWarning(UserWarning):
    """A setting exposes the credentials (a configuration file others can read, TLS
    verification turned off)."""
