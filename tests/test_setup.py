"""tools/setup.sh never brings a mail server: its apt-get plan check, run against the real apt.

Every `apt-get install` in tools/setup.sh goes through one function that first simulates the
install (`apt-get -s`) and refuses when a package in the set provides mail-transport-agent or
when anything would be removed; `tools/setup.sh --plan PKG...` runs only that check. Postfix
and prometheus-postfix-exporter (which depends on postfix) are exactly what a careless
install would bring, so asking for them must be refused, while an ordinary package is not.
The end-to-end tests (tests/e2e) show the other half: Postfix and Exim run from the trees
setup unpacked under .cache/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-query") is None,
                                reason="not a Debian machine: no apt-get or dpkg-query")


def installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return out.stdout == "install ok installed"


def plan(*packages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "tools" / "setup.sh"), "--plan", *packages],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("package", ["postfix", "prometheus-postfix-exporter"])
def test_a_package_that_brings_postfix_is_refused(package: str) -> None:
    if installed("postfix"):
        pytest.skip("postfix is installed here: apt would install nothing new")
    result = plan(package)
    assert result.returncode == 1
    if any(installed(mta) for mta in ("exim4-daemon-light", "exim4-daemon-heavy", "opensmtpd", "sendmail-bin")):
        # installing postfix would replace the MTA that is there
        assert result.stderr.startswith(f"setup: refusing to install {package}: apt would remove "), result.stderr
    else:
        assert result.stderr == (f"setup: refusing to install {package}: it would bring a mail server "
                                 "(mail-transport-agent): postfix\n")
    assert result.stdout == ""


def test_exim_is_refused_too() -> None:
    if installed("exim4-daemon-light") or installed("postfix"):
        pytest.skip("a mail server is installed here")
    result = plan("exim4-daemon-light")
    assert result.returncode == 1
    assert result.stderr == ("setup: refusing to install exim4-daemon-light: it would bring a mail server "
                             "(mail-transport-agent): exim4-daemon-light\n")


def test_what_setup_installs_is_allowed() -> None:
    # The packages setup asks for on a fresh machine, and the libraries the unpacked servers need.
    result = plan("prometheus", "logrotate", "systemd-journal-remote", "mtail", "procps", "libdb5.3", "libicu72",
                  "libnsl2", "libsasl2-2", "libssl3", "libgnutls-dane0", "libidn12", "libpcre2-8-0")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("setup: would install:")
