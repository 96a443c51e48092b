"""Log files and chunks for the differential tests of the fast paths (compiled scanner, fast counts):
every test log and the public corpus, cut into chunks at line ends as the sources cut them."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.shared import CORPUS, REPO


def line_chunks(data: bytes, size: int) -> list[bytes]:
    """data cut into chunks of about size bytes, each ending at a line end (as sources cut)."""
    chunks = []
    while data:
        cut = data.rfind(b"\n", 0, size) + 1 or len(data)
        chunks.append(data[:cut])
        data = data[cut:]
    return chunks


def log_files() -> list[Path]:
    """Every log under tests/testdata (not the golden files or notes) and every public corpus file."""
    files = [p for p in sorted((REPO / "tests" / "testdata").rglob("*"))
             if p.is_file() and p.suffix not in (".golden", ".md", ".json", ".yml", ".yaml")]
    if CORPUS.is_dir():
        files += [p for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.suffix not in (".md", ".json")]
    return files
