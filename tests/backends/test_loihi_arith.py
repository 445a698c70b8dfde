"""Loihi arithmetic (nmcompiler/targets/families/loihi.py) against hand-derived cases and Lava.

The hand-derived tests need numpy only. The Lava tests run seeded random networks through
Lava's bit-accurate models (backends/loihi/harness.py, in .venv-lava) and through the numpy
implementation, and require spikes, u and v to be identical at every step; they are
skipped, with the reason, when the Lava environment is absent.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from nmcompiler.backends.loihi.harness import lava_available, run_on_lava
from nmcompiler.targets.families import loihi as la

I32 = np.int32


# --------------------------------------------------------------------------------------
# hand-derived cases (no Lava)
# --------------------------------------------------------------------------------------
def test_prepare_weights_sign_modes():
    mixed = la.prepare_weights(np.array([[3, -3, 255, -300, 1, -1]]))
    # mixed: clip to [-256, 255], clear the LSB (floor)
    assert mixed.tolist() == [[2, -4, 254, -256, 0, -2]]
    exc = la.prepare_weights(np.array([[0, 3, 255, 400]]))
    assert exc.tolist() == [[0, 3, 255, 255]]
    inh = la.prepare_weights(np.array([[0, -3, -255, -400]]))
    assert inh.tolist() == [[0, -3, -255, -255]]
    assert la.sign_mode_of(np.zeros((2, 2))) == "excitatory"
    six = la.prepare_weights(np.array([[7, 255]]), num_weight_bits=6)
    assert six.tolist() == [[4, 252]]


@pytest.mark.parametrize("lo,hi,exp,nwb", [(-900, 900, 0, 8), (0, 700, 2, 6),
                                             (-700, 0, -1, 8), (-3, 3, 1, 7),
                                             (-90000, 90000, 7, 8)])
def test_synapse_weights_block_by_block_equal_the_whole_array(lo, hi, exp, nwb):
    """The engine's weights (mantissa, Lava's clip and truncation, 2**exp), made a few
    entries at a time, equal the whole-array formula, sign mode inferred as Lava does."""
    w = np.random.default_rng(hi - lo).uniform(lo, hi, 1001)
    shift = 6 + exp
    got, mode = la.synapse_weights(w, weight_shift=shift, weight_exp=exp,
                                   num_weight_bits=nwb, block=64)
    with ThreadPoolExecutor(3) as pool:  # the blocks on threads: the same array
        on_pool, _ = la.synapse_weights(w, weight_shift=shift, weight_exp=exp,
                                        num_weight_bits=nwb, block=64, pool=pool)
    np.testing.assert_array_equal(on_pool, got)
    f32, _ = la.synapse_weights(w, weight_shift=shift, weight_exp=exp, num_weight_bits=nwb,
                                block=64, dtype=np.float32)  # the engine's: exact there
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32.astype(np.float64), got)
    mant = np.rint(w / 2.0**shift)
    assert mode == la.sign_mode_of(mant)
    want = la.prepare_weights(mant, num_weight_bits=nwb, sign_mode=mode).astype(float)
    np.testing.assert_array_equal(got, want * 2.0 ** max(exp, 0))
    assert la.synapse_weights(np.zeros(0), weight_shift=6, weight_exp=0)[1] == "excitatory"


def test_activation_shift_applies_to_the_sum():
    syn = la.SynapseSpec.from_raw(np.array([[1, 1, 1]]), weight_exp=-1)
    a = la.synapse_accumulate(syn, np.array([1, 1, 1]))
    assert a.tolist() == [1]  # floor(3 / 2), not 3 * floor(1 / 2)
    neg = la.SynapseSpec.from_raw(np.array([[-1, -1, -1]]), weight_exp=-1)
    assert la.synapse_accumulate(neg, np.array([1, 1, 1])).tolist() == [-2]  # floor(-1.5)
    up = la.SynapseSpec.from_raw(np.array([[255]]), weight_exp=7)
    assert la.synapse_accumulate(up, np.array([1])).tolist() == [255 << 7]
    graded = la.SynapseSpec.from_raw(np.array([[3, 5]]), num_message_bits=8)
    assert la.synapse_accumulate(graded, np.array([10, 7])).tolist() == [65]
    binary = la.SynapseSpec.from_raw(np.array([[3, 5]]))
    assert la.synapse_accumulate(binary, np.array([10, 7])).tolist() == [8]


def test_current_decay_rounds_towards_zero_and_uses_ds_offset():
    p = la.LifParams(du=0, dv=0, vth=10**5)
    u, v, s = la.lif_step(np.array([-100, 100], I32), np.zeros(2, I32), np.zeros(2, I32), p)
    # 100 * 4095 / 4096 = 99.97 -> 99; -99.97 -> -99 (not -100)
    assert u.tolist() == [-99, 99]
    u, _, _ = la.lif_step(
        np.array([12345], I32), np.zeros(1, I32), np.zeros(1, I32), la.LifParams(du=4095, vth=10**5)
    )
    assert u.tolist() == [0]


def test_voltage_decay_bias_threshold_and_reset():
    # dv = 0: v keeps; bias 3 << 2 = 12; input a_in = 1 -> u = 64
    p = la.LifParams(du=4095, dv=0, vth=2, bias_mant=3, bias_exp=2)
    u, v, s = la.lif_step(np.zeros(1, I32), np.array([52], I32), np.array([1], I32), p)
    # v* = 52 + 64 + 12 = 128 = vth << 6: no spike (strict >)
    assert (u.tolist(), v.tolist(), s.tolist()) == ([64], [128], [False])
    u, v, s = la.lif_step(np.zeros(1, I32), np.array([53], I32), np.array([1], I32), p)
    assert (v.tolist(), s.tolist()) == ([0], [True])
    # dv = 2048 halves v, rounding towards zero; negative bias exponent shifts right
    p2 = la.LifParams(du=4095, dv=2048, vth=10**5, bias_mant=-7, bias_exp=-1)
    _, v, _ = la.lif_step(np.zeros(1, I32), np.array([-5], I32), np.zeros(1, I32), p2)
    assert v.tolist() == [-2 + (-4)]  # trunc(-2.5) = -2; -7 >> 1 = -4


def test_u_wraps_once_and_v_saturates():
    big = la.MAX_UV
    x = np.array([big, big + 1, -big, -big - 1, 2 * big - 1], dtype=I32)
    assert la.wrap_u(x).tolist() == [big, -big + 1, big, big - 1, -1]
    p = la.LifParams(du=4095, dv=0, vth=2**20, bias_mant=4095, bias_exp=7)
    _, v, s = la.lif_step(np.zeros(1, I32), np.array([la.V_MAX - 5], I32), np.zeros(1, I32), p)
    assert v.tolist() == [la.V_MAX] and not s[0]
    _, v, _ = la.lif_step(
        np.zeros(1, I32),
        np.array([la.V_MIN + 5], I32),
        np.zeros(1, I32),
        la.LifParams(du=4095, dv=0, vth=0, bias_mant=-4096, bias_exp=7),
    )
    assert v.tolist() == [la.V_MIN]


def test_timeline_one_step_per_dense_edge():
    spec = {
        "populations": [{"name": "a", "n": 1, "du": 4095, "dv": 0, "vth": 0}],
        "connections": [{"pre": "in", "post": "a", "weights": np.array([[1]])}],
        "inputs": {"in": np.array([[1], [0], [0], [0]])},
    }
    r = la.run_spec(spec, 4)
    assert r["a/u"].ravel().tolist() == [0, 64, 0, 0]
    assert r["a/s"].ravel().tolist() == [0, 1, 0, 0]
    assert r["a/v"].ravel().tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_delay_dense_arrives_after_one_plus_delay(delay):
    spec = {
        "populations": [{"name": "a", "n": 1, "du": 4095, "dv": 4095, "vth": 10**5}],
        "connections": [{"pre": "in", "post": "a", "weights": np.array([[5]]), "delays": delay}],
        "inputs": {"in": np.eye(8, 1, dtype=int)},
    }
    u = la.run_spec(spec, 8)["a/u"].ravel()
    assert np.flatnonzero(u).tolist() == [1 + delay]
    assert u[1 + delay] == 5 << 6


def test_batch_axis_matches_single_runs():
    rng = np.random.default_rng(3)
    steps, b = 30, 4
    inp = (rng.random((b, steps, 6)) < 0.3).astype(int)
    spec = {
        "populations": [
            {"name": "h", "n": 5, "du": 300, "dv": 200, "vth": 40, "bias_mant": 3},
            {"name": "o", "n": 2, "du": 10, "dv": 0, "vth": 30},
        ],
        "connections": [
            {"pre": "in", "post": "h", "weights": rng.integers(-256, 256, (5, 6)), "weight_exp": 2},
            {"pre": "h", "post": "o", "weights": rng.integers(-256, 256, (2, 5))},
            {"pre": "o", "post": "h", "weights": rng.integers(0, 256, (5, 2)), "delays": 2},
        ],
        "inputs": {"in": inp},
    }
    rb = la.run_spec(spec, steps)
    for i in range(b):
        ri = la.run_spec({**spec, "inputs": {"in": inp[i]}}, steps)
        for k in ri:
            np.testing.assert_array_equal(rb[k][i], ri[k])


def test_lif_reset_schedule():
    # Lava's time_step is 1-based: interval 3, offset 1 -> zeroed before steps 1, 4, 7
    due = [la.lif_reset_due(t, 3, 1) for t in range(1, 8)]
    assert due == [True, False, False, True, False, False, True]


def test_float_conversions():
    du = la.decay_from_factor(np.array([0.0, 0.5, 4095 / 4096]), current=True)
    assert du.tolist() == [4095, 2047, 0]
    dv = la.decay_from_factor(np.array([0.0, 0.5, 1.0]), current=False)
    assert dv.tolist() == [4095, 2048, 0]
    np.testing.assert_allclose(la.factor_from_decay(dv, current=False), [1 / 4096, 0.5, 1.0])
    mant, exp = la.bias_from_float(np.array([1.0, 100.0, -3.0]), scale=1.0)
    np.testing.assert_array_equal(mant << exp, [64, 6400, -192])
    wi, e = la.weights_from_float(np.array([[0.5, -1.0], [2.0, 0.25]]))
    assert e == -6 and wi.max() <= 254 and np.all(wi % 2 == 0)
    np.testing.assert_allclose(wi * 2.0**e, [[0.5, -1.0], [2.0, 0.25]], atol=2**-6)


def _bias_from_float_all_exponents(bias, scale):
    """bias_from_float as every exponent's mantissa at once (an (n, 8) array)."""
    b = np.asarray(bias, dtype=np.float64) * (2**la.ACT_SHIFT) / scale
    mants = np.rint(b[..., None] / 2.0**np.arange(8))
    fits = (mants >= -4096) & (mants <= 4095)
    exp = np.where(fits.any(axis=-1), np.argmax(fits, axis=-1), 7).astype(np.int64)
    return np.clip(np.rint(b / 2.0**exp), -4096, 4095).astype(np.int64), exp


@pytest.mark.parametrize("seed", range(4))
def test_bias_exponent_is_the_first_that_fits(seed):
    """Per neuron the smallest exponent 0..7 whose mantissa fits 13 bits (7 where none
    does), one exponent at a time, equals the all-exponents formulation."""
    rng = np.random.default_rng(seed)
    b = np.concatenate([rng.normal(0, 10.0 ** rng.integers(-3, 8), 200),
                        [0.0, 4095.4, 4095.6, -4096.5, -4096.6, 1e12, -1e12, 8190.0, 8191.0,
                         -8192.0, -8193.0, 524287.0, 524289.0]])
    for scale in (1.0, 64.0, 0.37):
        for arr in (b, b.reshape(-1, 1), np.asarray(b[3])):
            mant, exp = la.bias_from_float(arr, scale)
            want_m, want_e = _bias_from_float_all_exponents(arr, scale)
            assert mant.shape == want_m.shape and exp.dtype == want_e.dtype
            np.testing.assert_array_equal(mant, want_m)
            np.testing.assert_array_equal(exp, want_e)


# --------------------------------------------------------------------------------------
# Lava comparison
# --------------------------------------------------------------------------------------
def _random_network(rng: np.random.Generator, tag: str, steps: int, kind: str) -> dict:
    """One small seeded network; populations and inputs prefixed with ``tag``."""
    n_in = int(rng.integers(3, 9))
    sizes = [int(rng.integers(2, 7)) for _ in range(int(rng.integers(2, 4)))]
    names = [f"{tag}p{i}" for i in range(len(sizes))]
    pops = []
    for name, n in zip(names, sizes, strict=True):
        extreme = rng.random() < 0.3
        pops.append(
            {
                "name": name,
                "n": n,
                "du": rng.choice([0, 4095, int(rng.integers(0, 4096))]),
                "dv": rng.choice([0, 4095, int(rng.integers(0, 4096))]),
                "vth": rng.integers(0, 2**17, n) if extreme else rng.integers(0, 400, n),
                "bias_mant": rng.integers(-4096, 4096, n) if extreme else rng.integers(-50, 50, n),
                "bias_exp": rng.integers(0, 8, n),
                "u0": rng.integers(-(2**20), 2**20, n),
                "v0": rng.integers(-(2**15), 2**15, n),
            }
        )
    if kind == "reset":
        pops[0]["model"] = "lif_reset"
        pops[0]["reset_interval"] = int(rng.integers(1, 7))
        pops[0]["reset_offset"] = int(rng.integers(0, 7))
    graded = kind == "graded"
    inp = (rng.random((steps, n_in)) < rng.uniform(0.1, 0.6)).astype(np.int64)
    if graded:
        inp = inp * rng.integers(1, 2**12, (steps, n_in))
    conns = []

    def weights(n_post, n_pre):
        mode = rng.choice(["mixed", "exc", "inh", "limits"])
        if mode == "exc":
            return rng.integers(0, 256, (n_post, n_pre))
        if mode == "inh":
            return -rng.integers(0, 256, (n_post, n_pre))
        if mode == "limits":
            return rng.choice([-256, -255, 254, 255, 0], (n_post, n_pre))
        return rng.integers(-256, 256, (n_post, n_pre))

    def conn(pre, post, n_pre, n_post, **extra):
        c = {
            "pre": pre,
            "post": post,
            "weights": weights(n_post, n_pre) * (rng.random((n_post, n_pre)) < 0.7),
            "weight_exp": int(rng.integers(-4, 8)),
            "sparse": bool(rng.random() < 0.3),
        }
        c.update(extra)
        conns.append(c)

    conn(f"{tag}in", names[0], n_in, sizes[0], num_message_bits=8 if graded else 0)
    for a in range(len(sizes) - 1):
        conn(names[a], names[a + 1], sizes[a], sizes[a + 1])
    if kind in ("recurrent", "delay", "reset", "graded"):
        conn(names[-1], names[0], sizes[-1], sizes[0])
        conn(names[0], names[0], sizes[0], sizes[0])
    if kind == "delay":
        conn(f"{tag}in", names[-1], n_in, sizes[-1], delays=rng.integers(0, 6, (sizes[-1], n_in)))
        conns[1]["delays"] = rng.integers(0, 4, conns[1]["weights"].shape)
    return {"populations": pops, "connections": conns, "inputs": {f"{tag}in": inp}}


def _merge(specs: list[dict]) -> dict:
    out: dict = {"populations": [], "connections": [], "inputs": {}}
    for s in specs:
        out["populations"] += s["populations"]
        out["connections"] += s["connections"]
        out["inputs"].update(s["inputs"])
    return out


@pytest.fixture(scope="module")
def lava_vs_numpy():
    reason = lava_available()
    if reason is not None:
        pytest.skip(f"Lava not available: {reason}")
    rng = np.random.default_rng(20240611)
    steps = 150
    kinds = ["feedforward", "recurrent", "delay", "reset", "graded"]
    specs = [_random_network(rng, f"n{i}", steps, kinds[i % len(kinds)]) for i in range(6)]
    spec = _merge(specs)
    lava = run_on_lava(spec, steps)
    ours = la.run_spec(spec, steps)
    return spec, lava, ours


@pytest.mark.lava
def test_lava_equals_numpy_every_step(lava_vs_numpy):
    spec, lava, ours = lava_vs_numpy
    for p in spec["populations"]:
        for k in "suv":
            key = f"{p['name']}/{k}"
            a, b = lava[key], ours[key]
            if not np.array_equal(a, b):
                t, n = np.argwhere(a != b)[0]
                pytest.fail(
                    f"{key} differs first at step {t}, neuron {n}: lava {a[t, n]}, numpy {b[t, n]}"
                )


@pytest.mark.lava
def test_lava_comparison_is_not_trivial(lava_vs_numpy):
    spec, lava, _ = lava_vs_numpy
    spikes = sum(int(lava[f"{p['name']}/s"].sum()) for p in spec["populations"])
    u_all = np.concatenate([lava[f"{p['name']}/u"].ravel() for p in spec["populations"]])
    v_all = np.concatenate([lava[f"{p['name']}/v"].ravel() for p in spec["populations"]])
    assert spikes > 100
    # the stress cases reach the 24-bit limits of u and v
    assert np.abs(u_all).max() > 2**22
    assert v_all.max() == la.V_MAX or v_all.min() == la.V_MIN
