"""The main job runs end to end (a smaller version of make demo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_demo_quick_prints_the_comparison_table():
    out = subprocess.run([sys.executable, "-m", "nmcompiler.examples.demo", "--quick"], cwd=REPO,
                         capture_output=True, text=True, timeout=600,
                         env={"PATH": "", "COLUMNS": "250", "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "reference simulator" in text and "every example on every target" in text
    for target in ("emulator", "loihi2", "speck2f", "spinnaker"):
        assert target in text
    assert "digits MLP" in text and "LSM reservoir" in text
    # the hard-reset converted digits network deployed to loihi (Lava) and spinnaker
    # (PyNN on NEST), each next to the emulator (or the reason a toolchain is missing)
    assert "converted digits MLP (hard reset) deployed" in text
    deploy = text[text.index("converted digits MLP (hard reset) deployed"):]
    for target, backend in (("loihi", "lava"), ("spinnaker", "pynn")):
        row = next(line for line in deploy.splitlines() if f" {target} " in line)
        assert backend in row and "%" in row
        assert "failed" not in row
