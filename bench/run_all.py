"""Run every benchmark and rewrite docs/benchmarks.md (``make bench``; about an hour).

Each script owns one section of docs/benchmarks.md (bench/_report.py). Run on a quiet
machine: the numbers are wall times on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

#: (script, arguments) in the order they run
SCRIPTS = [
    ("ir_scale.py", ["--write"]),
    ("frontends_scores.py", []),
    ("mapping_quality.py", ["--write"]),
    ("compile_scale.py", ["--write"]),
    ("emulator_speed.py", ["--write"]),
    ("sanafe_compare.py", ["--write"]),
    ("lava_vs_emulator.py", ["--write"]),
    ("compile_vs_spynnaker.py", ["--sizes", "500", "2000", "5000", "--write"]),
]


def main() -> int:
    failed = []
    for script, args in SCRIPTS:
        path = HERE / script
        if not path.exists():
            print(f"-- {script}: missing, skipped")
            continue
        print(f"== {script} {' '.join(args)}", flush=True)
        rc = subprocess.call([PY, str(path), *args], cwd=HERE.parent)
        if rc:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
