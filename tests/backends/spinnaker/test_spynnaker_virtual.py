"""sPyNNaker accepts the PyNN backend's network and our placement (virtual SpiNN-5 board).

Runs the written ``run_pynn.py`` in the sPyNNaker environment (``make spynnaker-venv``,
``.venv-spynnaker``) with ``--virtual-board 5``: the config goes into a temporary
``XDG_CONFIG_HOME`` and the reports into a temporary folder (never the home folder);
sPyNNaker partitions, places, routes and compresses, and executes nothing
(docs/spinnaker_backend.md).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import nmcompiler
from nmcompiler.backends.spinnaker import PyNNBackend
from nmcompiler.ir import IF, LIF, Dense, Network, Sparse

ROOT = Path(__file__).resolve().parents[3]
SPYNNAKER_PY = Path(os.environ.get("NMC_SPYNNAKER_PYTHON",
                                   ROOT / ".venv-spynnaker" / "bin" / "python"))


@pytest.fixture(scope="module")
def spynnaker_py():
    if not SPYNNAKER_PY.exists():
        pytest.skip(f"no sPyNNaker environment at {SPYNNAKER_PY} (make spynnaker-venv)")
    r = subprocess.run([str(SPYNNAKER_PY), "-c", "import spynnaker, pyNN; print('ok')"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip("sPyNNaker does not import: " + (r.stderr.strip().splitlines() or
                                                     ["?"])[-1])
    return SPYNNAKER_PY


def _network() -> Network:
    rng = np.random.default_rng(4)
    net = Network("spynn")
    net.input("x", 16)
    net.population("a", 600, LIF(alpha_u=0.6, lam=0.9, theta=2.0, bias=0.05, refractory=2))
    net.population("b", 300, IF(theta=4.0))
    mask = rng.random((300, 600)) < 0.02
    post, pre = np.nonzero(mask)
    net.connect("x", "a", Dense(weight=rng.normal(size=(600, 16))), delay=1, name="x->a")
    net.connect("a", "b", Sparse.from_coo(pre=pre, post=post, weight=rng.normal(size=pre.size),
                                          n_pre=600, n_post=300,
                                          delays=rng.integers(0, 3, size=pre.size)),
                delay=2, name="a->b")
    net.connect("b", "a", Dense(weight=rng.normal(size=(600, 300)) * (rng.random((600, 300))
                                                                      < 0.01)),
                delay=3, name="b->a")
    net.output("b")
    return net


def test_spynnaker_accepts_network_and_placement(spynnaker_py, tmp_path):
    cn = nmcompiler.compile(_network(), "spinnaker", seed=0)
    pynn_dir = PyNNBackend().lower(cn, tmp_path)
    x = (np.random.default_rng(0).random((10, 16)) < 0.2).astype(np.int8)
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "mapping.json"
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    r = subprocess.run([str(spynnaker_py), "run_pynn.py", "--simulator", "spinnaker",
                        "--virtual-board", "5", "--input", str(tmp_path / "in.npz"),
                        "--mapping-out", str(out), "--out", str(tmp_path / "o.npz"),
                        "--quiet"], cwd=pynn_dir, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, (r.stderr or r.stdout)[-3000:]
    m = json.loads(out.read_text())
    # every slice sits on the chip our placer chose, on the core of our slot (the k-th
    # core sPyNNaker leaves to applications: 0 is the monitor, 1 its extra monitor)
    ours = {}
    coords = np.asarray(cn.placement.coords)
    for name in ("a", "b"):
        cores = np.unique(cn.partition.cores_of(name))
        for g, c in enumerate(cores):
            label = name if cores.size == 1 else f"{name}#{g}"
            ours[label] = (int(coords[c, 0]), int(coords[c, 1]), int(coords[c, 4]))
    theirs = {p[0]: (p[3], p[4], p[5]) for p in m["placements"] if p[0] != "x"}
    assert m["unpinned"] == []
    assert set(theirs) == set(ours) and len(theirs) == cn.n_cores
    for label, (x, y, _) in ours.items():
        assert theirs[label] == tuple(m["pinned"][label])
        assert theirs[label][:2] == (x, y)
    slots = sorted(ours.values())
    procs = sorted(theirs.values())
    # same order of slots and processors on each chip (processor = slot + 2 off Ethernet)
    assert [p[2] - 2 for p in procs] == [s[2] for s in slots]
    # slices hold exactly the neurons our partition put on each core
    sizes = {p[0]: p[2] - p[1] + 1 for p in m["placements"]}
    for name in ("a", "b"):
        cores, counts = np.unique(cn.partition.cores_of(name), return_counts=True)
        labels = [name] if cores.size == 1 else [f"{name}#{g}" for g in range(cores.size)]
        assert [sizes[lab] for lab in labels] == counts.tolist()
    # sPyNNaker routed and compressed: its tables are there, compression never grows them
    t = m["tables"]
    assert t["uncompressed"] and t["compressed"]
    for chip, n in t["compressed"].items():
        assert 0 < n <= t["uncompressed"][chip]
    # nothing written into the working directory or the home folder
    assert not (pynn_dir / "reports").exists()
