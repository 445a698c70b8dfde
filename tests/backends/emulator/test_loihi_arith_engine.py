"""The emulator in Loihi arithmetic against ``loihi_arith.run_spec``.

``run_spec`` is proven equal to Lava's bit-accurate models spike for spike and voltage for
voltage (tests/backends/test_loihi_arith.py), so equality with it here carries the Lava
equivalence (docs/architecture.md#fidelity) over to the full engine: decays with rounding towards
zero, 24-bit wrap of u, saturation of v, negative weight exponents (floor of the summed
activation), graded inputs, synaptic delays (DelaySparse), recurrent connections, and the
quantize pass's metadata format (weights in Lava v units, ``weight_shift``).
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_nets import placement, target_file

from nmcompiler import ir
from nmcompiler.backends.emulator import emulate
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target
from nmcompiler.targets.families import loihi as la


def _spec_and_network(seed: int):
    rng = np.random.default_rng(seed)
    sizes = {"a": 25, "b": 12}
    pops = []
    for name, n in sizes.items():
        pops.append({
            "name": name, "n": n,
            "du": int(rng.choice([0, 1024, 4095, 3000])),
            "dv": int(rng.choice([0, 256, 2048])),
            "vth": int(rng.integers(20, 120)),
            "bias_mant": rng.integers(-30, 200, n).tolist(),
            "bias_exp": int(rng.integers(0, 3)),
        })
    n_in = 8
    conns = [
        {"pre": "in", "post": "a", "weights": rng.integers(0, 120, (25, n_in)),
         "weight_exp": int(rng.integers(-2, 2)), "num_message_bits": 8},
        {"pre": "a", "post": "a",
         "weights": np.where(rng.random((25, 25)) < 0.3, rng.integers(-128, 128, (25, 25)), 0),
         "weight_exp": -1},
        {"pre": "a", "post": "b", "weights": rng.integers(0, 200, (12, 25)), "weight_exp": 0,
         "delays": rng.integers(0, 3, (12, 25))},
        {"pre": "b", "post": "a", "weights": -rng.integers(0, 255, (25, 12)), "weight_exp": 1},
    ]
    x = rng.integers(0, 4, (60, n_in)) * (rng.random((60, n_in)) < 0.5)
    spec = {"populations": pops, "connections": conns, "inputs": {"in": x}}
    # the same network in the quantize pass's units and metadata
    net = ir.Network(f"loihi{seed}")
    net.input("in", n_in)
    meta_p, meta_c = {}, {}
    for p in pops:
        bias = la.effective_bias(np.asarray(p["bias_mant"]), p["bias_exp"]).astype(float)
        net.population(p["name"], p["n"], ir.LIF(
            alpha_u=(4095 - p["du"]) / 4096, lam=(4096 - p["dv"]) / 4096,
            theta=64.0 * p["vth"], bias=bias))
        meta_p[p["name"]] = {k: p[k] for k in ("du", "dv", "vth", "bias_mant", "bias_exp")}
        meta_p[p["name"]]["scale"] = 1.0
    for k, c in enumerate(conns):
        e = c["weight_exp"]
        w = la.prepare_weights(c["weights"]).astype(float) * 2.0 ** (6 + e)
        name = f"c{k}"
        if "delays" in c:
            post, pre = np.nonzero(w)
            conn = ir.Sparse.from_coo(pre=pre, post=post, weight=w[post, pre],
                                      n_pre=w.shape[1], n_post=w.shape[0],
                                      delays=c["delays"][post, pre])
        else:
            conn = ir.Dense(weight=w)
        net.connect(c["pre"], c["post"], conn, delay=1, name=name)
        meta_c[name] = {"weight_exp": e, "weight_shift": 6 + e, "num_weight_bits": 8,
                        "num_message_bits": c.get("num_message_bits", 0)}
    net.metadata["quantization"] = {"family": "loihi", "populations": meta_p,
                                    "projections": meta_c}
    for p in pops:
        net.output(p["name"])
        net.probe(p["name"], "u")
        net.probe(p["name"], "v")
    return spec, ir.verify(net), {"in": x.astype(float)}


@pytest.mark.parametrize("seed", range(6))
def test_engine_equals_run_spec(seed):
    spec, net, x = _spec_and_network(seed)
    steps = 60
    want = la.run_spec(spec, steps)
    got = emulate(net, x, steps, target=load_target("loihi"))
    for p in ("a", "b"):
        np.testing.assert_array_equal(got.outputs[p][:, 0], want[f"{p}/s"], err_msg=p)
        np.testing.assert_array_equal(got.probes[f"{p}.u"][:, 0], want[f"{p}/u"], err_msg=p)
        np.testing.assert_array_equal(got.probes[f"{p}.v"][:, 0], want[f"{p}/v"], err_msg=p)
    assert want["a/s"].sum() > 0 and want["b/s"].sum() > 0


def test_engine_equals_run_spec_on_many_cores(tmp_path):
    spec, net, x = _spec_and_network(7)
    want = la.run_spec(spec, 60)
    tiny = load_target(target_file(tmp_path, "ltiny", 5, base="loihi"))
    part = partition(net, tiny, seed=1, method="metis")
    got = emulate(net, x, 60, target=tiny, partition=part,
                  placement=placement(tiny, part.n_cores, 5))
    for p in ("a", "b"):
        np.testing.assert_array_equal(got.probes[f"{p}.v"][:, 0], want[f"{p}/v"])


def test_loihi_weights_are_kept_in_float32_and_widened_for_float64_sums():
    """Loihi's weights (whole numbers below 2**16) are built in float32 (no float64 copy
    of the synapses); a run whose sums need float64 (a large payload bound) reads a
    float64 copy with the same values, one whose sums are exact in float32 the weights
    themselves."""
    from nmcompiler.backends.emulator.engine import Engine

    _, net, _ = _spec_and_network(3)
    eng = Engine(net, family="loihi")
    assert all(m.dtype == np.float32 for *_, m in eng.groups)
    f32 = eng._matrices(1.0)
    wide = eng._matrices(2.0**40)
    for (*_, m), b32, b64 in zip(eng.groups, f32, wide, strict=True):
        assert np.shares_memory(b32[0][1].data, m.data)
        assert b64[0][1].dtype == np.float64
        np.testing.assert_array_equal(b64[0][1].data, m.data.astype(np.float64))
        np.testing.assert_array_equal(b64[0][1].indices, m.indices)
