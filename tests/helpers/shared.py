"""Where the project's shared/ folder is: the public log corpus and the seed document.

shared/ sits beside the repository (the developers' machines have it at /work/shared; CI
lays a copy beside its fresh clone). NDR_SHARED_DIR names another place.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _shared_dir() -> Path:
    if os.environ.get("NDR_SHARED_DIR"):
        return Path(os.environ["NDR_SHARED_DIR"])
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


SHARED = _shared_dir()
CORPUS = SHARED / "eval" / "public-corpus"
SEEDS = SHARED / "seeds"
