"""The reference simulator against hand-derived expectations (docs/architecture.md#ir-semantics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nmcompiler.ir import (
    IF,
    LI,
    LIF,
    RF,
    AvgPool2d,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Reset,
    Sparse,
    SumPool2d,
    simulate,
)
from nmcompiler.ir.errors import InputError


def bias_driven(model, steps: int, n: int = 1, probes=("spikes", "v")) -> dict:
    net = Network("t")
    net.population("p", n, model)
    for var in probes:
        net.probe("p", var)
    res = simulate(net, steps=steps)
    return {var: res.get(f"p.{var}") for var in probes}


@pytest.mark.parametrize("theta,current", [(1.0, 0.3), (1.0, 0.25), (5.0, 1.0), (2.0, 0.7)])
def test_if_constant_input_fires_every_ceil_theta_over_i(theta, current):
    steps = 60
    out = bias_driven(IF(theta=theta, bias=current, fire_at_threshold=True), steps)
    spikes = np.flatnonzero(out["spikes"][:, 0])
    period = math.ceil(theta / current - 1e-12)
    assert spikes.size >= 3
    assert np.all(np.diff(spikes) == period)
    assert spikes[0] == period - 1  # the first spike after `period` steps of integration


def test_strict_threshold_needs_to_exceed_theta():
    # with the default strict test, v = theta exactly does not fire
    out = bias_driven(IF(theta=1.0, bias=0.25), 20)
    spikes = np.flatnonzero(out["spikes"][:, 0])
    assert np.all(np.diff(spikes) == 5)  # floor(1/0.25) + 1


def test_soft_reset_keeps_residual():
    out = bias_driven(IF(theta=1.0, bias=0.375, reset=Reset.SOFT), 12)
    s, v = out["spikes"][:, 0], out["v"][:, 0]
    # v* = .375, .75, 1.125 -> spike, v = .125; .5, .875, 1.25 -> spike, v = .25;
    # .625, 1.0 (not above theta), 1.375 -> spike, v = .375; .75, 1.125 -> spike
    assert np.flatnonzero(s).tolist() == [2, 5, 8, 10]
    assert v[2] == 0.125 and v[5] == 0.25 and v[8] == 0.375 and v[10] == 0.125
    hard = bias_driven(IF(theta=1.0, bias=0.3, reset=Reset.HARD, v_reset=-0.5), 8)
    np.testing.assert_allclose(hard["v"][3, 0], -0.5)


def test_no_reset_keeps_integrating():
    out = bias_driven(IF(theta=1.0, bias=0.3, reset=Reset.NONE), 6)
    np.testing.assert_allclose(out["v"][:, 0], 0.3 * np.arange(1, 7))
    assert out["spikes"][:, 0].tolist() == [0, 0, 0, 1, 1, 1]


def test_cuba_lif_matches_hand_recurrence():
    alpha, lam, w = 0.5, 0.75, 1.0
    net = Network("cuba")
    net.input("x", 1)
    net.population("p", 1, LIF(alpha_u=alpha, lam=lam, theta=10.0))
    net.connect("x", "p", Dense(weight=np.array([[w]])), delay=1)
    net.probe("p", "u")
    net.probe("p", "v")
    x = np.zeros((6, 1))
    x[0] = 1.0
    res = simulate(net, {"x": x})
    u = v = 0.0
    us, vs = [], []
    for t in range(6):
        a = x[t - 1, 0] * w if t >= 1 else 0.0
        u = alpha * u + a
        v = lam * v + u
        us.append(u)
        vs.append(v)
    np.testing.assert_allclose(res.get("p.u")[:, 0], us)
    np.testing.assert_allclose(res.get("p.v")[:, 0], vs)


def test_resonate_and_fire_answers_most_at_its_own_frequency():
    own = 0.05  # cycles per step
    freqs = np.array([0.02, 0.035, 0.05, 0.065, 0.08])
    net = Network("rf")
    net.input("x", len(freqs))
    net.population("r", len(freqs), RF.from_frequency(tau=40.0, cycles_per_step=own, theta=1e9))
    net.connect("x", "r", OneToOne(weight=0.05), delay=1)
    net.probe("r", "v")
    t = np.arange(400)[:, None]
    drive = np.cos(2 * np.pi * freqs[None, :] * t)
    amp = np.abs(simulate(net, {"x": drive}).get("r.v"))[200:].max(axis=0)
    assert int(np.argmax(amp)) == 2
    assert amp[2] > 2 * amp[0] and amp[2] > 2 * amp[-1]


def test_resonate_and_fire_spikes_on_real_part():
    out = bias_driven(RF(lam=complex(0.0, 0.9), theta=0.5, bias=1.0), 4)
    # v*0 = 1 -> spike (hard reset to 0); then again 1 every step
    assert out["spikes"][:, 0].tolist() == [1, 1, 1, 1]


def test_graded_payloads():
    net = Network("g")
    net.input("x", 1)
    net.population("p", 1, IF(theta=1.0, graded=True, graded_max=3, reset=Reset.SOFT))
    net.connect("x", "p", Dense(weight=np.ones((1, 1))), delay=0)
    net.probe("p", "spikes")
    net.probe("p", "v")
    x = np.array([[2.5], [0.0], [7.0], [0.2], [0.0]])
    res = simulate(net, {"x": x})
    # 2.5 -> payload 2, residual 0.5; 0.5 stays; 7.5 -> capped at 3, residual 4.5; 4.7 -> 3
    assert res.get("p.spikes")[:, 0].tolist() == [2, 0, 3, 3, 1]
    np.testing.assert_allclose(res.get("p.v")[:, 0], [0.5, 0.5, 4.5, 1.7, 0.7])


def test_refractory_period_silences_and_holds():
    out = bias_driven(IF(theta=0.5, bias=1.0, refractory=3), 12)
    assert np.flatnonzero(out["spikes"][:, 0]).tolist() == [0, 4, 8]
    assert np.all(out["v"][1:4, 0] == 0.0)


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_delay_shifts_spike_train_exactly(d):
    rng = np.random.default_rng(d)
    x = (rng.random((40, 6)) < 0.3).astype(float)
    net = Network("delay")
    net.input("x", 6)
    net.population("relay", 6, IF(theta=0.5))
    net.connect("x", "relay", OneToOne(weight=1.0), delay=d)
    net.output("relay")
    out = simulate(net, {"x": x}).get("relay")
    np.testing.assert_array_equal(out[d:], x[:-d])
    assert not out[:d].any()


def test_zero_delay_chain_answers_within_the_same_step():
    net = Network("chain")
    net.input("x", 3)
    prev = "x"
    for k in range(4):
        net.population(f"l{k}", 3, IF(theta=0.5))
        net.connect(prev, f"l{k}", OneToOne(weight=1.0), delay=0)
        prev = f"l{k}"
    net.output(prev)
    x = np.zeros((5, 3))
    x[2, 1] = 1
    np.testing.assert_array_equal(simulate(net, {"x": x}).get(prev), x)


def test_stochastic_firing_is_seeded_and_has_the_right_rate():
    n, steps = 2000, 50
    model = LIF(lam=0.0, theta=1.0, bias=1.2, reset=Reset.NONE, noise=0.4, seed=7)
    a = bias_driven(model, steps, n=n, probes=("spikes",))["spikes"]
    b = bias_driven(model, steps, n=n, probes=("spikes",))["spikes"]
    np.testing.assert_array_equal(a, b)
    c = bias_driven(LIF(lam=0.0, theta=1.0, bias=1.2, reset=Reset.NONE, noise=0.4, seed=8),
                    steps, n=n, probes=("spikes",))["spikes"]
    assert not np.array_equal(a, c)
    expected = 0.5 * (1 + math.erf((1.2 - 1.0) / (0.4 * math.sqrt(2))))
    assert abs(a.mean() - expected) < 0.01


def test_li_readout_output_is_voltage():
    net = Network("li")
    net.input("x", 2)
    net.population("o", 1, LI(lam=0.5))
    net.connect("x", "o", Dense(weight=np.array([[1.0, -2.0]])), delay=1)
    net.output("o")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(simulate(net, {"x": x}).get("o")[:, 0], [0.0, 1.0, -1.5])


def test_batch_equals_separate_runs():
    rng = np.random.default_rng(0)
    net = Network("b")
    net.input("x", 5)
    net.population("h", 7, LIF(alpha_u=0.3, lam=0.8, theta=1.0))
    net.connect("x", "h", Dense(weight=rng.normal(size=(7, 5))), delay=1)
    net.connect("h", "h", Sparse.from_dense(rng.normal(size=(7, 7)) * (rng.random((7, 7)) < .3)),
                delay=2)
    net.output("h")
    x = (rng.random((30, 3, 5)) < 0.4).astype(float)
    batched = simulate(net, {"x": x}).outputs["h"]
    for b in range(3):
        np.testing.assert_array_equal(batched[:, b], simulate(net, {"x": x[:, b]}).get("h"))


def test_sparse_matches_dense_and_per_synapse_delays():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(20, 30)) * (rng.random((20, 30)) < 0.2)
    dl = rng.integers(0, 4, size=w.shape)
    x = (rng.random((25, 30)) < 0.3).astype(float)

    def run(conn, delay=1):
        net = Network("s")
        net.input("x", 30)
        net.population("p", 20, LI(lam=0.9))
        net.connect("x", "p", conn, delay=delay)
        net.output("p")
        return simulate(net, {"x": x}).get("p")

    np.testing.assert_allclose(run(Dense(weight=w)), run(Sparse.from_dense(w)), atol=1e-12)
    with_delays = run(Dense(weight=w, delays=dl))
    np.testing.assert_allclose(with_delays, run(Sparse.from_dense(w, delays=dl)), atol=1e-12)
    # the LI readout is linear: per-synapse delays = sum of one projection per delay value
    manual = sum(run(Dense(weight=np.where(dl == k, w, 0.0)), delay=1 + k) for k in range(4))
    np.testing.assert_allclose(with_delays, manual, atol=1e-10)


def test_conv_and_pool_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (rng.random((3, 4, 9, 11)) < 0.5).astype(float)  # T, C, H, W
    w = rng.normal(size=(6, 2, 3, 2))
    conv = Conv2d(weight=w, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    from nmcompiler.ir import conv_output_shape, pool_output_shape

    out_shape = conv_output_shape((4, 9, 11), conv)
    net = Network("c")
    net.input("x", shape=(4, 9, 11))
    net.population("c", model=LI(lam=0.0), shape=out_shape)
    net.connect("x", "c", conv, delay=0)
    pool = AvgPool2d(kernel=(2, 2), padding=(1, 1))
    pshape = pool_output_shape((4, 9, 11), pool)
    net.population("p", model=LI(lam=0.0), shape=pshape)
    net.connect("x", "p", pool, delay=0)
    spool = SumPool2d(kernel=(3, 3), stride=(2, 2))
    sshape = pool_output_shape((4, 9, 11), spool)
    net.population("s", model=LI(lam=0.0), shape=sshape)
    net.connect("x", "s", spool, delay=0)
    net.output("c")
    net.output("p")
    net.output("s")
    res = simulate(net, {"x": x})
    xt = torch.tensor(x)
    ref = torch.nn.functional.conv2d(xt, torch.tensor(w), stride=(2, 1), padding=(1, 0),
                                     dilation=(1, 2), groups=2).numpy()
    np.testing.assert_allclose(res.get("c"), ref.reshape(3, -1), atol=1e-10)
    ref_p = torch.nn.functional.avg_pool2d(xt, 2, padding=1).numpy()
    np.testing.assert_allclose(res.get("p"), ref_p.reshape(3, -1), atol=1e-12)
    ref_s = torch.nn.functional.avg_pool2d(xt, 3, stride=2).numpy() * 9
    np.testing.assert_allclose(res.get("s"), ref_s.reshape(3, -1), atol=1e-10)


def test_recurrent_self_loop_with_delay():
    net = Network("loop")
    net.input("x", 1)
    net.population("p", 1, IF(theta=0.5))
    net.connect("x", "p", Dense(weight=np.ones((1, 1))), delay=0)
    net.connect("p", "p", OneToOne(weight=1.0), delay=3)
    net.output("p")
    x = np.zeros((10, 1))
    x[0] = 1
    # one input spike starts a self-sustaining train with period 3
    assert np.flatnonzero(simulate(net, {"x": x}).get("p")[:, 0]).tolist() == [0, 3, 6, 9]


def test_input_errors_are_clear():
    net = Network("e")
    net.input("x", 4)
    net.population("p", 2, IF())
    net.connect("x", "p", Dense(weight=np.ones((2, 4))))
    with pytest.raises(InputError, match=r"input 'x' has shape \(10, 3\), expected \(T, 4\)"):
        simulate(net, {"x": np.zeros((10, 3))})
    with pytest.raises(InputError, match="'y' is not an input.*inputs: x"):
        simulate(net, {"y": np.zeros((10, 4))})
    with pytest.raises(InputError, match="12 steps asked for, but the inputs have only 10"):
        simulate(net, {"x": np.zeros((10, 4))}, steps=12)
    with pytest.raises(InputError, match="dtype"):
        simulate(net, {"x": np.zeros((10, 4), dtype=complex)})
