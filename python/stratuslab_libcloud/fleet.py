"""Results of the fleet operations (``ex_create_nodes``, ``ex_destroy_nodes``).

The work itself is in the Rust core (``src/fleet.rs``): this module only holds what is handed
back to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libcloud.compute.base import Node

from ._stratuslab import DEFAULT_MAX_IN_FLIGHT, DEFAULT_SETTLE

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DEFAULT_SETTLE", "FleetInterrupted", "FleetResult", "Progress"]

log = logging.getLogger("stratuslab_libcloud")

#: ``ex_progress(done, total, node_or_exception)``
Progress = Callable[[int, int, Node | BaseException], object]


@dataclass
class FleetResult:
    """What a fleet operation did, every list in input order.

    :ivar nodes: the nodes created (``ex_create_nodes``) or destroyed (``ex_destroy_nodes``).
    :ivar failures: ``(name, exception)`` for each node that failed (for ``ex_destroy_nodes``
        the name is the node's id). A create that failed left no VM behind, except one whose
        reply was lost and whose VM had not appeared when the driver gave up: its exception
        names the client token, and ``create_node(..., ex_client_token=token)`` returns the VM
        if it appears later.
    :ivar not_sent: names (node ids) whose request was never sent (the operation was
        interrupted first).
    """

    nodes: list[Node] = field(default_factory=list)
    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every node succeeded."""
        return not self.failures and not self.not_sent


class FleetInterrupted(KeyboardInterrupt):
    """Ctrl-C during a fleet operation: no request was sent after it, those in flight were
    waited for, and :attr:`result` tells what was done (nothing is leaked unknowingly)."""

    def __init__(self, result: FleetResult) -> None:
        super().__init__(
            f"interrupted: {len(result.nodes)} done, {len(result.failures)} failed, "
            f"{len(result.not_sent)} not sent"
        )
        self.result = result

    def __reduce__(self) -> tuple[type[FleetInterrupted], tuple[FleetResult]]:
        return (FleetInterrupted, (self.result,))


def _token(token: object) -> str | None:
    if token is None or isinstance(token, str):
        return token
    raise TypeError(f"a client token must be a str, not {type(token).__name__}")


def _settle(seconds: object) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"ex_settle must be a number of seconds, not {seconds!r}")
    return float(seconds)


def _names(names: object) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError("names must be a sequence of str")
    out = list(names)
    for name in out:
        if not isinstance(name, str):
            raise TypeError(f"a node name must be a str, not {type(name).__name__}")
    return out


class _Progress:
    """The sink of a fleet: counts the nodes that ended and reports each to ``callback``."""

    def __init__(
        self,
        total: int,
        callback: Progress | None,
        to_node: Callable[[Any], Node | None],
        nodes: Sequence[Node] | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self.to_node = to_node
        self.nodes = nodes

    def __call__(self, index: int, value: Any, exc: BaseException | None) -> None:
        if value is None and exc is None:
            return  # never sent
        self.done += 1
        if self.callback is None:
            return
        if exc is not None:
            self.callback(self.done, self.total, exc)
            return
        node = self.nodes[index] if self.nodes is not None else self.to_node(value)
        if node is not None:
            self.callback(self.done, self.total, node)


def _finish(what: str, result: FleetResult, stopped: BaseException | None) -> FleetResult:
    """The result, or the interruption that stopped the fleet (with what was done logged)."""
    if stopped is None:
        return result
    done = ", ".join(str(n.id) for n in result.nodes) or "none"
    log.warning(
        "%s interrupted (%s): done before it stopped: %s; not sent: %d",
        what,
        type(stopped).__name__,
        done,
        len(result.not_sent),
    )
    if isinstance(stopped, KeyboardInterrupt):
        raise FleetInterrupted(result) from stopped
    raise stopped
