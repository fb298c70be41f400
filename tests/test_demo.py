"""The main job: examples/quickstart.py completes the whole tour and exits 0."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_quickstart_tour(tmp_path: Path) -> None:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for step in [
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
    ]:
        assert step in text, f"missing {step!r} in:\n{text}"
    assert "is running on host" in text
    assert "attached as vd" in text
    assert "node still listed: False" in text
    assert elapsed < 60, f"the tour took {elapsed:.1f} s"
