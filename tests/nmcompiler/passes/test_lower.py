"""Tests of the lower pass: retiming, expansion, fan-in split, long delays."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pass_helpers import variant

from nmcompiler import ir
from nmcompiler.ir.errors import FitError, RetimingError
from nmcompiler.passes.lower import (
    conv_to_sparse,
    lower,
    pool_to_sparse,
    retime,
)


def _spikes(steps, n, seed=0, rate=0.3):
    return (np.random.default_rng(seed).random((steps, n)) < rate).astype(float)


def _pad(x, k):
    return np.concatenate([x, np.zeros((k,) + x.shape[1:])])


def _ff_net():
    rng = np.random.default_rng(1)
    net = ir.Network("ff")
    net.input("in", 10)
    net.population("a", 12, ir.LIF(lam=0.8, alpha_u=0.5, theta=1.0))
    net.population("b", 8, ir.IF(theta=1.5, reset=ir.Reset.SOFT))
    net.population("c", 5, ir.LIF(lam=0.9, theta=1.0))
    net.population("r", 3, ir.LI(lam=0.9))
    net.connect("in", "a", ir.Dense(weight=rng.normal(1.0, 1.0, (12, 10))), delay=0)
    net.connect("a", "b", ir.Dense(weight=rng.normal(0.5, 1.0, (8, 12))), delay=0)
    net.connect("in", "b", ir.Dense(weight=rng.normal(0.5, 1.0, (8, 10))), delay=2)
    net.connect("b", "c", ir.Dense(weight=rng.normal(0.8, 1.0, (5, 8))), delay=0)
    net.connect("c", "r", ir.Dense(weight=rng.normal(size=(3, 5))), delay=0)
    net.output("c")
    net.output("r")
    net.probe("a", "v")
    return net


def test_retimed_feedforward_is_original_shifted(loihi):
    net = _ff_net()
    low, rep = lower(net, loihi)
    ir.verify(low, min_delay=1)
    shift = rep["output_shift"]
    assert shift == {"c": 3, "r": 4}
    assert rep["retiming"]["outputs"]["c"]["statement"].startswith("output 'c' is shifted by 3")
    x = _spikes(40, 10)
    ref = ir.simulate(net, {"in": x})
    kmax = max(shift.values())
    got = ir.simulate(low, {"in": _pad(x, kmax)})
    for name, k in shift.items():
        np.testing.assert_array_equal(got.get(name)[k:k + 40], ref.get(name))
        assert not got.get(name)[:k].any()
    ka = rep["retiming"]["probes"]["a.v"]
    np.testing.assert_array_equal(got.get("a.v")[ka:ka + 40], ref.get("a.v"))
    assert ref.get("c").sum() > 0


def test_retiming_loop_that_fits_keeps_timing(loihi):
    net = ir.Network("loop")
    net.input("in", 4)
    net.population("a", 4, ir.LIF(lam=0.9, theta=1.0))
    net.population("b", 4, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "a", ir.OneToOne(weight=1.5), delay=0)
    net.connect("a", "b", ir.OneToOne(weight=1.2), delay=0)
    net.connect("b", "a", ir.OneToOne(weight=0.6), delay=2)
    net.output("b")
    low, rep = lower(net, loihi)
    assert rep["retiming"]["lags"] == {"a": 1, "b": 2}
    assert [p.delay for p in low.projections.values()] == [1, 1, 1]
    x = _spikes(30, 4, seed=3)
    ref = ir.simulate(net, {"in": x}).get("b")
    got = ir.simulate(low, {"in": _pad(x, 2)}).get("b")
    np.testing.assert_array_equal(got[2:32], ref)


def _short_loop():
    net = ir.Network("short")
    net.input("in", 2)
    net.population("a", 2, ir.LIF(theta=1.0))
    net.population("b", 2, ir.LIF(theta=1.0))
    net.connect("in", "a", ir.OneToOne(weight=2.0), delay=1)
    net.connect("a", "b", ir.OneToOne(weight=2.0), delay=0, name="ab")
    net.connect("b", "a", ir.OneToOne(weight=0.5), delay=1, name="ba")
    net.output("b")
    return net


def test_retiming_error_names_loop_need_limit_hint(loihi):
    with pytest.raises(RetimingError) as ei:
        lower(_short_loop(), loihi)
    err = ei.value
    msg = str(err)
    assert "a -> b -> a" in msg or "b -> a -> b" in msg
    assert err.need == 2 and err.limit == 1
    assert "loihi" in msg and "force=True" in err.hint and "'ab'" in err.hint
    assert "from 1 to 2 steps" in err.hint


def test_retiming_force_reports_loop_timing(loihi):
    low, rep = lower(_short_loop(), loihi, force=True)
    loops = rep["retiming"]["forced_loops"]
    assert len(loops) == 1
    assert loops[0]["projections"] == ["ab"]
    assert (loops[0]["delay_before"], loops[0]["delay_after"]) == (1, 2)
    assert low.projections["ab"].delay == 1
    ir.verify(low, min_delay=1)


def test_self_loop_too_short_is_named():
    net = ir.Network("self")
    net.population("a", 2, ir.LIF(theta=1.0))
    net.connect("a", "a", ir.Dense(weight=np.eye(2)), delay=1)
    with pytest.raises(RetimingError) as ei:
        retime(net, 2, target_name="slow")  # needs 2 per edge, has 1
    assert "loop a -> a" in str(ei.value) and ei.value.need == 2 and ei.value.limit == 1


def test_retiming_bias_population_is_reported(loihi):
    net = ir.Network("bias")
    net.input("in", 2)
    net.population("a", 2, ir.LIF(theta=1.0, bias=0.1))
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=0)
    _, rep = lower(net, loihi)
    # the lagged bias starts on time from a bias source (tests/.../test_retime_exact.py)
    assert rep["retiming"]["inexact_populations"] == []
    assert rep["retiming"]["bias_sources"] == {"a": "bias_source"}


@pytest.mark.parametrize(
    "geom",
    [
        dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
        dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
        dict(stride=(2, 2), padding=(2, 2), dilation=(2, 1), groups=4),
    ],
)
def test_conv_expansion_is_exact(geom, loihi):
    rng = np.random.default_rng(2)
    c_in, h, w, c_out = 4, 9, 11, 8
    weight = rng.integers(-3, 4, (c_out, c_in // geom["groups"], 3, 3)).astype(float)
    conv = ir.Conv2d(weight=weight, **geom)
    out_shape = ir.conv_output_shape((c_in, h, w), conv)
    pool_in = out_shape
    pool = ir.SumPool2d(kernel=(2, 2))
    pool_out = ir.pool_output_shape(pool_in, pool)
    avg = ir.AvgPool2d(kernel=(2, 2), stride=(1, 1), padding=(1, 1))
    avg_out = ir.pool_output_shape(pool_in, avg)
    net = ir.Network("cnn")
    net.input("in", shape=(c_in, h, w))
    net.population("c1", shape=out_shape, model=ir.IF(theta=2.0))
    net.population("p1", shape=pool_out, model=ir.IF(theta=1.0))
    net.population("p2", shape=avg_out, model=ir.IF(theta=0.2))
    net.connect("in", "c1", conv, delay=1)
    net.connect("c1", "p1", pool, delay=1)
    net.connect("c1", "p2", avg, delay=1)
    for p in ("c1", "p1", "p2"):
        net.output(p)
    low, rep = lower(net, loihi)
    assert {e["kind"] for e in rep["expanded"]} == {"Conv2d", "SumPool2d", "AvgPool2d"}
    assert all(isinstance(p.conn, ir.Sparse) for p in low.projections.values())
    x = _spikes(12, c_in * h * w, seed=5, rate=0.5)
    a, b = ir.simulate(net, {"in": x}), ir.simulate(low, {"in": x})
    for p in ("c1", "p1", "p2"):
        np.testing.assert_array_equal(a.get(p), b.get(p))
    assert a.get("c1").sum() > 0
    # float weights: same input to every neuron
    s = x[:3]
    wf = rng.normal(size=weight.shape)
    cf = ir.Conv2d(weight=wf, **geom)
    sp = conv_to_sparse(cf, (c_in, h, w))
    n2 = ir.Network("x")
    n2.input("in", shape=(c_in, h, w))
    n2.population("o", shape=out_shape, model=ir.IF())
    n2.connect("in", "o", cf)
    ref = ir.simulate.__globals__["propagate"](n2, n2.projections["in->o"], s)
    np.testing.assert_allclose(s @ sp.to_dense().T, ref, atol=1e-12)
    sp_pool = pool_to_sparse(pool, pool_in)
    assert sp_pool.n_synapses() == int(np.prod(pool_out)) * 4


def test_conv_expansion_scales():
    # NIR-paper-sized CNN layer and a bigger one, vectorised
    rng = np.random.default_rng(0)
    conv = ir.Conv2d(weight=rng.normal(size=(64, 32, 3, 3)), padding=(1, 1))
    t = time.perf_counter()
    sp = conv_to_sparse(conv, (32, 32, 32))
    dt = time.perf_counter() - t
    expect = 64 * 32 * sum(
        (32 - abs(di)) * (32 - abs(dj)) for di in (-1, 0, 1) for dj in (-1, 0, 1))
    assert sp.n_synapses() == expect
    assert dt < 20


def test_speck_like_target_keeps_conv_and_checks_limits():
    tgt = variant(
        "loihi",
        capabilities={"convolution_hardware": True},
        convolution={"max_kernel_size": 16, "strides": [1, 2, 4, 8], "max_padding": 7,
                     "pooling_sizes": [1, 2, 4], "max_input_size": [128, 128],
                     "max_output_size": [64, 64], "max_channels": 1024},
    )
    net = ir.Network("c")
    net.input("in", shape=(2, 16, 16))
    conv = ir.Conv2d(weight=np.ones((4, 2, 3, 3)), stride=(3, 3))
    net.population("o", shape=ir.conv_output_shape((2, 16, 16), conv), model=ir.IF())
    net.connect("in", "o", conv)
    with pytest.raises(FitError) as ei:
        lower(net, tgt)
    assert "'in->o'" in str(ei.value) and "stride" in str(ei.value)
    assert ei.value.limit == (1, 2, 4, 8) and ei.value.hint
    ok = ir.Network("c")
    ok.input("in", shape=(2, 16, 16))
    conv = ir.Conv2d(weight=np.ones((4, 2, 3, 3)), stride=(2, 2))
    ok.population("o", shape=ir.conv_output_shape((2, 16, 16), conv), model=ir.IF())
    ok.connect("in", "o", conv)
    low, rep = lower(ok, tgt)
    assert isinstance(low.projections["in->o"].conn, ir.Conv2d) and rep["expanded"] == []


def _wide_net(n_pre=20):
    rng = np.random.default_rng(4)
    net = ir.Network("wide")
    net.input("in", n_pre)
    net.population("h", 3, ir.LIF(lam=0.9, theta=3.0))
    net.connect("in", "h", ir.Dense(weight=rng.integers(-3, 4, (3, n_pre)) * 0.5), delay=1)
    net.output("h")
    return net


def test_fan_in_split_is_exact_up_to_shift():
    tgt = variant("loihi2", core_budget={"input_axons": 8})
    net = _wide_net()
    low, rep = lower(net, tgt)
    split = rep["fan_in"]["split"][0]
    assert split["population"] == "h" and split["chunks"] == 3 and split["quantum"] == 0.5
    from nmcompiler.passes.lower import fan_in

    for p in low.populations:
        assert fan_in(low, p).max() <= 8
    k = rep["output_shift"]["h"]
    assert k == 1
    x = _spikes(40, 20, seed=7, rate=0.5)
    ref = ir.simulate(net, {"in": x}).get("h")
    got = ir.simulate(low, {"in": _pad(x, k)}).get("h")
    np.testing.assert_array_equal(got[k:k + 40], ref)
    assert ref.sum() > 0


def test_fan_in_without_graded_spikes_is_a_fit_error():
    tgt = variant("loihi", core_budget={"input_axons": 8})
    net = _wide_net()
    need = int(np.count_nonzero(net.projections["in->h"].conn.weight, axis=1).max())
    with pytest.raises(FitError) as ei:
        lower(net, tgt)
    err = ei.value
    assert "population 'h'" in str(err) and err.need == need > 8 and err.limit == 8
    assert f"{need} input axons" in str(err)
    assert "graded" in err.hint and "fan-in" in err.hint


def test_long_delays_are_relayed_exactly(loihi):
    net = ir.Network("slow")
    net.input("in", 3)
    net.population("a", 3, ir.LIF(theta=0.5))
    net.population("b", 3, ir.LIF(theta=0.5))
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=1)
    net.connect("a", "b", ir.Dense(weight=np.eye(3)), delay=20)
    net.output("b")
    low, rep = lower(net, loihi)
    assert len(rep["delays"]["relays"]) == 2
    assert all(1 <= p.delay <= 8 for p in low.projections.values())
    x = _spikes(50, 3, seed=1)
    np.testing.assert_array_equal(ir.simulate(low, {"in": x}).get("b"),
                                  ir.simulate(net, {"in": x}).get("b"))
    with pytest.raises(FitError) as ei:
        lower(net, loihi, long_delays="error")
    assert "'a->b'" in str(ei.value) and ei.value.need == 20 and ei.value.limit == 8
    assert "relay" in ei.value.hint


def test_per_synapse_delays_split_when_target_lacks_them(loihi2):
    net = ir.Network("psd")
    net.input("in", 4)
    net.population("a", 4, ir.LIF(theta=0.5))
    delays = np.array([[0, 3, 12, 0], [1, 1, 1, 1], [2, 0, 0, 9], [0, 0, 0, 0]])
    net.connect("in", "a", ir.Dense(weight=np.ones((4, 4)) * 0.3, delays=delays), delay=1)
    net.output("a")
    low, rep = lower(net, loihi2)
    for p in low.projections.values():
        assert getattr(p.conn, "delays", None) is None and 1 <= p.delay <= 8
    x = _spikes(40, 4, seed=2)
    np.testing.assert_array_equal(ir.simulate(low, {"in": x}).get("a"),
                                  ir.simulate(net, {"in": x}).get("a"))


def test_lower_is_pure_and_deterministic(loihi):
    net = _ff_net()
    before = {k: p.delay for k, p in net.projections.items()}
    a, ra = lower(net, loihi, seed=1)
    b, rb = lower(net, loihi, seed=1)
    assert ra == rb
    assert {k: p.delay for k, p in net.projections.items()} == before
    assert [(k, p.delay) for k, p in a.projections.items()] == \
        [(k, p.delay) for k, p in b.projections.items()]
