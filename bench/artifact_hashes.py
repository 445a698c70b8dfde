"""SHA-256 of compiled artifacts for a fixed set of networks and targets.

Used to show that a refactoring changes no compiled byte:

    .venv/bin/python bench/artifact_hashes.py > before.txt   # on the old commit
    .venv/bin/python bench/artifact_hashes.py > after.txt    # on the new one
    diff before.txt after.txt

Each line: ``<network> <target> <file> <sha256>`` for every file the compiled artifact
holds (``save_compiled``), or ``<network> <target> ERROR <exception class>`` when the
network does not fit that target.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

try:  # the import root changed once; the script runs on either side of that change
    from nmcompiler import ir
except ImportError:  # pragma: no cover - the old layout
    import ir  # type: ignore[no-redef]

import nmcompiler
from nmcompiler.compiled import save_compiled

TARGETS = ("emulator", "loihi", "loihi2", "spinnaker", "spinnaker2", "speck2f")


def _ff(seed: int, sizes: tuple[int, ...], *, delay: int = 1, rec: bool = False,
        soft: bool = False) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network(f"ff{seed}")
    net.input("in", sizes[0])
    prev = "in"
    for i, n in enumerate(sizes[1:]):
        name = f"h{i}"
        reset = ir.Reset.SOFT if soft else ir.Reset.HARD
        model = ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0, reset=reset)
        net.population(name, n, model)
        w = rng.normal(0.0, 0.6, size=(n, sizes[i]))
        net.connect(prev, name, ir.Dense(weight=w), delay=delay)
        if rec:
            net.connect(name, name, ir.Dense(weight=rng.normal(0, 0.2, size=(n, n))), delay=1)
        prev = name
    net.output(prev)
    return net


def _conv(seed: int) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network(f"conv{seed}")
    net.input("in", shape=(2, 16, 16))
    net.population("c1", model=ir.IF(theta=1.0), shape=(4, 16, 16))
    net.connect("in", "c1", ir.Conv2d(weight=rng.normal(0, 0.5, size=(4, 2, 3, 3)),
                                      padding=(1, 1)), delay=1)
    net.population("p1", model=ir.IF(theta=1.0), shape=(4, 8, 8))
    net.connect("c1", "p1", ir.SumPool2d(kernel=(2, 2)), delay=1)
    net.population("fc", 10, ir.IF(theta=1.0))
    net.connect("p1", "fc", ir.Dense(weight=rng.normal(0, 0.3, size=(10, 256))), delay=1)
    net.output("fc")
    return net


def networks() -> dict[str, ir.Network]:
    return {
        "ff_small": _ff(0, (20, 30, 10)),
        "ff_deep": _ff(1, (64, 128, 64, 10), delay=2),
        "ff_rec": _ff(2, (32, 200, 20), rec=True),
        "ff_big": _ff(3, (300, 1500, 100)),
        "ff_zero_delay": _ff(4, (16, 40, 8), delay=0),
        "conv": _conv(5),
    }


def main() -> int:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks().items():
            for target in TARGETS:
                try:
                    cn = nmcompiler.compile(net, target, seed=0)
                except Exception as e:  # noqa: BLE001 - recorded, not hidden
                    lines.append(f"{name} {target} ERROR {type(e).__name__}")
                    continue
                out = Path(tmp) / f"{name}-{target}"
                save_compiled(cn, out)
                for f in sorted(p for p in out.rglob("*") if p.is_file()):
                    h = hashlib.sha256(f.read_bytes()).hexdigest()
                    lines.append(f"{name} {target} {f.relative_to(out)} {h}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
