"""Print one line summing pytest JUnit XML reports: ``total: N passed, N failed, N skipped``.

``failed`` counts failures and errors; a report that is missing (a suite that crashed before
writing it) counts as one failure, so the sum never reads better than the run was.
"""

import sys
import xml.etree.ElementTree as ElementTree
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


def main(paths: list[str]) -> None:
    total = [0, 0, 0]
    for path in paths:
        for i, value in enumerate(counts(Path(path))):
            total[i] += value
    print(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped")


if __name__ == "__main__":
    main(sys.argv[1:])
