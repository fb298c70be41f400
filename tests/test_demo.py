"""The main job: examples/quickstart.py completes the whole tour and exits 0, with nothing but the
package's runtime dependencies importable (as after a bare ``pip install .``).

The test environment has the ``[test]`` extras, so the tour runs under an import guard that
refuses every installed distribution outside the runtime closure of ``stratuslab-libcloud``
(``cryptography``, ``paramiko``, ``pytest``, …). ``.ci/run`` also runs the demo in a virtualenv
made by ``pip install .`` alone and checks its output with this file::

    python examples/quickstart.py > out.txt && python tests/test_demo.py out.txt
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"

STEPS = [
    "== Locations",
    "== Sizes",
    "== Images",
    "== Create node 'quickstart'",
    "== wait_until_running",
    "== Create a 10 GiB volume",
    "== Attach it to the node",
    "== List nodes",
    "== List volumes",
    "== Detach the volume",
    "== Destroy the volume",
    "== Destroy the node",
    "Done in",
]

# Runs a script with every top-level module of BLOCKED unimportable (argv: blocked names, script).
GUARD = """\
import importlib.abc, runpy, sys
blocked = set(sys.argv[1].split(","))
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not a runtime dependency)",
                                      name=name)
        return None
sys.meta_path.insert(0, Guard())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def check_tour_output(text: str) -> None:
    """Every step of the tour ran, the node booted, the volume was attached, all was cleaned up."""
    for step in STEPS:
        assert step in text, f"missing {step!r} in:\n{text}"
    assert "is running on host" in text, text
    assert "attached as vd" in text, text
    assert "node still listed: False" in text, text


def runtime_distributions(name: str = "stratuslab-libcloud") -> set[str]:
    """``name`` and everything its non-extra requirements pull in, normalized."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [name]
    while todo:
        dist = canonicalize_name(todo.pop())
        if dist in seen:
            continue
        seen.add(dist)
        for spec in metadata.requires(dist) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def non_runtime_modules() -> set[str]:
    """Top-level modules installed here by distributions outside the runtime closure."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    runtime = runtime_distributions()
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in runtime for d in dists)
    }


def test_the_guard_covers_the_test_only_dependencies() -> None:
    blocked = non_runtime_modules()
    assert {"cryptography", "paramiko", "pytest", "xmlschema"} <= blocked
    assert not {"libcloud", "stratuslab_libcloud", "requests"} & blocked


def test_quickstart_tour_needs_only_the_runtime_dependencies(tmp_path: Path) -> None:
    blocked = sorted(non_runtime_modules())
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", GUARD, ",".join(blocked), str(QUICKSTART)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    check_tour_output(out.stdout)
    assert elapsed < 60, f"the tour took {elapsed:.1f} s"


def test_the_guard_refuses_a_test_only_import(tmp_path: Path) -> None:
    # The guard is what makes the tour test meaningful: an import of a test-only dependency fails.
    script = tmp_path / "uses_cryptography.py"
    script.write_text("import cryptography.hazmat\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", GUARD, ",".join(sorted(non_runtime_modules())), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "No module named 'cryptography' (not a runtime dependency)" in out.stderr


if __name__ == "__main__":
    # `python tests/test_demo.py OUTPUT`: checks a tour's output (.ci/run, bare install, no pytest).
    check_tour_output(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(f"{sys.argv[1]}: the tour's output is complete")
