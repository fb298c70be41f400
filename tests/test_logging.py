"""The library's logging manners: a NullHandler, LIBCLOUD_DEBUG / libcloud.enable_debug without
touching the application's loggers and handlers."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import libcloud

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LIBCLOUD_", "STRATUSLAB_"))}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_the_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("stratuslab_libcloud").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_site_failure_is_not_printed_by_logging_last_resort() -> None:
    """An application without logging configuration sees the warning once (warnings), not a
    second time through logging's last-resort handler."""
    result = _run(
        """
        from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
        with LocalCloud(sites=["lal", "grnet"]) as cloud:
            driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
            cloud.inject_fault("status", site="grnet", service="compute", status=503)
            driver.list_nodes()
        """
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "grnet" in line]
    assert len(lines) == 1, result.stderr  # the StratusLabSiteWarning only


def test_libcloud_debug_leaves_the_applications_loggers_and_console_alone(
    tmp_path: Path,
) -> None:
    debug = tmp_path / "debug.log"
    result = _run(
        """
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="APP %(message)s")
        mine = logging.getLogger("stratuslab_libcloud")
        mine.setLevel(logging.INFO)
        from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
        with LocalCloud(sites=["lal"]) as cloud:
            StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
        assert logging.getLogger().level == logging.INFO, logging.getLogger().level
        assert mine.level == logging.INFO, mine.level
        print("levels kept")
        """,
        {"LIBCLOUD_DEBUG": str(debug)},
    )
    assert result.returncode == 0, result.stderr
    assert "levels kept" in result.stdout
    assert " -> 200 in " not in result.stdout + result.stderr, result.stdout
    # libcloud opened the file at import; the request lines are there.
    assert debug.read_text(encoding="utf-8").count(" -> 200 in ") == 2


def test_libcloud_enable_debug_captures_this_drivers_requests(cloud: LocalCloud) -> None:
    stream = io.StringIO()
    libcloud.enable_debug(stream)
    try:
        StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    finally:
        libcloud.reset_debug()
    lines = [ln for ln in stream.getvalue().splitlines() if " -> 200 in " in ln]
    assert len(lines) == 4  # vmpool.info and the pdisk listing at each site
    assert all("stratuslab_libcloud" in ln for ln in lines)
    # Off again for drivers built afterwards.
    stream.truncate(0)
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    assert stream.getvalue() == ""


def test_debug_lines_do_not_reach_pytests_or_the_apps_handlers_unless_asked(
    cloud: LocalCloud,
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep(logging.DEBUG)
    root.addHandler(handler)
    stream = io.StringIO()
    libcloud.enable_debug(stream)
    try:
        StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    finally:
        libcloud.reset_debug()
        root.removeHandler(handler)
    assert " -> 200 in " in stream.getvalue()
    assert not [r for r in records if " -> " in r.getMessage()]
