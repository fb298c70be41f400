"""Rebuilds fuzz/corpus/ from the real fixtures under tests/fixtures/ (run from the repository
root: ``python fuzz/make_corpus.py``). Every seed is a real document, or a real value encoded the
way the wire carries it (see fuzz/corpus/SOURCES.md)."""

from __future__ import annotations

import hashlib
import json
import shutil
import xmlrpc.client
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"


def put(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def xmlrpc_seeds() -> None:
    """Responses and calls of the real oned 3.8.5 capture, encoded by Python's xmlrpc.client."""
    log = json.loads((FIXTURES / "opennebula-3.8.5-calllog" / "call-log.json").read_text())
    seen: set[str] = set()
    for entry in log:
        response = entry["response"]
        if isinstance(response, dict) and "faultCode" in response:
            body = xmlrpc.client.dumps(
                xmlrpc.client.Fault(response["faultCode"], response["faultString"]),
                methodresponse=True,
            )
        else:
            body = xmlrpc.client.dumps((response,), methodresponse=True)
        call = xmlrpc.client.dumps(tuple(entry["params"]), entry["method"])
        for target, data in (("xmlrpc_response", body), ("xmlrpc_call", call)):
            digest = hashlib.sha1(data.encode()).hexdigest()[:12]
            if digest in seen:
                continue
            seen.add(digest)
            put(target, f"{entry['method']}-{digest}.xml", data.encode())


def copy(target: str, folder: Path, pattern: str) -> None:
    for path in sorted(folder.glob(pattern)):
        put(target, path.name, path.read_bytes())


def main() -> None:
    regressions = {p.relative_to(CORPUS): p.read_bytes() for p in CORPUS.glob("*/regression-*")}
    if CORPUS.exists():
        for folder in CORPUS.iterdir():
            if folder.is_dir():
                shutil.rmtree(folder)
    xmlrpc_seeds()
    one = FIXTURES / "opennebula-3.8.5"
    copy("vm", one, "vm-info*.xml")
    copy("vm", one, "vmpool-info*.xml")
    copy("vm", FIXTURES / "stratuslab" / "compute", "*.xml")
    mp = FIXTURES / "marketplace"
    for sub in ("client-tests", "server-tests", "metadata-lib", "client-resources"):
        copy("rdf", mp / sub, "*.xml")
    copy("pdisk", FIXTURES / "pdisk" / "golden", "*")
    copy("config", FIXTURES / "config", "*.cfg.ref")
    for name, text in SYNTHETIC_CONFIGS.items():
        put("config", name, text.encode())
    for relative, data in regressions.items():  # inputs the fuzzer found, kept
        put(relative.parent.name, relative.name, data)


# Synthetic (not captured anywhere): the shapes the real reference file lacks.
SYNTHETIC_CONFIGS = {
    "synthetic-localcloud.cfg": (
        "[default]\nselected_section = lal\nusername = alice\npassword = alice-local-password\n\n"
        "[lal]\nendpoint = http://127.0.0.1:8080/lal/one-proxy/xmlrpc\n"
        "pdisk_endpoint = http://127.0.0.1:8080/lal/pdisk\n"
        "marketplace_endpoint = http://127.0.0.1:8080/marketplace\nname = lal\ncountry = FR\n"
    ),
    "synthetic-features.cfg": (
        "[default]\nselected_section = %(site)s\nsite = grnet\nusername = bob\n"
        "password = p%%w\n  continued\nendpoint_timeout = 12.5\n; comment\n\n"
        "[grnet]\nendpoint = https://cloud.grnet.example:2634\npem_certificate = ~/.globus/c.pem\n"
        "pem_key = ~/.globus/k.pem\n\n[instance_types]\nm1.huge = (16, 32768, 4096)\n"
        "t1.micro: (1, 128, 0)\n"
    ),
}


if __name__ == "__main__":
    main()
