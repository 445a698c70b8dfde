"""Spike encoders and decoders: hand-derived properties, seeds, shapes, errors."""

import numpy as np
import pytest

from nmcompiler import encoding as enc
from nmcompiler import ir
from nmcompiler.ir.errors import InputError, UsageError

X = np.array([[0.0, 0.1, 0.25, 0.5], [0.75, 0.9, 1.0, 0.333]])  # (B=2, n=4)


def test_rate_shape_dtype_and_seed():
    s = enc.rate(X, 50, seed=3)
    assert s.shape == (50, 2, 4) and s.dtype == np.uint8
    assert set(np.unique(s)) <= {0, 1}
    np.testing.assert_array_equal(s, enc.rate(X, 50, seed=3))
    np.testing.assert_array_equal(s, enc.rate(X, 50, seed=np.random.default_rng(3)))
    assert not np.array_equal(s, enc.rate(X, 50, seed=4))
    assert enc.rate(X[0], 7).shape == (7, 4)  # unbatched (T, n)


def test_rate_converges_to_x_times_max_rate():
    steps, max_rate = 20000, 0.5
    s = enc.rate(X, steps, max_rate=max_rate, seed=0)
    p = X * max_rate
    sigma = np.sqrt(p * (1 - p) / steps)
    est = enc.rate_decode(s, max_rate=max_rate)
    assert np.all(np.abs(est * max_rate - p) <= 5 * sigma + 1e-12)
    assert s[:, 0, 0].sum() == 0  # x = 0 never fires
    assert enc.rate(np.ones(3), 100).all()  # x = 1 at max_rate 1 fires every step


def test_poisson_counts():
    steps = 5000
    s = enc.poisson(X, steps, max_rate=3.0, seed=1)
    assert s.shape == (steps, 2, 4) and s.max() > 1  # graded payloads
    lam = X * 3.0
    est = enc.spike_count(s) / steps
    assert np.all(np.abs(est - lam) <= 5 * np.sqrt(lam / steps) + 1e-12)
    np.testing.assert_array_equal(s, enc.poisson(X, steps, max_rate=3.0, seed=1))


def test_ttfs_one_spike_monotone_and_decodes():
    steps = 101
    x = np.linspace(0, 1, 41)
    s = enc.ttfs(x, steps)
    assert s.shape == (steps, 41)
    counts = s.sum(axis=0)
    assert counts[0] == 0 and np.all(counts[1:] == 1)  # x = 0: silent, else one spike
    t = enc.first_spike_time(s)
    assert np.isinf(t[0]) and t[-1] == 0
    assert np.all(np.diff(t[1:]) <= 0)  # larger value, earlier spike
    np.testing.assert_allclose(enc.ttfs_decode(s), x, atol=0.5 / (steps - 1) + 1e-12)
    # min_value silences small values
    assert enc.ttfs(np.array([0.05, 0.5]), 10, min_value=0.1).sum(axis=0).tolist() == [0, 1]


def test_phase_reconstructs_to_2_pow_minus_k():
    rng = np.random.default_rng(0)
    x = rng.random((3, 50))
    for bits in (1, 4, 8, 12):
        s = enc.phase(x, 3 * bits, bits=bits)
        assert s.shape == (3 * bits, 3, 50) and set(np.unique(s)) <= {0, 1}
        xh = enc.phase_decode(s, bits=bits)
        assert np.all(xh <= x + 1e-12) and np.all(x - xh < 2.0**-bits)
        # periodic: every period repeats the first
        np.testing.assert_array_equal(s[:bits], s[bits:2 * bits])
        # weighted spikes decode the same
        w = enc.phase(x, 3 * bits, bits=bits, weighted=True)
        np.testing.assert_allclose(enc.phase_decode(w, bits=bits), xh)
        np.testing.assert_allclose(w, s * enc.phase_weights(3 * bits, bits)[:, None, None])


def test_phase_known_bits():
    # 0.625 = 0.101b: spikes in phases 0 and 2 of 3
    s = enc.phase(np.array([0.625, 1.0, 0.0]), 3, bits=3)
    assert s[:, 0].tolist() == [1, 0, 1]
    assert s[:, 1].tolist() == [1, 1, 1]  # 1.0 saturates at 1 - 2^-3
    assert s[:, 2].tolist() == [0, 0, 0]


def test_direct_repeats_values():
    d = enc.direct(np.array([[-1.5, 2.0]]), 4, scale=2.0)
    assert d.shape == (4, 1, 2) and d.dtype == np.float64
    np.testing.assert_array_equal(d, np.tile([[[-3.0, 4.0]]], (4, 1, 1)))


def test_decoders():
    s = np.zeros((5, 2, 3))
    s[2, 0, 1] = 1
    s[4, 0, 1] = 1
    s[0, 1, 2] = 1
    np.testing.assert_array_equal(enc.spike_count(s), [[0, 2, 0], [0, 0, 1]])
    t = enc.first_spike_time(s, no_spike=-1)
    np.testing.assert_array_equal(t, [[-1, 2, -1], [-1, -1, 0]])
    np.testing.assert_allclose(enc.rate_decode(s), [[0, 0.4, 0], [0, 0, 0.2]])


def test_encoded_input_drives_ir_simulate():
    # a relay: input -> IF (threshold 0.5, one-to-one, delay 0) repeats the input spikes
    net = ir.Network("relay")
    net.input("in", 4)
    net.population("out", 4, ir.IF(theta=0.5))
    net.connect("in", "out", ir.OneToOne(weight=1.0), delay=0)
    net.output("out")
    s = enc.rate(X, 30, max_rate=0.8, seed=2)
    res = ir.simulate(net, {"in": s})
    np.testing.assert_array_equal(res.outputs["out"], s)
    s1 = enc.ttfs(X[0], 30)  # unbatched (T, n)
    np.testing.assert_array_equal(ir.simulate(net, {"in": s1}).get("out"), s1)


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda: enc.rate(np.array([0.2, 1.5]), 10), InputError, "normalise"),
        (lambda: enc.ttfs(np.array([-0.2]), 10), InputError, "[0, 1]"),
        (lambda: enc.rate(np.array([np.nan]), 10), InputError, "NaN"),
        (lambda: enc.rate(np.array(["a"]), 10), InputError, "dtype"),
        (lambda: enc.rate(X, 0), UsageError, "steps"),
        (lambda: enc.rate(X, 10, max_rate=1.5), UsageError, "max_rate"),
        (lambda: enc.poisson(X, 10, max_rate=-1), UsageError, "max_rate"),
        (lambda: enc.phase(X, 10, bits=0), UsageError, "bits"),
        (lambda: enc.rate(X, 10, seed=-1), UsageError, "seed"),
        (lambda: enc.ttfs(X, 1), UsageError, "steps"),
        (lambda: enc.phase_decode(np.zeros((3, 2)), bits=8), InputError, "period"),
        (lambda: enc.poisson(X, 10, max_rate=1000.0), UsageError, "dtype"),
    ],
)
def test_errors_name_the_object_and_hint(call, err, words):
    with pytest.raises(err) as info:
        call()
    assert words in str(info.value)
    assert info.value.hint and info.value.obj
