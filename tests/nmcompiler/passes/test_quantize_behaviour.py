"""Quantisation that keeps behaviour (docs/passes.md#scale-choice, #weight-groups,
docs/fidelity.md): per-projection weight exponents and synapse groups, ``weight_bits``
(narrower mantissas for capacity, chained synapse groups for precision), the fan-in
relay quantum from the target's weight grid, and determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pass_helpers import variant

from nmcompiler import hw_configs, ir
from nmcompiler.api import compile as nmc_compile
from nmcompiler.backend import get_backend
from nmcompiler.compiled import save_compiled
from nmcompiler.ir.errors import FitError, UsageError
from nmcompiler.passes.quantize import quantize, weight_bits_limits
from nmcompiler.targets import load_target

STEPS = 200


def _variant_file(tmp: Path, base: str, field: str, value: int) -> Path:
    """``base``'s TOML with ``field``'s value replaced, as a file (compile reads it)."""
    text = hw_configs.path(base).read_text()
    text, n = re.subn(rf"^{field} = \{{ value = [^,]+", f"{field} = {{ value = {value}",
                      text, flags=re.M)
    assert n == 1
    path = tmp / f"{base}_{field}.toml"
    path.write_text(text)
    return path


def _kept(a: np.ndarray, b: np.ndarray) -> float:
    """Float spikes the other run also fires, over the float spikes."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    return float((a & b).sum() / max(a.sum(), 1))


def _two_scales(seed: int = 0) -> ir.Network:
    """A neuron fed by a projection of large weights and one of many weights two orders
    of magnitude smaller that still carries half of its input."""
    rng = np.random.default_rng(seed)
    net = ir.Network("two_scales")
    net.input("big", 8)
    net.input("small", 400)
    net.population("h", 12, ir.LIF(lam=0.9, theta=1.0))
    net.connect("big", "h", ir.Dense(weight=rng.normal(-0.2, 1.0, (12, 8))), delay=1)
    net.connect("small", "h", ir.Dense(weight=rng.normal(0.008, 0.003, (12, 400))), delay=1)
    net.output("h")
    return net


def _inputs(net: ir.Network, steps: int, rate: float = 0.3, seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    return {k: (rng.random((steps, v.size)) < rate).astype(np.float64)
            for k, v in net.inputs.items()}


def _emulated_kept(net: ir.Network, target, **kw) -> tuple[float, object]:
    """Float output spikes the compiled network keeps on the emulator over STEPS steps."""
    cn = nmc_compile(net, target, seed=0, **kw)
    shift = max(cn.report["summary"]["output_shift_steps"].values(), default=0)
    x = _inputs(net, STEPS)
    ref = ir.simulate(net, x, STEPS).outputs["h"]
    xp = {k: np.concatenate([v, np.zeros((shift, v.shape[1]))]) for k, v in x.items()}
    got = get_backend("emulator").run(cn, xp, STEPS + shift, count=False).outputs["h"]
    got = np.asarray(got).reshape(STEPS + shift, -1)[shift:]
    return _kept(ref.reshape(STEPS, -1), got), cn


# ----------------------------------------------------------------------------- exponents
def test_per_projection_exponents_differ_and_keep_more_spikes(tmp_path):
    """Weights two orders of magnitude apart get exponents about that far apart, and the
    compiled network keeps far more of the float spikes than with one shared exponent
    (the single-exponent scheme: the same target with the exponent range [0, 0])."""
    net = _two_scales()
    one_exp = _variant_file(tmp_path, "loihi2", "weight_exponent_max", 0)
    kept_new, cn = _emulated_kept(net, "loihi2")
    kept_old, cn_old = _emulated_kept(net, one_exp)
    proj = cn.report["passes"]["quantize"]["projections"]
    e_big, e_small = proj["big->h"]["weight_exp"], proj["small->h"]["weight_exp"]
    assert e_big - e_small >= 5, proj
    old = cn_old.report["passes"]["quantize"]["projections"]
    assert old["big->h"]["weight_exp"] == old["small->h"]["weight_exp"] == 0
    assert old["small->h"]["rel_rms_error"] > 5 * proj["small->h"]["rel_rms_error"]
    assert kept_new >= 0.98 and kept_new > kept_old + 0.2, (kept_new, kept_old)


def test_scale_uses_the_voltage_range_with_headroom(loihi2):
    """With an exponent range the scale grows beyond the one-exponent bound (finer
    thresholds), bounded by the state headroom: one step's largest input on top of the
    threshold stays inside v's 24 bits."""
    net = _two_scales()
    q, rep = quantize(net, loihi2, check_steps=0)
    pop = rep["populations"]["h"]
    one = quantize(net, variant("loihi2", formats={"weight_exponent_max": 0}),
                   check_steps=0)[1]["populations"]["h"]
    assert pop["scale"] > 8 * one["scale"]
    worst = sum(np.abs(p.conn.weight).sum(axis=1).max() for p in net.projections.values())
    assert pop["scale"] * (1.0 + worst) <= 2**23 - 1
    assert not rep["overflow"]["h"]["may_overflow"]


def test_magnitude_split_is_one_more_exponent_over_the_same_synapses(loihi2):
    rng = np.random.default_rng(3)
    net = ir.Network("split")
    net.input("in", 30)
    net.population("h", 6, ir.IF(theta=1.0))
    w = rng.normal(0, 0.3, (6, 30))
    net.connect("in", "h", ir.Dense(weight=w), delay=1)
    net.output("h")
    q, rep = quantize(net, loihi2)
    groups = rep["projections"]["in->h"]["groups"]
    roles = [g["role"] for g in groups]
    # large / small weights, each split by sign (single-sign groups keep odd mantissas)
    assert roles == ["large weights, excitatory", "large weights, inhibitory",
                     "small weights, excitatory", "small weights, inhibitory"], roles
    assert [g["sign_mode"] for g in groups] == ["excitatory", "inhibitory"] * 2
    assert min(g["weight_exp"] for g in groups[:2]) > max(g["weight_exp"] for g in groups[2:])
    assert sum(g["synapses"] for g in groups) == w.size  # no synapse added
    one, rep1 = quantize(net, loihi2, weight_split=False)
    assert "groups" not in rep1["projections"]["in->h"]
    assert rep["projections"]["in->h"]["rel_rms_error"] < \
        0.8 * rep1["projections"]["in->h"]["rel_rms_error"]
    # the groups run on the emulator exactly as the quantised network simulates (IF:
    # no decay rounding), so the report's figures are the chip's
    cn = nmc_compile(net, "loihi2", seed=0)
    x = _inputs(net, 60, rate=0.4)
    emu = get_backend("emulator").run(cn, x, 60, count=False).outputs["h"]
    sim = ir.simulate(cn.network, x, 60).outputs["h"]
    np.testing.assert_array_equal(np.asarray(emu).reshape(60, -1), sim.reshape(60, -1))


# ----------------------------------------------------------------------------- weight_bits
TARGETS = ("loihi", "loihi2", "spinnaker", "speck2f", "emulator")


@settings(max_examples=60, deadline=None)
@given(tname=st.sampled_from(TARGETS), bits=st.integers(-4, 40))
def test_weight_bits_range_is_validated_per_target(tname, bits):
    tgt = load_target(tname)
    lo, native, hi = weight_bits_limits(tgt)
    assert lo <= native <= hi
    net = ir.Network("wb")
    net.input("in", 3)
    net.population("h", 2, ir.IF(theta=1.0))
    net.connect("in", "h", ir.Dense(weight=np.array([[0.3, -0.2, 0.7], [0.1, 0.5, -0.4]])),
                delay=1)
    net.output("h")
    if lo <= bits <= hi:
        _, rep = quantize(net, tgt, weight_bits=bits, check_steps=0)
        wb = rep["weight_bits"]
        assert wb["mantissa_bits"] == min(bits, native)
        assert (wb["chained_groups"] > 0) == (bits > native)
    else:
        with pytest.raises(UsageError) as ei:
            quantize(net, tgt, weight_bits=bits)
        err = ei.value
        assert err.exit_code == 2 and err.obj == "weight_bits"
        assert f"{lo}..{hi}" in str(err) and tname in str(err) and "--weight-bits" in err.hint


@pytest.mark.parametrize("bad", [True, 8.0, "8"])
def test_weight_bits_must_be_an_integer(bad, loihi2):
    with pytest.raises(UsageError):
        quantize(_two_scales(), loihi2, weight_bits=bad)


def test_fewer_weight_bits_free_synaptic_memory():
    """Loihi charges synapses per bit: 4-bit weights halve each synapse entry and the
    mantissas are Lava's num_weight_bits = 4 grid (multiples of 32 when mixed)."""
    from nmcompiler.passes.quantize import with_weight_bits
    from nmcompiler.targets.budgets import synapse_row_bits

    tgt = load_target("loihi2")
    t4 = with_weight_bits(tgt, 4)
    assert t4.formats.weight_bits == 4 and t4.core.synapse_entry_bits == 4
    n = np.array([64, 200])
    assert np.all(synapse_row_bits(n, t4) < synapse_row_bits(n, tgt))
    assert with_weight_bits(tgt, None) is tgt and with_weight_bits(tgt, 12) is tgt
    rng = np.random.default_rng(0)
    net = ir.Network("dense")
    net.input("in", 200)
    net.population("h", 900, ir.IF(theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0, 0.2, (900, 200))), delay=1)
    net.output("h")
    c8 = nmc_compile(net, "loihi2", seed=0, quantize_options={"check_steps": 0})
    c4 = nmc_compile(net, "loihi2", seed=0, weight_bits=4,
                     quantize_options={"check_steps": 0})
    assert c4.report["summary"]["cores_used"] < c8.report["summary"]["cores_used"]
    info = c4.network.metadata["quantization"]["projections"]
    for name, p in c4.network.projections.items():
        m = np.asarray(p.conn.weight) / 2.0 ** info[name]["weight_shift"]
        step = 32 if info[name]["sign_mode"] == "mixed" else 16
        assert np.all(m % step == 0) and info[name]["num_weight_bits"] == 4


def test_more_weight_bits_chain_synapse_groups():
    """15 bits on Loihi 2: each projection gets a residual group 7 exponents finer; the
    compiled network runs on the emulator as it simulates, and keeps every float spike
    of the two-scale network."""
    net = _two_scales()
    kept, cn = _emulated_kept(net, "loihi2", weight_bits=15)
    rep = cn.report["passes"]["quantize"]
    for name in ("big->h", "small->h"):
        groups = rep["projections"][name]["groups"]
        assert [g["role"] for g in groups] == ["weights", "residual"]
        assert groups[0]["weight_exp"] - groups[1]["weight_exp"] == 7
    base = quantize(net, load_target("loihi2"), check_steps=0)[1]
    assert rep["projections"]["big->h"]["rel_rms_error"] < \
        base["projections"]["big->h"]["rel_rms_error"] / 20
    assert kept >= 0.99


# ----------------------------------------------------------------------------- relay quantum
def _wide(n_pre: int = 5000, seed: int = 0) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network("wide")
    net.input("in", n_pre)
    net.population("h", 4, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0.002, 0.05, (4, n_pre))), delay=1)
    net.output("h")
    return net


def test_loihi2_fan_in_split_with_float_weights_compiles():
    """Fan-in above Loihi 2's 4096 input axons with ordinary float weights: the relay
    quantum comes from the target's weight grid (the exact dyadic one would need 65-bit
    payloads), the report says the split rounds, and the compiled network still keeps
    the float spikes."""
    net = _wide()
    cn = nmc_compile(net, "loihi2", seed=0)
    split = cn.report["passes"]["lower"]["fan_in"]["split"][0]
    assert split["quantum_from"] == "weight grid" and not split["exact"]
    amax = np.abs(net.projections["in->h"].conn.weight).max()
    assert amax / 254 <= split["quantum"] <= 2 * amax / 254
    assert max(r["payload_bits"] for r in split["relays"]) <= 24
    x = _inputs(net, 100, rate=0.05)
    shift = max(cn.report["summary"]["output_shift_steps"].values())
    ref = ir.simulate(net, x, 100).outputs["h"].reshape(100, -1)
    xp = {k: np.concatenate([v, np.zeros((shift, v.shape[1]))]) for k, v in x.items()}
    got = np.asarray(get_backend("emulator").run(cn, xp, 100 + shift, count=False)
                     .outputs["h"]).reshape(100 + shift, -1)[shift:]
    assert ref.sum() > 10 and _kept(ref, got) >= 0.9


def test_dyadic_weights_keep_the_exact_relay_quantum():
    net = _wide()
    w = np.round(net.projections["in->h"].conn.weight * 64) / 64
    net2 = net.replace(projections={"in->h": ir.Projection(
        name="in->h", pre="in", post="h", conn=ir.Dense(weight=w), delay=1)})
    cn = nmc_compile(net2, "loihi2", seed=0)
    split = cn.report["passes"]["lower"]["fan_in"]["split"][0]
    assert split["quantum_from"] == "exact" and split["exact"] and split["quantum"] == 1 / 64


def test_relay_payload_overflow_names_the_quantum_that_fits(tmp_path):
    tgt = _variant_file(tmp_path, "loihi2", "graded_spike_bits", 6)
    net = _wide()
    with pytest.raises(FitError) as ei:
        nmc_compile(net, tgt, seed=0)
    err = ei.value
    assert err.rule == "graded spike bits" and "relay_quantum = " in err.hint
    fit = float(err.hint.split("relay_quantum = ")[1].split()[0])
    cn = nmc_compile(net, tgt, seed=0, lower_options={"relay_quantum": fit})
    split = cn.report["passes"]["lower"]["fan_in"]["split"][0]
    assert split["quantum"] == fit and split["quantum_from"] == "given"
    assert max(r["payload_bits"] for r in split["relays"]) <= 6


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("kw", [{}, {"weight_bits": 15}, {"weight_bits": 5}])
def test_same_seed_same_bytes(tmp_path, kw):
    net = _two_scales()
    a = save_compiled(nmc_compile(net, "loihi2", seed=3, **kw), tmp_path / "a")
    b = save_compiled(nmc_compile(net, "loihi2", seed=3, **kw), tmp_path / "b")
    for f in ("compiled.nmc", "report.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


# ----------------------------------------------------------------------------- CLI
def test_cli_weight_bits(tmp_path):
    """``nmc compile --weight-bits``: out of the target's range exit 2 before any output
    is written; in range the report records the width and the chained groups."""
    import json
    import os
    import subprocess
    import sys

    ir.save(_two_scales(), tmp_path / "net.nmir")

    def nmc(*args):
        return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "COLUMNS": "200"})

    bad = nmc("compile", "net.nmir", "-t", "loihi2", "--weight-bits", "16", "-o", "b")
    assert bad.returncode == 2 and "1..15" in bad.stderr and "--weight-bits" in bad.stderr
    assert not (tmp_path / "b").exists()
    ok = nmc("compile", "net.nmir", "-t", "loihi2", "--weight-bits", "12", "-o", "b")
    assert ok.returncode == 0, ok.stderr
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    wb = rep["passes"]["quantize"]["weight_bits"]
    assert wb == {"mantissa_bits": 8, "chained_groups": 1, "requested": 12}
