"""Exceptions raised by the StratusLab driver.

Every class subclasses the libcloud exception a Libcloud user already catches. Messages name the
site, the endpoint and the operation, never a credential. Raised from Rust through one mapping
(``src/python/errors.rs``).
"""

from __future__ import annotations

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
    "StratusLabProviderError",
    "StratusLabSecurityWarning",
    "StratusLabSiteWarning",
    "StratusLabTimeoutError",
    "StratusLabUnsupportedError",
]


class _Context:
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
    """The site's OpenNebula version cannot do this (e.g. reboot on 3.2)."""


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


class StratusLabConfigError(ValueError):
    """The configuration (file, section, key, line in the message) is wrong."""


class StratusLabSiteWarning(UserWarning):
    """A site failed during a multi-site listing; the other sites' results are still returned."""


class StratusLabSecurityWarning(UserWarning):
    """A setting exposes the credentials (a configuration file others can read, TLS
    verification turned off)."""
