"""A rotated copy is known to be gzip by its magic bytes, not by its name (one compression rule).

Through the real process: the exporter is killed, more lines are written, and the log is then
rotated to a gzip copy whose name has no ".gz" (logrotate's `compressext` can make any name).
On restart the exporter finds the copy by the fingerprint of its content, finishes it from
the checkpointed offset and reads the new file: every line counted once. Before issue 12 the
daemon took only names ending in ".gz" for gzip and lost the lines written while it was down.
"""

from __future__ import annotations

import gzip
import signal
from pathlib import Path

from tests.helpers.follow import Lines, append, counter, follow_args, settle, status_total, wait_status


def test_a_gzip_copy_without_gz_in_its_name_is_finished(tmp_path: Path, exporter_factory) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    lines = Lines()
    append(log, lines.block(0, 10))
    state = tmp_path / "state.json"
    args = follow_args(log, state, "--start-at", "beginning")
    exp = exporter_factory(args)
    wait_status(exp, 10)
    exp.stop(signal.SIGKILL)

    append(log, lines.block(10, 6))                      # written while the exporter is down
    (logs / "mail.log.1").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    append(log, lines.block(16, 4))                      # the new file

    exp = exporter_factory(args)
    samples = wait_status(exp, 20)
    assert counter(samples, "ndr_exporter_rotations_total") == 1
    assert counter(samples, "ndr_exporter_lines_total", result="matched") == 20
    assert status_total(settle(exp, 1.0)) == 20
