"""Print a line per pytest JUnit XML report (``core: N passed, …``, named after the file), then the
line summing them: ``total: N passed, N failed, N skipped``.

``failed`` counts failures and errors; a report that is missing (a suite that crashed before
writing it) counts as one failure, so the sum never reads better than the run was.
"""

import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path


def counts(path: Path) -> tuple[int, int, int]:
    if not path.exists():
        return 0, 1, 0
    passed = failed = skipped = 0
    for suite in ElementTree.parse(path).getroot().iter("testsuite"):
        tests, skips = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        passed, failed, skipped = passed + tests - skips - bad, failed + bad, skipped + skips
    return passed, failed, skipped


def line(name: str, found: Sequence[int]) -> str:
    return f"{name}: {found[0]} passed, {found[1]} failed, {found[2]} skipped"


def main(paths: list[str]) -> None:
    total = [0, 0, 0]
    for path in map(Path, paths):
        found = counts(path)
        print(line(path.stem, found))
        total = [sum(pair) for pair in zip(total, found, strict=True)]
    print(line("total", total))


if __name__ == "__main__":
    main(sys.argv[1:])
