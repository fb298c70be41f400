"""The configuration file as the driver sees it: the real reference file key by key, locations,
sizes (instance types), the default site, and every way a file can be wrong (exact exception type
and message, never the password).

The reference file is ``fixtures/config/stratuslab-user.cfg.ref`` (real, see its SOURCES.md).
Every other configuration text here is SYNTHETIC (written for these tests), including the copies
of the reference file whose endpoints are pointed at the local cloud.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from libcloud.compute.base import NodeLocation, NodeSize

from stratuslab_libcloud import (
    LocalCloud,
    StratusLabAuthError,
    StratusLabConfigError,
    StratusLabNodeDriver,
    StratusLabTimeoutError,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

REFERENCE = Path(__file__).parent / "fixtures" / "config" / "stratuslab-user.cfg.ref"

# A password that must never show up in a message or a repr (synthetic).
PASSWORD = "s3cr3t-Pa55-7f1c"

# The seven built-in instance types (spec §3.3) as
# (id, name, ram MiB, disk GiB = swap rounded up, bandwidth, price, extra).
DEFAULT_SIZES = [
    ("t1.micro", "t1.micro", 512, 1, None, None, {"cpu": 1, "swap_mib": 512}),
    ("m1.small", "m1.small", 1536, 2, None, None, {"cpu": 1, "swap_mib": 1536}),
    ("m1.medium", "m1.medium", 3072, 3, None, None, {"cpu": 1, "swap_mib": 3072}),
    ("m1.large", "m1.large", 6144, 6, None, None, {"cpu": 2, "swap_mib": 6144}),
    ("m1.xlarge", "m1.xlarge", 8192, 8, None, None, {"cpu": 4, "swap_mib": 8192}),
    ("c1.medium", "c1.medium", 1536, 2, None, None, {"cpu": 2, "swap_mib": 1536}),
    ("c1.xlarge", "c1.xlarge", 6144, 6, None, None, {"cpu": 4, "swap_mib": 6144}),
]


def sizes_of(driver: StratusLabNodeDriver) -> list[tuple[Any, ...]]:
    sizes = driver.list_sizes()
    assert all(isinstance(s, NodeSize) and s.driver is driver for s in sizes)
    return [(s.id, s.name, s.ram, s.disk, s.bandwidth, s.price, s.extra) for s in sizes]


def locations_of(driver: StratusLabNodeDriver) -> list[tuple[str, str, str]]:
    locations = driver.list_locations()
    assert all(isinstance(loc, NodeLocation) and loc.driver is driver for loc in locations)
    return [(loc.id, loc.name, loc.country) for loc in locations]


def write(tmp_path: Path, text: str, name: str = "stratuslab-user.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def reference_for(cloud: LocalCloud, site: str = "lal") -> str:
    """The reference file with its example endpoints pointed at a local cloud site and the
    local user's credentials filled in (SYNTHETIC copy; nothing else changed)."""
    text = REFERENCE.read_text(encoding="utf-8")
    assert text.count("https://cloud.example.com") == 2
    text = text.replace("https://cloud.example.com", f"{cloud.base_url}/{site}")
    text = text.replace("username = username", f"username = {DEFAULT_USER}")
    return text.replace("password = password", f"password = {DEFAULT_PASSWORD}")


def uncomment_every_key(text: str, home: Path) -> str:
    """Enables every commented-out ``#key = value`` line of the reference file (the documented
    optional keys), with ``<home>`` replaced by a real directory (SYNTHETIC)."""
    text = re.sub(r"^# ?([a-z0-9_.]+ ?= ?\S.*)$", r"\1", text, flags=re.MULTILINE)
    return text.replace("<home>", str(home))


# ---------------------------------------------------------------------------- the reference file


def private_reference(tmp_path: Path) -> Path:
    """A private copy of the reference file: git does not keep file modes, so the checked-out
    file may be group/other-readable, which the driver rightly warns about."""
    copy = tmp_path / REFERENCE.name
    shutil.copyfile(REFERENCE, copy)
    copy.chmod(0o600)
    return copy


def test_reference_file_as_seen_through_the_driver(tmp_path: Path) -> None:
    driver = StratusLabNodeDriver(ex_config_file=private_reference(tmp_path))

    # [default] selected_section = sl-cloud: the only site, and [default] is not listed.
    assert locations_of(driver) == [("sl-cloud", "StratusLab Cloud", "Earth")]
    assert driver.ex_default_location.id == "sl-cloud"
    # name = "StratusLab Cloud" (quotes stripped), country = "Earth"; endpoint and pdisk_endpoint
    # in their 2015 URL form (/pswd/ inserted); marketplace_endpoint is commented out: default;
    # username = username; endpoint_timeout = 5 from [default]. No password anywhere.
    assert driver.list_locations()[0].extra == {
        "compute_endpoint": "https://cloud.example.com/one-proxy/pswd/xmlrpc",
        "pdisk_endpoint": "https://cloud.example.com/pdisk/pswd",
        "marketplace_endpoint": "https://marketplace.stratuslab.eu",
        "username": "username",
        "site_type": "stratuslab",
        "endpoint_timeout": 5.0,
    }
    assert driver.key == "username"
    assert driver.secret is None
    assert repr(driver) == "<StratusLabNodeDriver sites=['sl-cloud'] user='username'>"
    # [instance_types] is present but its only entry is commented out: the built-in types.
    assert sizes_of(driver) == DEFAULT_SIZES


def test_reference_file_credentials_and_endpoints_reach_the_cloud(cloud: LocalCloud) -> None:
    path = Path(cloud.config_file or "").with_name("reference.cfg")
    path.write_text(reference_for(cloud), encoding="utf-8")
    driver = StratusLabNodeDriver(ex_config_file=path)
    assert driver.list_nodes(ex_strict=True) == []  # endpoint, username, password
    assert driver.list_volumes(ex_strict=True) == []  # pdisk_endpoint
    assert cloud.request_count("lal", "compute", "*") >= 1
    assert cloud.request_count("lal", "pdisk", "*") >= 1
    assert cloud.request_count("grnet", "any", "*") == 0

    wrong = reference_for(cloud).replace(f"password = {DEFAULT_PASSWORD}", f"password = {PASSWORD}")
    path.write_text(wrong, encoding="utf-8")
    driver = StratusLabNodeDriver(ex_config_file=path)
    with pytest.raises(StratusLabAuthError) as info:
        driver.list_nodes(ex_strict=True)
    assert info.value.site == "sl-cloud"
    assert PASSWORD not in str(info.value)


def test_reference_file_endpoint_timeout_is_the_request_timeout(tmp_path: Path) -> None:
    with LocalCloud(sites=["lal"], latency=0.5) as slow:
        text = reference_for(slow).replace("endpoint_timeout = 5", "endpoint_timeout = 0.05")
        path = write(tmp_path, text)
        with pytest.raises(StratusLabTimeoutError) as info:
            StratusLabNodeDriver(ex_config_file=path).list_nodes(ex_strict=True)
        assert info.value.site == "sl-cloud"
        # The constructor's timeout beats the file's endpoint_timeout.
        driver = StratusLabNodeDriver(ex_config_file=path, timeout=30)
        assert driver.list_locations()[0].extra["endpoint_timeout"] == 0.05
        assert driver.list_nodes(ex_strict=True) == []


def test_reference_file_with_every_optional_key_enabled(
    cloud: LocalCloud, tmp_path: Path, ssh_public_key: str
) -> None:
    """The commented-out keys of the reference file, enabled: marketplace_endpoint,
    default_context_method, pem_key/pem_certificate (password still wins), user_public_key_file,
    p12_certificate/p12_password (accepted, unused), default_instance_type (accepted, unused, as
    in the CLI) and the example instance type ``my.type = 4, 2048, 2048``."""
    home = tmp_path / "user-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa.pub").write_text(ssh_public_key + "\n", encoding="utf-8")
    text = uncomment_every_key(reference_for(cloud), home).replace(
        "https://marketplace.stratuslab.eu", f"{cloud.base_url}/marketplace"
    )
    for key in (
        "marketplace_endpoint",
        "default_context_method = cloud-init",
        "pem_key",
        "pem_certificate",
        "user_public_key_file",
        "p12_certificate",
        "p12_password",
        "default_instance_type=my.type",
        "my.type = 4, 2048, 2048",
    ):
        assert re.search(rf"^{re.escape(key)}", text, flags=re.MULTILINE), key
    driver = StratusLabNodeDriver(ex_config_file=write(tmp_path, text))

    assert sizes_of(driver) == [
        *DEFAULT_SIZES,
        ("my.type", "my.type", 2048, 2, None, None, {"cpu": 4, "swap_mib": 2048}),
    ]
    assert driver.list_locations()[0].extra["marketplace_endpoint"] == (
        f"{cloud.base_url}/marketplace"
    )
    images = driver.list_images()  # from marketplace_endpoint
    assert images
    my_type = next(s for s in driver.list_sizes() if s.id == "my.type")
    node = driver.create_node(name="ref", size=my_type, image=images[0])  # no auth given
    template = cloud.vm_template("lal", node.extra["vm_id"]) or ""
    assert "CONTEXT_METHOD" in template and "cloud-init" in template  # default_context_method
    assert ssh_public_key.split()[1] in template  # user_public_key_file
    assert node.extra["cpu"] == 4.0 and node.extra["memory_mib"] == 2048  # my.type


# ---------------------------------------------------------------------------- locations

SITES = f"""\
[default]
selected_section = quoted
username = alice
password = {PASSWORD}
endpoint = cloud.example.org

[quoted]
name = "Quoted Name"
country = "FR"

[single]
name = 'Single Quotes'
country = 'CH'

[bare]

[empty]
name = ""
country = ''

[inner]
name = a "b" c
country = "unbalanced'

[instance_types]
tiny = 1, 256, 0
"""


def test_locations_id_name_country(tmp_path: Path) -> None:
    driver = StratusLabNodeDriver(ex_config_file=write(tmp_path, SITES))
    assert locations_of(driver) == [
        ("quoted", "Quoted Name", "FR"),
        ("single", "Single Quotes", "CH"),
        ("bare", "bare", "unknown"),
        ("empty", "empty", "unknown"),
        ("inner", 'a "b" c', "\"unbalanced'"),
    ]
    assert driver.ex_default_location.id == "quoted"


BASIC = f"""\
[default]
username = alice
password = {PASSWORD}
endpoint = default.example.org

[a]
endpoint = a.example.org

[b]
endpoint = b.example.org
"""


def test_default_section_is_a_location_only_when_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, BASIC)
    driver = StratusLabNodeDriver(ex_config_file=path)
    assert [loc.id for loc in driver.list_locations()] == ["default", "a", "b"]
    assert driver.ex_default_location.id == "default"
    assert driver.ex_default_location.name == "default"
    assert driver.ex_default_location.extra["compute_endpoint"] == (
        "https://default.example.org:2634/pswd/xmlrpc"
    )

    driver = StratusLabNodeDriver(ex_config_file=path, ex_default_location="b")
    assert [loc.id for loc in driver.list_locations()] == ["a", "b"]
    path = write(tmp_path, BASIC.replace("[default]\n", "[default]\nselected_section = a\n"))
    assert [loc.id for loc in StratusLabNodeDriver(ex_config_file=path).list_locations()] == [
        "a",
        "b",
    ]
    monkeypatch.setenv("STRATUSLAB_USER_CONFIG_SECTION", "default")
    assert [loc.id for loc in StratusLabNodeDriver(ex_config_file=path).list_locations()] == [
        "default",
        "a",
        "b",
    ]


def test_default_site_argument_then_environment_then_selected_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, BASIC.replace("[default]\n", "[default]\nselected_section = a\n"))

    def default_of(**kwargs: Any) -> str:
        return str(StratusLabNodeDriver(ex_config_file=path, **kwargs).ex_default_location.id)

    assert default_of() == "a"
    assert default_of(ex_default_location="b") == "b"
    assert default_of(stratuslab_default_location="b") == "b"
    monkeypatch.setenv("STRATUSLAB_USER_CONFIG_SECTION", "b")
    assert default_of() == "b"
    monkeypatch.setenv("STRATUSLAB_USER_CONFIG_SECTION", "default")
    assert default_of(ex_default_location="a") == "a"


def test_unknown_location_lists_the_known_sites(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC.replace("[default]\n", "[default]\nselected_section = b\n"))
    driver = StratusLabNodeDriver(ex_config_file=path)
    with pytest.raises(ValueError, match=r"^unknown location 'c' \(known sites: a, b\)$"):
        driver.list_sizes(location=NodeLocation("c", "c", "unknown", driver))
    assert driver.ex_default_location is driver.list_locations()[1]


def test_per_site_settings_inherit_default_and_override_it(tmp_path: Path) -> None:
    text = BASIC.replace("[a]\n", "[a]\nusername = bob\nendpoint_timeout = 2.5\n").replace(
        "[default]\n", "[default]\nendpoint_timeout = 7\nselected_section = b\n"
    )
    driver = StratusLabNodeDriver(ex_config_file=write(tmp_path, text))
    extras = {loc.id: loc.extra for loc in driver.list_locations()}
    assert extras["a"] == {
        "compute_endpoint": "https://a.example.org:2634/pswd/xmlrpc",
        "pdisk_endpoint": "https://a.example.org:8445/pswd",
        "marketplace_endpoint": "https://marketplace.stratuslab.eu",
        "username": "bob",
        "site_type": "stratuslab",
        "endpoint_timeout": 2.5,
    }
    assert extras["b"] == {
        "compute_endpoint": "https://b.example.org:2634/pswd/xmlrpc",
        "pdisk_endpoint": "https://b.example.org:8445/pswd",
        "marketplace_endpoint": "https://marketplace.stratuslab.eu",
        "username": "alice",
        "site_type": "stratuslab",
        "endpoint_timeout": 7.0,
    }
    assert driver.key == "alice"


# ---------------------------------------------------------------------------- sizes


def test_instance_types_override_by_name_and_add(tmp_path: Path) -> None:
    text = BASIC + (
        "[instance_types]\n"
        "m1.small = 2, 1024, 0\n"
        "MY.Type = (8, 16384, 1000)\n"
        "exact = 1 512 1024\n"
        "over = cpu=1 ram=512 swap=1025\n"
    )
    driver = StratusLabNodeDriver(ex_config_file=write(tmp_path, text))
    expected = list(DEFAULT_SIZES)
    expected[1] = ("m1.small", "m1.small", 1024, 0, None, None, {"cpu": 2, "swap_mib": 0})
    expected += [
        ("my.type", "my.type", 16384, 1, None, None, {"cpu": 8, "swap_mib": 1000}),
        ("exact", "exact", 512, 1, None, None, {"cpu": 1, "swap_mib": 1024}),
        ("over", "over", 512, 2, None, None, {"cpu": 1, "swap_mib": 1025}),
    ]
    assert sizes_of(driver) == expected
    # Sizes are the same at every site.
    assert sizes_of(driver) == [
        (s.id, s.name, s.ram, s.disk, s.bandwidth, s.price, s.extra)
        for s in driver.list_sizes(location=driver.list_locations()[1])
    ]


# ---------------------------------------------------------------------------- bad files

GOOD_DEFAULT = f"[default]\nusername = alice\npassword = {PASSWORD}\nendpoint = h.example.org\n"

# (test id, file text or bytes, constructor arguments, message with {path} for the file's path)
BAD_FILES: list[tuple[str, str | bytes, dict[str, Any], str]] = [
    (
        "missing [default]",
        f"[site]\nusername = alice\npassword = {PASSWORD}\n",
        {},
        "{path}: the mandatory [default] section is missing",
    ),
    (
        "unknown selected_section",
        GOOD_DEFAULT + "selected_section = nowhere\n[a]\n[b]\n",
        {},
        "{path}:5: default site 'nowhere' (from selected_section in [default]) is not defined; "
        "known sites: default, a, b",
    ),
    (
        "unknown default location argument",
        GOOD_DEFAULT + "[a]\n[instance_types]\n",
        {"ex_default_location": "lal"},
        "{path}: default site 'lal' (from the default site argument) is not defined; "
        "known sites: default, a",
    ),
    (
        "instance type with two numbers",
        GOOD_DEFAULT + "[instance_types]\nmy.type = 4, 2048\n",
        {},
        "{path}:6: instance type 'my.type': expected three integers "
        "'CPU, RAM MiB, swap MiB', found 2",
    ),
    (
        "instance type with four numbers",
        GOOD_DEFAULT + "[instance_types]\nmy.type = 4, 2048, 2048, 1\n",
        {},
        "{path}:6: instance type 'my.type': expected three integers "
        "'CPU, RAM MiB, swap MiB', found 4",
    ),
    (
        "zero CPU",
        GOOD_DEFAULT + "[instance_types]\nmy.type = 0, 2048, 2048\n",
        {},
        "{path}:6: instance type 'my.type': CPU count must be at least 1",
    ),
    (
        "zero RAM",
        GOOD_DEFAULT + "[instance_types]\nmy.type = 1, 0, 2048\n",
        {},
        "{path}:6: instance type 'my.type': RAM must be at least 1 MiB",
    ),
    (
        "invalid UTF-8",
        (GOOD_DEFAULT + "[a]\nname = caf\xe9\n").encode("latin-1"),
        {},
        # the \xe9 is byte 14 of "[a]\nname = caf\xe9"
        "{path}:6: invalid UTF-8 at byte offset " + str(len(GOOD_DEFAULT) + 14),
    ),
    (
        "duplicate section",
        GOOD_DEFAULT + "[a]\n[b]\n[a]\n",
        {},
        "{path}:7: section [a] already defined at line 5",
    ),
    (
        "duplicate option",
        GOOD_DEFAULT + "[a]\nname = x\nname = y\n",
        {},
        "{path}:7: option 'name' in section [a] already set at line 6",
    ),
    (
        "line without =",
        GOOD_DEFAULT + "[a]\njust some words\n",
        {},
        "{path}:6: expected 'key = value', 'key: value' or '[section]': just some words",
    ),
    (
        "line without = that mentions the password",
        GOOD_DEFAULT + f"[a]\nmy password is {PASSWORD}\n",
        {},
        "{path}:6: expected 'key = value', 'key: value' or '[section]': "
        "<line hidden: it mentions a password>",
    ),
    (
        "option before any section",
        "endpoint = h.example.org\n" + GOOD_DEFAULT,
        {},
        "{path}:1: option outside any section: add a [section] header before it",
    ),
    (
        "ConfigParser's [DEFAULT]",
        GOOD_DEFAULT + "[DEFAULT]\nname = x\n",
        {},
        "{path}:5: section [DEFAULT] is not supported (ConfigParser would copy its options into "
        "every section); the StratusLab global section is [default], in lower case",
    ),
    (
        "endpoint_timeout not a number",
        GOOD_DEFAULT + "endpoint_timeout = soon\n[a]\n",
        {},
        "{path}:5: site 'default', option 'endpoint_timeout': "
        "'soon' is not a positive number of seconds",
    ),
    (
        "unusable endpoint",
        GOOD_DEFAULT.replace("h.example.org", "ht!tp://x"),
        {},
        "site 'default', configure at ht!tp://x: invalid compute endpoint ht!tp://x: "
        "expected a host name or an http(s) URL",
    ),
]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_bad_file(tmp_path: Path, text: str | bytes, kwargs: dict[str, Any], message: str) -> None:
    path = tmp_path / "stratuslab-user.cfg"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=str(path), **kwargs)
    assert type(info.value) is StratusLabConfigError
    assert isinstance(info.value, ValueError)
    assert str(info.value) == message.format(path=path)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.cfg"
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=path)
    assert str(info.value) == f"configuration file {path} does not exist"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=tmp_path)
    assert str(info.value) == f"{tmp_path} is a directory, not a configuration file"


def test_unreadable_file(tmp_path: Path) -> None:
    # Tests run as root, for whom chmod 000 changes nothing: a path through a regular file is
    # unreadable for everyone (ENOTDIR).
    (tmp_path / "plain").write_text("x", encoding="utf-8")
    path = tmp_path / "plain" / "stratuslab-user.cfg"
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=path)
    assert str(info.value) == (
        f"cannot read configuration file {path}: Not a directory (os error 20)"
    )


def test_no_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, "[default]\nendpoint = h.example.org\nusername = alice\n")
    home = os.environ["HOME"]
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=path)
    assert str(info.value) == (
        "settings: site 'default', option 'password': missing credentials: no password, and no "
        f"readable PEM certificate ({home}/.globus/usercert.pem) with its key (pem_key)"
    )
    assert "userkey" not in str(info.value)  # a private-key path is never shown


def test_the_password_is_never_shown(cloud: LocalCloud, tmp_path: Path) -> None:
    text = SITES.replace("cloud.example.org", f"{cloud.base_url}/lal/one-proxy/xmlrpc")
    driver = StratusLabNodeDriver(ex_config_file=write(tmp_path, text))
    shown = [repr(driver), str(driver), repr(vars(driver))]
    for loc in driver.list_locations():
        shown += [repr(loc), str(loc), repr(vars(loc)), repr(loc.extra)]
    for size in driver.list_sizes():
        shown += [repr(size), repr(vars(size))]
    with pytest.raises(StratusLabAuthError) as info:  # alice's password here is PASSWORD
        driver.list_nodes(ex_strict=True)
    shown += [str(info.value), repr(info.value), repr(vars(info.value))]
    for text in shown:
        assert PASSWORD not in text
