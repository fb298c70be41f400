"""The driver's constructor: libcloud's arguments with no file (one site, ``default``), the
default file in ``$HOME``, the configuration as a path or an open file (text or binary), the 2014
driver's keyword aliases, precedence constructor > ``STRATUSLAB_*`` environment > file, and wrong
arguments (exact exception type and message, never the password).

Every configuration text here is SYNTHETIC (written for these tests).
"""

from __future__ import annotations

import inspect
import io
import pydoc
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from libcloud.compute.providers import get_driver

from stratuslab_libcloud import (
    LocalCloud,
    StratusLabAuthError,
    StratusLabConfigError,
    StratusLabNodeDriver,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

PASSWORD = "s3cr3t-Pa55-7f1c"  # synthetic; must never show up in a message or a repr

# ---------------------------------------------------------------------------- no file


def test_without_a_file_the_arguments_make_one_site_named_default(cloud: LocalCloud) -> None:
    ends = cloud.endpoints("grnet")
    driver = StratusLabNodeDriver(
        key=DEFAULT_USER,
        secret=DEFAULT_PASSWORD,
        host=ends["compute"],
        ex_pdisk_endpoint=ends["pdisk"],
        ex_marketplace_endpoint=ends["marketplace"],
    )
    [location] = driver.list_locations()
    assert (location.id, location.name, location.country) == ("default", "default", "unknown")
    assert location.extra == {
        "compute_endpoint": f"{cloud.base_url}/grnet/one-proxy/pswd/xmlrpc",
        "pdisk_endpoint": f"{cloud.base_url}/grnet/pdisk/pswd",
        "marketplace_endpoint": ends["marketplace"],
        "username": DEFAULT_USER,
        "site_type": "stratuslab",
        "endpoint_timeout": None,
    }
    assert driver.ex_default_location is location
    assert (driver.key, driver.secret, driver.host) == (DEFAULT_USER, None, ends["compute"])
    assert repr(driver) == "<StratusLabNodeDriver sites=['default'] user='alice'>"
    assert driver.list_nodes(ex_strict=True) == []
    assert driver.list_volumes(ex_strict=True) == []
    assert driver.list_images()
    assert cloud.request_count("grnet", "compute", "*") >= 1
    assert cloud.request_count("grnet", "pdisk", "*") >= 1
    assert cloud.request_count("lal", "any", "*") == 0


def test_libcloud_positional_arguments_and_get_driver(cloud: LocalCloud) -> None:
    cls = get_driver("stratuslab")
    assert cls is StratusLabNodeDriver
    driver = cls(DEFAULT_USER, DEFAULT_PASSWORD, True, cloud.endpoints("lal")["compute"])
    assert driver.secure is True
    assert driver.list_nodes(ex_strict=True) == []


@pytest.mark.parametrize(
    ("host", "port", "compute", "pdisk"),
    [
        (
            "cloud.example.org",
            None,
            "https://cloud.example.org:2634/pswd/xmlrpc",
            "https://cloud.example.org:8445/pswd",
        ),
        (
            "cloud.example.org",
            8443,
            "https://cloud.example.org:8443/pswd/xmlrpc",
            "https://cloud.example.org:8445/pswd",
        ),
        (
            "https://cloud.example.org/one-proxy/xmlrpc",
            None,
            "https://cloud.example.org/one-proxy/pswd/xmlrpc",
            "https://cloud.example.org/pdisk/pswd",
        ),
        ("localhost", None, "http://localhost:2633/RPC2", "https://localhost:8445/pswd"),
    ],
)
def test_host_forms(host: str, port: int | None, compute: str, pdisk: str) -> None:
    driver = StratusLabNodeDriver("alice", PASSWORD, host=host, port=port)
    extra = driver.list_locations()[0].extra
    assert (extra["compute_endpoint"], extra["pdisk_endpoint"]) == (compute, pdisk)


def test_environment_alone_defines_the_default_site(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    ends = cloud.endpoints("lal")
    monkeypatch.setenv("STRATUSLAB_ENDPOINT", ends["compute"])
    monkeypatch.setenv("STRATUSLAB_USERNAME", DEFAULT_USER)
    monkeypatch.setenv("STRATUSLAB_PASSWORD", DEFAULT_PASSWORD)
    monkeypatch.setenv("STRATUSLAB_PDISK_ENDPOINT", ends["pdisk"])
    monkeypatch.setenv("STRATUSLAB_MARKETPLACE_ENDPOINT", ends["marketplace"])
    driver = StratusLabNodeDriver()
    assert [loc.id for loc in driver.list_locations()] == ["default"]
    assert driver.key == DEFAULT_USER
    assert driver.list_nodes(ex_strict=True) == []
    assert driver.list_volumes(ex_strict=True) == []


def test_the_default_file_in_home_is_read(tmp_path: Path) -> None:
    config = Path.home() / ".stratuslab" / "stratuslab-user.cfg"
    config.parent.mkdir()
    config.write_text(
        f"[default]\nselected_section = lal\nusername = alice\npassword = {PASSWORD}\n"
        "[lal]\nendpoint = lal.example.org\nname = LAL\n",
        encoding="utf-8",
    )
    driver = StratusLabNodeDriver()
    assert [(loc.id, loc.name) for loc in driver.list_locations()] == [("lal", "LAL")]
    # Arguments still beat the file for the default site.
    driver = StratusLabNodeDriver(key="bob", host="other.example.org")
    assert driver.list_locations()[0].extra["compute_endpoint"] == (
        "https://other.example.org:2634/pswd/xmlrpc"
    )
    assert driver.key == "bob"


# ---------------------------------------------------------------------------- precedence

TWO_SITES = f"""\
[default]
selected_section = a
username = fileuser
password = {PASSWORD}
endpoint_timeout = 9

[a]
endpoint = file.example.org
pdisk_endpoint = pdisk-file.example.org
marketplace_endpoint = https://mp-file.example.org

[b]
endpoint = b.example.org
"""

ENV = {
    "STRATUSLAB_ENDPOINT": "env.example.org",
    "STRATUSLAB_USERNAME": "envuser",
    "STRATUSLAB_PDISK_ENDPOINT": "pdisk-env.example.org",
    "STRATUSLAB_MARKETPLACE_ENDPOINT": "https://mp-env.example.org",
}

ARGS = {
    "key": "ctoruser",
    "host": "ctor.example.org",
    "ex_pdisk_endpoint": "pdisk-ctor.example.org",
    "ex_marketplace_endpoint": "https://mp-ctor.example.org",
}


def expected_extra(tag: str, user: str) -> dict[str, Any]:
    return {
        "compute_endpoint": f"https://{tag}.example.org:2634/pswd/xmlrpc",
        "pdisk_endpoint": f"https://pdisk-{tag}.example.org:8445/pswd",
        "marketplace_endpoint": f"https://mp-{tag}.example.org",
        "username": user,
        "site_type": "stratuslab",
        "endpoint_timeout": 9.0,
    }


B_EXTRA = {
    "compute_endpoint": "https://b.example.org:2634/pswd/xmlrpc",
    "pdisk_endpoint": "https://b.example.org:8445/pswd",
    "marketplace_endpoint": "https://marketplace.stratuslab.eu",
    "username": "fileuser",
    "site_type": "stratuslab",
    "endpoint_timeout": 9.0,
}


@pytest.mark.parametrize(
    ("env", "args", "winner", "user"),
    [
        ({}, {}, "file", "fileuser"),
        ({k: "" for k in ENV}, {}, "file", "fileuser"),  # empty variables count as unset
        (ENV, {}, "env", "envuser"),
        (ENV, ARGS, "ctor", "ctoruser"),
        ({}, ARGS, "ctor", "ctoruser"),
    ],
    ids=["file", "empty-env", "env-over-file", "args-over-env", "args-over-file"],
)
def test_constructor_beats_environment_beats_file_for_the_default_site_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: dict[str, str],
    winner: str,
    user: str,
) -> None:
    path = tmp_path / "two.cfg"
    path.write_text(TWO_SITES, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    driver = StratusLabNodeDriver(ex_config_file=path, **args)
    extras = {loc.id: loc.extra for loc in driver.list_locations()}
    assert extras == {"a": expected_extra(winner, user), "b": B_EXTRA}
    assert driver.key == user


def test_password_precedence_against_the_local_cloud(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wrong-password.cfg"
    path.write_text(
        cloud.config_text.replace(f"password = {DEFAULT_PASSWORD}", f"password = {PASSWORD}"),
        encoding="utf-8",
    )

    def lal_nodes(**kwargs: Any) -> list[Any]:
        driver = StratusLabNodeDriver(ex_config_file=path, **kwargs)
        return list(driver.list_nodes(ex_location="lal", ex_strict=True))

    with pytest.raises(StratusLabAuthError):
        lal_nodes()
    monkeypatch.setenv("STRATUSLAB_PASSWORD", DEFAULT_PASSWORD)
    assert lal_nodes() == []
    with pytest.raises(StratusLabAuthError) as info:
        lal_nodes(secret=PASSWORD)
    assert PASSWORD not in str(info.value)
    monkeypatch.setenv("STRATUSLAB_PASSWORD", PASSWORD)
    assert lal_nodes(secret=DEFAULT_PASSWORD) == []
    driver = StratusLabNodeDriver(ex_config_file=path, secret=DEFAULT_PASSWORD)
    # Only the default site (lal) gets the environment and the arguments: grnet keeps the
    # file's wrong password.
    with pytest.raises(StratusLabAuthError) as info:
        driver.list_nodes(ex_location="grnet", ex_strict=True)
    assert info.value.site == "grnet"


# ---------------------------------------------------------------------------- config sources

SIMPLE = f"""\
[default]
selected_section = lal
username = alice
password = {PASSWORD}

[lal]
endpoint = lal.example.org
name = "Laboratoire de l'Accélérateur Linéaire"

[grnet]
endpoint = grnet.example.org
"""


def as_str(p: Path) -> Any:
    return str(p)


def as_path(p: Path) -> Any:
    return p


def as_text_file(p: Path) -> Any:
    return p.open(encoding="utf-8")


def as_binary_file(p: Path) -> Any:
    return p.open("rb")


def as_string_io(p: Path) -> Any:
    return io.StringIO(p.read_text(encoding="utf-8"))


def as_bytes_io(p: Path) -> Any:
    return io.BytesIO(p.read_bytes())


SOURCES: list[Callable[[Path], Any]] = [
    as_str,
    as_path,
    as_text_file,
    as_binary_file,
    as_string_io,
    as_bytes_io,
]


@pytest.mark.parametrize("keyword", ["ex_config_file", "stratuslab_user_config"])
@pytest.mark.parametrize("source", SOURCES, ids=[s.__name__ for s in SOURCES])
def test_config_as_path_or_open_file(
    tmp_path: Path, source: Callable[[Path], Any], keyword: str
) -> None:
    path = tmp_path / "stratuslab-user.cfg"
    path.write_text(SIMPLE, encoding="utf-8")
    given = source(path)
    try:
        driver = StratusLabNodeDriver(**{keyword: given})
    finally:
        if isinstance(given, io.IOBase):
            given.close()
    assert [(loc.id, loc.name) for loc in driver.list_locations()] == [
        ("lal", "Laboratoire de l'Accélérateur Linéaire"),
        ("grnet", "grnet"),
    ]


def test_binary_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + SIMPLE.encode("utf-8")
    driver = StratusLabNodeDriver(stratuslab_user_config=io.BytesIO(data))
    assert [loc.id for loc in driver.list_locations()] == ["lal", "grnet"]


def test_errors_from_a_file_object_name_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text(SIMPLE + "no equals sign\n", encoding="utf-8")
    with path.open(encoding="utf-8") as f, pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=f)
    assert str(info.value) == (
        f"{path}:12: expected 'key = value', 'key: value' or '[section]': no equals sign"
    )
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=io.BytesIO(b"[default]\nname = \xff\n"))
    assert str(info.value) == "<file object>:2: invalid UTF-8 at byte offset 17"


def test_the_default_location_aliases(tmp_path: Path) -> None:
    path = tmp_path / "c.cfg"
    path.write_text(SIMPLE, encoding="utf-8")
    for kwargs in ({"ex_default_location": "grnet"}, {"stratuslab_default_location": "grnet"}):
        driver = StratusLabNodeDriver(stratuslab_user_config=path, **kwargs)
        assert driver.ex_default_location.id == "grnet"


# ---------------------------------------------------------------------------- wrong arguments


class RaisingReader(io.RawIOBase):
    """A file object whose read() fails (synthetic)."""

    name = "boom.cfg"

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise OSError("disk on fire")


class IntReader:
    """Not an IOBase, but has a read() returning the wrong type."""

    def read(self) -> int:
        return 42


def ascii_reader(tmp_path: Path) -> IO[str]:
    path = tmp_path / "utf8.cfg"
    path.write_text("[default]\nname = é\n", encoding="utf-8")
    return path.open(encoding="ascii")


def test_file_objects_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=RaisingReader())
    assert str(info.value) == "boom.cfg: cannot read the configuration: OSError: disk on fire"
    assert isinstance(info.value.__cause__, OSError)

    with ascii_reader(tmp_path) as f, pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=f)
    assert str(info.value) == (
        f"{tmp_path / 'utf8.cfg'}: cannot read the configuration: UnicodeDecodeError: 'ascii' "
        "codec can't decode byte 0xc3 in position 17: ordinal not in range(128)"
    )

    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=IntReader())  # type: ignore[arg-type]
    assert str(info.value) == "<file object>: read() returned int"


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "unknown keyword",
        {"host": "h.example.org", "ex_bogus": 1},
        TypeError,
        r"^(StratusLabNodeDriver\.)?__init__\(\) got an unexpected keyword argument 'ex_bogus'$",
    ),
    (
        "region is not a StratusLab argument",
        {"host": "h.example.org", "region": "eu"},
        TypeError,
        r"^(StratusLabNodeDriver\.)?__init__\(\) got an unexpected keyword argument 'region'$",
    ),
    (
        "config file of the wrong type",
        {"ex_config_file": 42},
        TypeError,
        r"^ex_config_file must be a path or an open file, not int$",
    ),
    (
        "both config keywords",
        {"ex_config_file": "a.cfg", "stratuslab_user_config": "b.cfg"},
        TypeError,
        r"^give ex_config_file or stratuslab_user_config, not both$",
    ),
    (
        "both default-location keywords",
        {"host": "h", "ex_default_location": "a", "stratuslab_default_location": "b"},
        TypeError,
        r"^give ex_default_location or stratuslab_default_location, not both$",
    ),
    (
        "no file and no host",
        {"key": "alice", "secret": PASSWORD},
        StratusLabConfigError,
        r"^no configuration: .*/home/\.stratuslab/stratuslab-user\.cfg does not exist and no "
        r"host was given$",
    ),
    (
        "no file and another default location",
        {"key": "alice", "secret": PASSWORD, "host": "h", "ex_default_location": "lal"},
        StratusLabConfigError,
        r"^no configuration file: default site 'lal' \(from the default site argument\) is not "
        r"defined; known sites: default$",
    ),
    (
        "no file and no user name",
        {"host": "h.example.org"},
        StratusLabConfigError,
        r"^settings: site 'default', option 'username': missing credentials: no username, and "
        r"no readable PEM certificate \(.*/home/\.globus/usercert\.pem\) with its key "
        r"\(pem_key\)$",
    ),
    (
        "unusable host",
        {"key": "alice", "secret": PASSWORD, "host": "ht!tp://x"},
        StratusLabConfigError,
        r"^site 'default', configure at ht!tp://x: invalid compute endpoint ht!tp://x: expected "
        r"a host name or an http\(s\) URL$",
    ),
    (
        "negative timeout",
        {"key": "alice", "secret": PASSWORD, "host": "h", "timeout": -1},
        ValueError,
        r"^timeout must be a positive number of seconds, not -1$",
    ),
    (
        "zero timeout",
        {"key": "alice", "secret": PASSWORD, "host": "h", "timeout": 0},
        ValueError,
        r"^timeout must be a positive number of seconds, not 0$",
    ),
    (
        "backoff below 1",
        {"key": "alice", "secret": PASSWORD, "host": "h", "backoff": 0.5},
        ValueError,
        r"^retry_delay must be ≥ 0 and backoff ≥ 1$",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ARGUMENTS],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        StratusLabNodeDriver(**kwargs)
    assert type(info.value) is error
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)


def test_the_secret_is_not_kept_on_the_python_object(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(
        DEFAULT_USER, DEFAULT_PASSWORD, host=cloud.endpoints("lal")["compute"]
    )
    assert driver.secret is None
    shown = [repr(driver), str(driver), repr(vars(driver))]
    shown += [repr(vars(loc)) for loc in driver.list_locations()]
    for text in shown:
        assert DEFAULT_PASSWORD not in text
    assert driver.list_nodes(ex_strict=True) == []  # the core has it


def test_help_shows_this_drivers_constructor() -> None:
    # help() shows the constructor's own docstring, not libcloud's generic one (whose api_version
    # and region raise TypeError here).
    text = pydoc.render_doc(StratusLabNodeDriver, renderer=pydoc.plaintext)
    init = text[text.index("__init__(self") :]
    init = init[: init.index("\n |  \n |  ", init.index(":param stratuslab_default_location"))]
    for name in inspect.signature(StratusLabNodeDriver.__init__).parameters:
        if name != "self":
            assert f":param {name}:" in init, name
    assert "api_version" not in text
    assert "region" not in init
    with pytest.raises(TypeError, match="api_version"):
        StratusLabNodeDriver(api_version="1")  # type: ignore[call-arg]
