"""Every code block of README.md runs, so the README cannot rot.

Python blocks are executed (a block that defines ``test_`` functions is run with pytest in a
subprocess); shell blocks are matched to the check that runs them (the demo, the CLI, the test
command itself).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PYTHON_BLOCKS = [code for lang, code in BLOCKS if lang == "python"]
SHELL_BLOCKS = [code.strip() for lang, code in BLOCKS if lang == "sh"]


def test_the_readme_has_its_blocks() -> None:
    assert len(PYTHON_BLOCKS) >= 2
    assert "pip install . && python examples/quickstart.py" in SHELL_BLOCKS
    assert "make test" in SHELL_BLOCKS


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=lambda c: c.splitlines()[0][:40])
def test_python_block_runs(code: str, tmp_path: Path) -> None:
    if "def test_" in code:
        path = tmp_path / "test_from_readme.py"
        path.write_text(code, encoding="utf-8")
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert re.search(r"\b\d+ passed\b", out.stdout), out.stdout
    else:
        namespace: dict[str, object] = {"__name__": "readme_block"}
        exec(compile(code, "README.md", "exec"), namespace)


def test_shell_blocks_are_all_known() -> None:
    known = {
        "pip install . && python examples/quickstart.py",  # tests/test_demo.py runs the demo
        "make test",  # CI runs it (.ci/run)
        # .ci/run builds the wheel (make wheel) and installs it where no Rust toolchain is on PATH
        "pip install stratuslab_libcloud-*-abi3-manylinux*.whl",
    }
    for block in SHELL_BLOCKS:
        assert block in known or block.startswith("python -m stratuslab_libcloud.localcloud"), block


def test_cli_block_runs(tmp_path: Path) -> None:
    [cli] = [b for b in SHELL_BLOCKS if b.startswith("python -m stratuslab_libcloud.localcloud")]
    args = cli.split()[3:]
    config = tmp_path / "stratuslab-user.cfg"
    args = [str(config) if a.endswith("stratuslab-user.cfg") else a for a in args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratuslab_libcloud.localcloud", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        text = "".join(lines)
        assert "StratusLab local cloud on http://127.0.0.1:" in text, text
        assert "lal" in text and "grnet" in text
        assert config.exists() and "[lal]" in config.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_one_list_of_system_packages() -> None:
    # The README's requirements and .ci/run both use .ci/system-packages; every package in it
    # names the test that needs it, and that test's skip reason names the package to install.
    listed = [
        line.split(maxsplit=2)
        for line in (ROOT / ".ci" / "system-packages").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert listed
    assert "[`.ci/system-packages`](.ci/system-packages)" in README
    assert ".ci/system-packages" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for package, command, used_by in listed:
        assert command.startswith("/"), command
        test_file = ROOT / used_by.split()[0]
        assert f"apt-get install -y {package}" in test_file.read_text(encoding="utf-8"), used_by
