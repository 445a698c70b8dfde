"""Hand-derived steps of the SpiNNaker (s16.15) and Speck (16-bit IAF) arithmetic, and the
generic target's state saturation."""

from __future__ import annotations

import numpy as np

from nmcompiler import ir
from nmcompiler.backends.emulator import emulate
from nmcompiler.targets import load_target


def _one(model, w, x, target):
    net = ir.Network("one")
    net.input("in", 1)
    net.population("p", 1, model)
    net.connect("in", "p", ir.Dense(weight=np.array([[w]])), delay=1)
    net.output("p")
    net.probe("p", "v")
    net.probe("p", "u")
    return emulate(net, {"in": np.asarray(x, float)[:, None]}, target=load_target(target))


def test_spinnaker_s1615_rounding_and_threshold():
    # values in raw s16.15 LSB units (the quantize pass's units for SpiNNaker)
    lam = 1 - 2.0**-15 * 3277  # ~0.9, on the 2**-15 grid
    r = _one(ir.LIF(alpha_u=0.5, lam=lam, theta=40000.0, bias=3.0), 32768.0,
             [1, 0, 0, 0], "spinnaker")
    v = r.probes["p.v"][:, 0, 0]
    u = r.probes["p.u"][:, 0, 0]
    L = 32768 - 3277
    # step 0: nothing arrives (delay 1): u = 0, v = 0 * lam + 0 + 3
    assert (u[0], v[0]) == (0, 3)
    # step 1: u = 32768; v = round((L * 3) / 2**15) + 32768 + 3
    assert u[1] == 32768
    assert v[1] == ((L * 3 + 2**14) >> 15) + 32768 + 3
    # step 2: u = floor(32768 * 2**31 / 2**32) = 16384; v* >= 40000 -> spike, reset to 0
    assert u[2] == 16384
    assert r.outputs["p"][2, 0, 0] == 1 and v[2] == 0


def test_speck_saturates_and_subtracts():
    model = ir.IF(theta=100.0, reset=ir.Reset.SOFT, fire_at_threshold=True)
    r = _one(model, 127.0, [1] * 6, "speck2f")
    v = r.probes["p.v"][:, 0, 0]
    s = r.outputs["p"][:, 0, 0]
    # speck has no step delay semantics of its own: delay 1 as written in the IR
    assert s.tolist() == [0, 1, 1, 1, 1, 1]
    assert v.tolist() == [0, 27, 54, 81, 108, 135]  # one spike per step: v climbs
    big = _one(ir.IF(theta=30000.0, reset=ir.Reset.HARD), -120.0, [1] * 400, "speck2f")
    assert big.probes["p.v"][:, 0, 0].min() == -(2**15)


def test_generic_saturates_state():
    r = _one(ir.IF(theta=1e12, reset=ir.Reset.NONE), 2.0**30, [1] * 5, "emulator")
    assert r.probes["p.v"][:, 0, 0].max() == 2**31 - 1


def test_every_chip_family_names_an_emulator_arithmetic():
    """The emulator picks its arithmetic from the chip family object, not from its name."""
    from nmcompiler.backends.emulator import engine_for
    from nmcompiler.backends.emulator.arith import ARITHMETICS
    from nmcompiler.targets.families import FAMILIES as CHIP_FAMILIES

    for fam in CHIP_FAMILIES.values():
        assert fam.emulator_arithmetic in ARITHMETICS, fam
    net = ir.Network("one")
    net.input("in", 2)
    net.population("p", 2, ir.LIF(theta=1.0))
    net.connect("in", "p", ir.Dense(weight=np.eye(2)), delay=1)
    net.output("p")
    for name, arith in (("loihi2", "loihi"), ("spinnaker", "spinnaker"),
                        ("speck2f", "speck"), ("emulator", "emulator")):
        target = load_target(name)
        assert target.family.emulator_arithmetic == arith
        assert engine_for(net, target, check=False).family == arith
