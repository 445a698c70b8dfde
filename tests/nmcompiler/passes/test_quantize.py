"""Tests of the quantize pass: formats, error bounds, exactness, errors, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pass_helpers import variant

from nmcompiler import ir
from nmcompiler.ir.errors import FitError
from nmcompiler.passes.quantize import dequantize, loihi_weight_mantissas, quantize


def _net(seed=0, n_in=12, n_h=10, n_o=4):
    rng = np.random.default_rng(seed)
    net = ir.Network("q")
    net.input("in", n_in)
    net.population("h", n_h, ir.LIF(alpha_u=0.6, lam=0.9, theta=1.0,
                                    bias=rng.uniform(0, 0.05, n_h)))
    net.population("o", n_o, ir.IF(theta=1.5))
    net.population("r", 2, ir.LI(lam=0.95))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0.3, 0.5, (n_h, n_in))), delay=1)
    net.connect("h", "o", ir.Sparse.from_dense(
        rng.normal(0.4, 0.6, (n_o, n_h)) * (rng.random((n_o, n_h)) < 0.7)), delay=1)
    net.connect("in", "o", ir.Dense(weight=np.abs(rng.normal(0.2, 0.1, (n_o, n_in)))),
                delay=2)
    net.connect("o", "r", ir.Dense(weight=rng.normal(size=(2, n_o))), delay=1)
    net.output("o")
    net.output("r")
    return net


def _representable():
    """Values on the Loihi grid: weights k/4, thresholds, biases, decays k/4096."""
    net = ir.Network("exact")
    net.input("in", 3)
    net.population("a", 3, ir.LIF(alpha_u=(4095 - 1023) / 4096, lam=(4096 - 256) / 4096,
                                  theta=2.0, bias=np.array([0.25, 0.0, -0.5])))
    net.population("b", 2, ir.IF(theta=1.0))
    net.connect("in", "a", ir.Dense(weight=np.array([[1.0, -0.5, 0.25], [0.0, 2.0, 1.5],
                                                     [-1.0, 0.75, 0.5]])), delay=1)
    net.connect("a", "b", ir.OneToOne(weight=0.5) if False else
                ir.Dense(weight=np.array([[0.5, 0.25, 1.0], [1.0, 1.0, 0.75]])), delay=1)
    net.output("b")
    return net


def _same_arrays(a, b):
    for name, p in a.populations.items():
        q = b.populations[name]
        for f in ("theta", "bias", "v_reset", "alpha_u", "lam"):
            np.testing.assert_array_equal(np.asarray(getattr(p.model, f)),
                                          np.asarray(getattr(q.model, f)), err_msg=f)
    for name, p in a.projections.items():
        np.testing.assert_array_equal(np.asarray(p.conn.weight),
                                      np.asarray(b.projections[name].conn.weight))


@pytest.mark.parametrize("tname", ["loihi", "spinnaker"])
def test_representable_values_round_trip_exactly(tname, request):
    tgt = request.getfixturevalue(tname)
    net = _representable()
    q, rep = quantize(net, tgt)
    _same_arrays(net, dequantize(q))
    assert rep["summary"]["max_weight_rel_rms_error"] == 0.0
    assert rep["summary"]["max_threshold_rel_error"] == 0.0
    assert rep["behaviour"]["summary"]["entries_agree"] == 1.0


def test_loihi_formats_and_metadata(loihi):
    net = _net()
    q, rep = quantize(net, loihi)
    meta = q.metadata["quantization"]
    json.dumps(meta)  # JSON-serialisable
    json.dumps(rep)
    assert meta["family"] == "loihi"
    for name, p in q.populations.items():
        mp = meta["populations"][name]
        k = mp["scale"]
        assert k > 0
        if p.model.spiking:
            assert float(p.model.theta) % 64 == 0 and 1 <= p.model.theta / 64 < 2**17
            assert mp["vth"] == int(p.model.theta) // 64
        du, dv = np.asarray(mp["du"]), np.asarray(mp["dv"])
        assert np.all((0 <= du) & (du <= 4095)) and np.all((0 <= dv) & (dv <= 4095))
        np.testing.assert_array_equal(p.model.alpha_u, (4095 - du) / 4096)
        np.testing.assert_array_equal(p.model.lam, (4096 - dv) / 4096)
        bias = np.asarray(p.model.bias)
        np.testing.assert_array_equal(
            bias, np.asarray(mp["bias_mant"]) * 2.0 ** np.asarray(mp["bias_exp"]))
        assert np.all(np.abs(mp["bias_mant"]) <= 4096)
    for name, p in q.projections.items():
        m, e = loihi_weight_mantissas(q, name)
        mode = meta["projections"][name]["sign_mode"]
        assert e == 0  # loihi.toml gives the exponent range [0, 0]
        if mode == "mixed":
            assert np.all(m % 2 == 0) and m.min() >= -256 and m.max() <= 254
        else:
            assert np.abs(m).max() <= 255
        np.testing.assert_array_equal(np.asarray(p.conn.weight).reshape(-1),
                                      m.reshape(-1) * 64.0)


def test_error_bounds_are_stated(loihi, spinnaker):
    net = _net(1)
    for tgt, bits in ((loihi, 7), (spinnaker, 15)):
        q, rep = quantize(net, tgt)
        for name, r in rep["projections"].items():
            # at most half a mantissa step (in float units: unit / scale)
            step = 2.0 if r["sign_mode"] == "mixed" and tgt.name == "loihi" else 1.0
            assert r["clipped"] == 0
            w = np.asarray(net.projections[name].conn.weight).reshape(-1)
            wq = np.asarray(q.projections[name].conn.weight).reshape(-1) / r["scale"]
            half = step / 2 * r["unit"] / r["scale"]
            assert np.abs(wq - w).max() <= half * (1 + 1e-9)
            if rep["populations"][r["post"]]["bound_by"] == f"weights of '{name}'":
                top = 254 if step == 2 else (255 if tgt.name == "loihi" else 2**bits - 1)
                assert r["max_rel_error"] <= step / 2 / top * 1.01, (tgt.name, name)
            rms = np.sqrt(np.sum((wq - w) ** 2) / np.sum(w * w))
            assert abs(rms - r["rel_rms_error"]) < 1e-12
        assert rep["summary"]["max_threshold_rel_error"] < 1e-3
        beh = rep["behaviour"]
        assert beh["steps"] == 200 and beh["summary"]["entries_agree"] >= 0.8
        assert "voltage_rel_error" in beh["populations"]["r"]


def test_spinnaker_s16_15_fixed_point(spinnaker):
    q, rep = quantize(_net(2), spinnaker)
    meta = q.metadata["quantization"]
    assert meta["family"] == "fixed" and meta["state_fraction_bits"] == 15
    for p in q.projections.values():
        w = np.asarray(p.conn.weight)
        assert np.all(w == np.rint(w)) and np.abs(w).max() <= 2**15
    for p in q.populations.values():
        lam = np.asarray(p.model.lam)
        assert np.all(lam * 2**15 == np.rint(lam * 2**15))


def test_unsupported_features_fail_with_names(loihi):
    net = ir.Network("soft")
    net.input("in", 2)
    net.population("s", 2, ir.IF(theta=1.0, reset=ir.Reset.SOFT))
    net.connect("in", "s", ir.OneToOne(weight=1.0))
    with pytest.raises(FitError) as ei:
        quantize(net, loihi)
    e = ei.value
    assert "population 's'" in str(e) and "soft" in str(e) and "loihi" in str(e)
    assert e.need == "soft" and e.limit == ["hard"] and e.hint


def test_leak_on_leakless_target_fails():
    speck_like = variant("spinnaker", formats={"decay_bits": 0, "current_bits": 0,
                                               "weight_bits": 8, "voltage_bits": 16})
    net = ir.Network("leak")
    net.input("in", 2)
    net.population("l", 2, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "l", ir.OneToOne(weight=1.0))
    with pytest.raises(FitError) as ei:
        quantize(net, speck_like)
    e = ei.value
    assert "population 'l'" in str(e) and "leak" in str(e) and "IF" in e.hint
    ok = ir.Network("if")
    ok.input("in", 2)
    ok.population("i", 2, ir.IF(theta=1.0))
    ok.connect("in", "i", ir.OneToOne(weight=np.array([0.3, -0.2])))
    q, rep = quantize(ok, speck_like)
    w = np.asarray(q.projections["in->i"].conn.weight)
    assert np.abs(w).max() <= 127 and rep["projections"]["in->i"]["weight_exp"] == 0


def test_pools_become_depthwise_conv(spinnaker):
    net = ir.Network("pool")
    net.input("in", shape=(2, 4, 4))
    net.population("p", shape=(2, 2, 2), model=ir.IF(theta=0.6))
    net.connect("in", "p", ir.AvgPool2d(kernel=(2, 2)))
    net.output("p")
    q, rep = quantize(net, spinnaker)
    assert isinstance(q.projections["in->p"].conn, ir.Conv2d)
    assert rep["pools_as_depthwise_conv"] == ["in->p"]
    assert rep["behaviour"]["summary"]["entries_agree"] == 1.0


def test_quantize_is_pure_and_deterministic(loihi):
    net = _net(3)
    w0 = net.projections["in->h"].conn.weight.copy()
    a, ra = quantize(net, loihi, seed=4)
    b, rb = quantize(net, loihi, seed=4)
    assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)
    assert a.metadata == b.metadata
    np.testing.assert_array_equal(net.projections["in->h"].conn.weight, w0)
    assert "quantization" not in net.metadata
    _same_arrays(a, b)


def test_large_network_skips_behaviour_check(loihi):
    q, rep = quantize(_net(), loihi, check_max_neurons=5)
    assert "skipped" in rep["behaviour"]


# ----------------------------------------------------------------- threshold comparison
def _cmp_net(ge: bool, seed: int = 0):
    """IF neurons with integer weights and biases: v lands exactly on theta often, so
    ``>`` and ``>=`` give different spikes."""
    rng = np.random.default_rng(seed)
    net = ir.Network("cmp")
    net.input("in", 6)
    net.population("h", 30, ir.IF(theta=4.0, bias=1.0, fire_at_threshold=ge))
    net.population("o", 10, ir.IF(theta=3.0, fire_at_threshold=ge))
    net.connect("in", "h", ir.Dense(weight=rng.integers(0, 3, (30, 6)).astype(float)))
    w_hh = np.where(rng.random((30, 30)) < 0.2, rng.integers(-2, 3, (30, 30)), 0)
    net.connect("h", "h", ir.Sparse.from_dense(w_hh.astype(float)), delay=1)
    net.connect("h", "o", ir.Dense(weight=rng.integers(0, 2, (10, 30)).astype(float)))
    net.output("h")
    net.output("o")
    x = {"in": (rng.random((60, 6)) < 0.3).astype(float)}
    return net, x


@pytest.mark.parametrize("ge", [False, True], ids=["strict", "at_threshold"])
@pytest.mark.parametrize("tname", ["emulator", "loihi", "spinnaker", "speck2f"])
def test_quantized_network_fires_where_the_model_fires(tname, ge):
    """Both comparison modes on every chip family: the quantised network (in the chip's
    own comparison, threshold moved by one LSB where needed) fires exactly where the float
    model fires, in ir.simulate and in the emulator's integer arithmetic of the family."""
    from nmcompiler.backends.emulator import emulate
    from nmcompiler.targets import load_target

    tgt = load_target(tname)
    net, x = _cmp_net(ge)
    other = ir.simulate(_cmp_net(not ge)[0], x)
    model = ir.simulate(net, x)
    assert any(np.any(model.outputs[k] != other.outputs[k]) for k in ("h", "o"))
    qnet, rep = quantize(net, tgt)
    chip = {"loihi": ">", "spinnaker": ">=", "speck2f": ">="}.get(tname)
    for name in ("h", "o"):
        c = rep["populations"][name]["comparison"]
        assert c["exact"] and c["error_lsb"] == 0, c
        m = qnet.populations[name].model
        if chip is None:
            assert m.fire_at_threshold == ge and "none" in c["action"]
        else:
            assert m.fire_at_threshold == (chip == ">=")
            if (chip == ">=") != ge:
                # Loihi: one vth step (64 LSB) down; SpiNNaker / Speck: one LSB up
                assert c["shift_lsb"] == ([-64, -64] if chip == ">" else [1, 1])
    assert rep["summary"]["inexact_threshold_comparisons"] == []
    assert rep["behaviour"]["summary"]["entries_agree"] == 1.0
    quant = ir.simulate(qnet, x)
    emu = emulate(qnet, x, target=tgt)
    for k in ("h", "o"):
        assert model.outputs[k].sum() > 0
        np.testing.assert_array_equal(quant.outputs[k], model.outputs[k], err_msg=k)
        np.testing.assert_array_equal(emu.outputs[k], model.outputs[k], err_msg=k)
    if tname == "loihi":
        vth = qnet.metadata["quantization"]["populations"]["h"]["vth"]
        assert vth * 64 == qnet.populations["h"].model.theta
    _same_arrays(net, dequantize(qnet))  # the model's threshold and comparison come back
    assert dequantize(qnet).populations["h"].model.fire_at_threshold == ge


def test_inexact_comparisons_are_reported(loihi):
    from nmcompiler.targets import load_target

    def one(model, tgt):
        net = ir.Network("one")
        net.input("in", 2)
        net.population("p", 2, model)
        net.connect("in", "p", ir.Dense(weight=np.array([[1.0, 2.0], [1.0, 1.0]])))
        net.output("p")
        return quantize(net, tgt)

    # leaky Loihi neuron, model ">=": v does not move on a grid and vth steps are 64 LSB,
    # so v > t - 1 cannot be written: the threshold stays, the chip fires 1 LSB late
    q, rep = one(ir.LIF(lam=0.5, theta=3.0, fire_at_threshold=True), loihi)
    c = rep["populations"]["p"]["comparison"]
    assert (c["model"], c["chip"], c["exact"], c["error_lsb"]) == (">=", ">", False, 1)
    assert c["grid"] is None and "later" in c["effect"]
    assert rep["summary"]["inexact_threshold_comparisons"] == ["p"]
    k = rep["populations"]["p"]["scale"]
    assert rep["populations"]["p"]["threshold_rel_error"] == pytest.approx(1 / k / 3.0)
    # soft reset on Speck (">="), model ">": moving the threshold would change the reset
    q, rep = one(ir.IF(theta=3.0, reset=ir.Reset.SOFT), load_target("speck2f"))
    c = rep["populations"]["p"]["comparison"]
    assert c["shift_lsb"] == [0, 0] and "soft reset" in c["action"]
    assert q.populations["p"].model.fire_at_threshold  # the chip's comparison, stated
    # IF neuron on Loihi with a bias of 1/4: the scale keeps v on a grid of 64 LSB and
    # more, so lowering vth by one step is exact
    q, rep = one(ir.IF(theta=3.0, bias=0.25, fire_at_threshold=True), loihi)
    c = rep["populations"]["p"]["comparison"]
    assert c["exact"] and c["grid"] % 64 == 0 and c["shift_lsb"] == [-64, -64]
