"""Process setup before the pipeline starts: as many open files as the host allows.

The daemon holds one descriptor per followed file, per directory watch and per HTTP connection.
Linux starts a process with a soft limit of 1,024 open files whatever its hard limit is; a glob over
thousands of files, or a burst of scrapers, would hit it. Go exporters raise the soft limit to the
hard one at start, and so does this: the hard limit is the administrator's (systemd's LimitNOFILE,
ulimit -Hn), the soft one is only a default.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("ndr_exporter.fdlimit")


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as err:
        log.warning("could not raise the open files limit", extra={"soft": soft, "hard": hard, "error": str(err)})
        return soft
    log.debug("open files limit raised", extra={"from": soft, "to": hard})
    return hard
