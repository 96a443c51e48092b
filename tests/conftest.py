"""Shared pytest fixtures: the real exporter process, a real Prometheus, the public log corpus.

The helpers live in tests/helpers/ (exporter_process.py, prometheus.py) and can be imported
directly as `tests.helpers...`; these fixtures start them and make sure they are stopped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.helpers.exporter_process import ExporterProcess  # noqa: E402
from tests.helpers.prometheus import PrometheusServer  # noqa: E402

from tests.helpers.shared import CORPUS  # noqa: E402  (shared/ beside the repository)


@pytest.fixture(autouse=True)
def fresh_parser_state() -> None:
    """Each test starts with no parser memory: Exim's last rejection and Courier's pending
    lines live in their modules (docs/ARCHITECTURE.md), so one test's lines must not reach
    into the next."""
    from tests.helpers.parser_state import forget_parser_state

    forget_parser_state()


@pytest.fixture
def corpus() -> Path:
    """The public log corpus (real lines written by real mail servers); see its SOURCES.md."""
    if not CORPUS.is_dir():
        pytest.skip(f"public corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def exporter_factory() -> Iterator[Callable[..., ExporterProcess]]:
    """Start the real exporter: exporter_factory(args, env=None, **kw) -> a started ExporterProcess.

    Every process started through it is killed at teardown if the test left it running.
    """
    started: list[ExporterProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None, **kw: object) -> ExporterProcess:
        proc = ExporterProcess(args, env=env, **kw)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.__exit__(None, None, None)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start a real Prometheus: prometheus_factory(targets, **kw) -> a started PrometheusServer."""
    started: list[PrometheusServer] = []

    def start(targets: list[str], **kw: object) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus{len(started)}", targets, **kw)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway PKI made with `cryptography`: a CA, a server certificate for 127.0.0.1/localhost,
    a client certificate from the same CA, and a client certificate from another ("rogue") CA.

    Keys: ca, server_cert, server_key, client_cert, client_key, rogue_cert, rogue_key (PEM files).
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    out = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    def make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cert, key

    def make_leaf(cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier,
                  ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca[0].subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()),
                               critical=False)
                .sign(ca[1], hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM), key

    ca = make_ca("ndr-exporter test CA")
    rogue = make_ca("some other CA")
    files = {"ca": out / "ca.pem"}
    files["ca"].write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    leaves = {
        "server": make_leaf("127.0.0.1", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                          x509.DNSName("localhost")], ExtendedKeyUsageOID.SERVER_AUTH, ca),
        "client": make_leaf("prometheus", [x509.DNSName("prometheus.example")],
                            ExtendedKeyUsageOID.CLIENT_AUTH, ca),
        "rogue": make_leaf("prometheus", [x509.DNSName("prometheus.example")],
                           ExtendedKeyUsageOID.CLIENT_AUTH, rogue),
    }
    for label, (cert_pem, key) in leaves.items():
        files[f"{label}_cert"] = out / f"{label}.pem"
        files[f"{label}_cert"].write_bytes(cert_pem)
        files[f"{label}_key"] = out / f"{label}-key.pem"
        write_key(key, files[f"{label}_key"])
    return files


@pytest.fixture
def utc_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in UTC: syslog and Exim stamps carry no zone and are read as local time."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
