"""Adds up the JUnit reports of every test tier into the one closing line CI reads:
`tests: N passed, N failed, N skipped`."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> None:
    passed = failed = skipped = 0
    for report in sorted(Path(sys.argv[1]).glob("*.xml")):
        root = ET.parse(report).getroot()
        for case in root.iter("testcase"):
            outcome = {child.tag for child in case}
            if outcome & {"failure", "error"}:
                failed += 1
            elif "skipped" in outcome:
                skipped += 1
            else:
                passed += 1
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
