"""Results of the fleet operations (``ex_create_nodes``, ``ex_destroy_nodes``).

The work itself is in the Rust core (``src/fleet.rs``): this module only holds what is handed
back to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from libcloud.compute.base import Node

from ._stratuslab import DEFAULT_MAX_IN_FLIGHT, DEFAULT_SETTLE

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DEFAULT_SETTLE", "FleetInterrupted", "FleetResult"]


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
