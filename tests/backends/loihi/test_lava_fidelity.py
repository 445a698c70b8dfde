"""Vendor exactness (docs/architecture.md#fidelity): Lava's bit-accurate models == the emulator.

Seeded random IR networks -- feed-forward, recurrent, with bias, varied decays, delays
(projection and per-synapse), Dense / Sparse / OneToOne, non-spiking readouts, weight
exponents, and stress networks that drive u into its 24-bit wrap and v into its
saturation -- are compiled for loihi and loihi2, lowered by ``backends.loihi.lower`` and
run (merged into one Lava run, since Lava starts one OS process per process) with
``Loihi2SimCfg(select_tag="fixed_pt")``. The emulator backend runs the SAME
CompiledNetworks; spikes, u and v of every population must be identical at every step.
Skipped, with the reason, where the Lava environment is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.api import compile as nmc_compile
from nmcompiler.backends.emulator import EmulatorBackend
from nmcompiler.backends.loihi import LoihiBackend
from nmcompiler.backends.loihi.harness import lava_available, run_graph_file
from nmcompiler.backends.loihi.lower import lower_compiled, merge_graphs, write_graph
from nmcompiler.ir.connectivity import Dense, OneToOne, Sparse
from nmcompiler.ir.models import IF, LI, LIF
from nmcompiler.targets.families import loihi as la

pytestmark = pytest.mark.lava

REPO = Path(__file__).resolve().parents[3]
STEPS = 200
N_NETS = int(os.environ.get("NMC_LAVA_FIDELITY_NETS", "48"))  # more: a longer soak


def _wide_exp_target(tmp: Path) -> Path:
    """loihi2 with Lava's weight-exponent range (-8..7), so weight_exp != 0 is exercised."""
    text = (REPO / "nmcompiler" / "hw_configs" / "loihi2.toml").read_text()
    text = re.sub(r"weight_exponent_min = \{ value = 0", "weight_exponent_min = { value = -8",
                  text)
    text = re.sub(r"weight_exponent_max = \{ value = 0", "weight_exponent_max = { value = 7",
                  text)
    path = tmp / "loihi2_wide_exp.toml"
    path.write_text(text)
    return path


def random_network(rng: np.random.Generator, kind: str) -> tuple[ir.Network, dict, str]:
    """One seeded float network, its (T, n) integer inputs, and the target to use."""
    net = ir.Network(f"rand_{kind}")
    n_in = int(rng.integers(3, 10))
    net.input("in", n_in)
    n_layers = int(rng.integers(2, 4))
    sizes = [int(rng.integers(2, 9)) for _ in range(n_layers)]
    names = [f"p{i}" for i in range(n_layers)]
    stress = kind == "stress"
    for i, (name, n) in enumerate(zip(names, sizes, strict=True)):
        alpha_u = float(rng.choice([0.0, rng.uniform(0, 1), 0.999]))
        lam = float(rng.choice([1.0, rng.uniform(0.3, 1.0), 0.95]))
        bias = rng.normal(0, 0.3, n) if rng.random() < 0.6 else 0.0
        if i == n_layers - 1 and rng.random() < 0.4:
            model = LI(alpha_u=alpha_u, lam=lam if not stress else 1.0,
                       bias=bias if not stress else 0.5)
        elif rng.random() < 0.25 and not stress:
            model = IF(theta=float(rng.uniform(0.5, 2)), bias=bias)
        else:
            theta = rng.uniform(0.5, 3.0, n) if rng.random() < 0.5 else float(rng.uniform(0.5, 3))
            if stress:
                alpha_u, theta = 0.9999, 50.0
            model = LIF(alpha_u=alpha_u, lam=lam, theta=theta, bias=bias)
        net.population(name, n, model)
    def weights(n_post: int, n_pre: int) -> np.ndarray:
        w = rng.normal(0, 1.0, (n_post, n_pre)) * (rng.random((n_post, n_pre)) < 0.8)
        if stress:
            w = np.abs(w) + 1.0
        elif rng.random() < 0.3:
            w = np.abs(w)
        return w

    prev, n_prev = "in", n_in
    for name, n in zip(names, sizes, strict=True):
        r = rng.random()
        w = weights(n, n_prev)
        delay = int(rng.integers(0 if kind == "feedforward" else 1, 4))
        if r < 0.5:
            dl = rng.integers(0, 3, w.shape) if rng.random() < 0.3 else None
            conn = Dense(weight=w, delays=dl)
        elif r < 0.8 or n != n_prev:
            conn = Sparse.from_dense(w)
        else:
            conn = OneToOne(weight=np.abs(w[0]) + 0.5)
        net.connect(prev, name, conn, delay=delay)
        prev, n_prev = name, n
    if kind in ("recurrent", "stress"):
        net.connect(names[0], names[0], Dense(weight=weights(sizes[0], sizes[0]) * 0.5),
                    delay=int(rng.integers(1, 4)))
        net.connect(names[-1], names[0], Sparse.from_dense(weights(sizes[0], sizes[-1])),
                    delay=int(rng.integers(1, 5)))
    for name in names:
        net.probe(name, "v")
    net.output(names[-1])
    rate = 0.9 if stress else float(rng.uniform(0.05, 0.6))
    inputs = {"in": (rng.random((STEPS, n_in)) < rate).astype(np.int64)}
    target = str(rng.choice(["loihi", "loihi2", "wide"]))
    return net, inputs, target


@pytest.fixture(scope="module")
def lava_vs_emulator(tmp_path_factory):
    reason = lava_available()
    if reason is not None:
        pytest.skip(f"Lava not available: {reason}")
    tmp = tmp_path_factory.mktemp("lava_fid")
    wide = _wide_exp_target(tmp)
    rng = np.random.default_rng(20250611)
    kinds = ["feedforward", "recurrent", "stress"]
    compiled, inputs, graphs = {}, {}, {}
    for i in range(N_NETS):
        net, x, tgt = random_network(rng, kinds[i % len(kinds)])
        qopt = {"negative_weight_exp": True} if tgt == "wide" else None
        cn = nmc_compile(net, wide if tgt == "wide" else tgt, seed=i, quantize_options=qopt)
        tag = f"n{i}"
        compiled[tag], inputs[tag] = cn, x
        g = lower_compiled(cn)
        g.record_all()
        graphs[tag] = g
    merged = merge_graphs(graphs)
    npz = write_graph(merged, tmp / "network.npz")
    flat = {f"{tag}:{k}": v for tag, x in inputs.items() for k, v in x.items()}
    lava = run_graph_file(npz, flat, STEPS, fuse=True)
    emu = EmulatorBackend()
    ours = {}
    for tag, cn in compiled.items():
        probes = tuple(f"{p}.{v}" for p in cn.network.populations for v in ("spikes", "u", "v"))
        ours[tag] = emu.run(cn, inputs[tag], STEPS, probes=probes, count=False)
    return compiled, lava, ours


def test_lava_equals_emulator_every_step(lava_vs_emulator):
    compiled, lava, ours = lava_vs_emulator
    for tag, cn in compiled.items():
        for pop in cn.network.populations:
            for var, x in (("spikes", "s"), ("u", "u"), ("v", "v")):
                a = lava[f"{tag}:{pop}/{x}"][:, 0]
                b = ours[tag].probes[f"{pop}.{var}"][:, 0]
                if not np.array_equal(a, b):
                    t, n = np.argwhere(a != b)[0]
                    pytest.fail(f"{tag} ({cn.target.name}) {pop}.{var} differs first at step "
                                f"{t}, neuron {n}: lava {a[t, n]}, emulator {b[t, n]}")


def test_comparison_covers_the_hard_cases(lava_vs_emulator):
    compiled, lava, _ = lava_vs_emulator
    spikes = sum(int(v.sum()) for k, v in lava.items() if k.endswith("/s"))
    u_all = np.concatenate([v.ravel() for k, v in lava.items() if k.endswith("/u")])
    v_all = np.concatenate([v.ravel() for k, v in lava.items() if k.endswith("/v")])
    assert spikes > 500
    assert np.abs(u_all).max() >= 2**22  # u reaches its 24-bit wrap region
    assert v_all.max() == la.V_MAX or v_all.min() == la.V_MIN  # v saturates
    exps = {e["weight_exp"] for cn in compiled.values()
            for e in cn.network.metadata["quantization"]["projections"].values()}
    assert len(exps) > 1
    targets = {cn.target.name for cn in compiled.values()}
    assert {"loihi", "loihi2"} <= targets


def test_backend_run_batch_and_standalone_script(tmp_path):
    """LoihiBackend.run with (T, B, n) inputs and on the lowered directory (run_lava.py)."""
    reason = lava_available()
    if reason is not None:
        pytest.skip(f"Lava not available: {reason}")
    rng = np.random.default_rng(7)
    net, _, _ = random_network(rng, "recurrent")
    cn = nmc_compile(net, "loihi2", seed=0)
    x = {"in": (rng.random((40, 3, net.inputs["in"].size)) < 0.4).astype(np.int64)}
    be = LoihiBackend()
    lava_dir = be.lower(cn, tmp_path)
    assert (lava_dir / "run_lava.py").is_file() and (lava_dir / "network.npz").is_file()
    r_lava = be.run(lava_dir, x, 40, fuse=False)  # one process per population
    r_emu = EmulatorBackend().run(cn, x, 40)
    assert set(r_lava.outputs) == set(r_emu.outputs)
    for k in r_emu.outputs:
        assert r_lava.outputs[k].shape == (40, 3, cn.network.size_of(cn.network.outputs[k].source))
        np.testing.assert_array_equal(r_lava.outputs[k], r_emu.outputs[k])
    for k in r_emu.probes:
        np.testing.assert_array_equal(r_lava.probes[k], r_emu.probes[k])
