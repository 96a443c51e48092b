"""The registries: formats, syslog programs and source kinds are each declared once, in their
own module, and a module that cannot be loaded stops the start, naming it.

The last tests run the real exporter on a copy of the package with one broken module added:
before issue 12 an import guard turned a broken detector into "syslog" without a word.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.parsers import FORMATS, make_parser, registry
from exporter.sources import kinds

ROOT = Path(__file__).resolve().parents[1]


def test_every_format_is_made_by_its_own_module() -> None:
    assert FORMATS == ("syslog", "exim", "exchange_tracking", "exchange_protocol", "iis_smtp", "exchange_trace")
    for name, fmt in registry.formats().items():
        assert make_parser(name).format == name
        assert fmt.module.startswith("exporter.parsers.")
    assert registry.fallback_format() == "syslog"


def test_every_program_is_claimed_by_one_message_parser() -> None:
    programs = registry.programs()
    assert programs["postfix"] == "exporter.parsers.postfix"
    assert programs["exim4"] == "exporter.parsers.exim"
    assert programs["smtpd"] == "exporter.parsers.opensmtpd"
    assert len(programs) == sum(len(m.PROGRAMS) for m in registry.message_parsers())


def test_source_kinds() -> None:
    assert sorted(kinds.kinds()) == ["file", "journald", "stdin"]


def broken_copy(tmp_path: Path, where: str, body: str) -> Path:
    """A copy of the exporter package with one more module, at exporter/<where>."""
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "exporter", copy / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "exporter" / where).write_text(body)
    return copy


@pytest.mark.parametrize("where,module", [
    ("parsers/broken_detector.py", "exporter.parsers.broken_detector"),
    ("sources/broken_source.py", "exporter.sources.broken_source"),
])
def test_a_module_that_fails_to_import_fails_the_start_naming_it(tmp_path: Path, where: str, module: str) -> None:
    tree = broken_copy(tmp_path, where, "import no_such_module_anywhere\n")
    log = tmp_path / "mail.log"
    log.write_text("")
    out = subprocess.run([sys.executable, "-c", "import sys; from exporter.cli import main; sys.exit(main())",
                          "--source.path", str(log), "--web.listen-address", "127.0.0.1:0"],
                         cwd=tmp_path, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"cannot load {'parser' if 'parsers' in where else 'source'} module {module}: " \
           "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in out.stderr


def test_every_source_config_can_name_is_a_registered_kind() -> None:
    """config.py spells what each kind reads (path, journald, stdin); each gives a kind that a
    module of exporter/sources/ declares, and every declared kind can be configured."""
    from exporter.config import source_from_dict

    made = {source_from_dict(item, "sources[0]").kind
            for item in ({"name": "a", "path": "/var/log/mail.log"}, {"name": "b", "journald": True},
                         {"name": "c", "stdin": True})}
    assert made == set(kinds.kinds())
