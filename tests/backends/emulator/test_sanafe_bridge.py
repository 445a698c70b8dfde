"""SANA-FE bridge: a hand-checked network through SANA-FE's Loihi model (docs/sanafe.md).

The spikes below are worked out by hand from SANA-FE's LIF equations (docs/sanafe.md), and
the energy and step times are the hand sum of events x the per-event costs that
:func:`loihi_cost_from_sanafe` reads from the bundled architecture file.
"""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler.backends.emulator import sanafe_bridge as sb

REASON = sb.sanafe_available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"SANA-FE not usable: {REASON}")

T = 6
# in0 spikes at steps 0, 2, 3; in1 at step 1
IN_SPIKES = np.zeros((T, 2), dtype=bool)
IN_SPIKES[[0, 2, 3], 0] = True
IN_SPIKES[1, 1] = True


def tiny_spec() -> dict:
    """Inputs on tile 0 core 0; a0 and b0 on tile 0 core 1; a1 on tile 5 (x=1, y=1) core 2.

    in0 -> a0 (w 1), in0 -> a1 (w 1), in1 -> a1 (w 2); threshold 1.5, no leak, no current
    memory; b0 has bias 0.5, threshold 1.2 and no synapses.
    """
    return {
        "groups": [
            {"name": "in", "size": 2, "model": "input", "tile": [0, 0], "core": [0, 0],
             "spikes": IN_SPIKES},
            {"name": "a", "size": 2, "model": "lif", "tile": [0, 5], "core": [1, 2],
             "threshold": 1.5, "leak_decay": 1.0, "input_decay": 0.0, "bias": 0.0},
            {"name": "b", "size": 1, "model": "lif", "tile": [0], "core": [1],
             "threshold": 1.2, "bias": 0.5},
        ],
        "synapses": [
            {"pre": "in", "post": "a", "pre_idx": [0, 0, 1], "post_idx": [0, 1, 1],
             "weight": [1.0, 1.0, 2.0]},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def costs() -> dict:
    return sb.loihi_cost_from_sanafe()


@pytest.fixture(scope="module")
def result() -> dict:
    return sb.run_on_sanafe(tiny_spec(), T, timing_model="simple")


def test_costs_read_from_arch_file(costs):
    e, lat = costs["energy"], costs["latency"]
    # the numbers of sanafe 2.2.9's loihi.yaml
    assert e["synop_dense"] == pytest.approx(35.5e-12)
    assert e["neuron_access"] == pytest.approx(51.2e-12)
    assert e["neuron_update"] == pytest.approx(21.6e-12)
    assert e["spike_out"] == pytest.approx(69.3e-12)
    assert e["message_out"] == pytest.approx(111e-12)
    assert e["hop_east"] == pytest.approx(3.0e-12)
    assert e["hop_north"] == pytest.approx(4.2e-12)
    assert lat["synop_dense"] == pytest.approx(3.8e-9)
    assert lat["message_in"] == pytest.approx(16e-9)
    assert costs["sync_table"] == {1: 0.6e-6, 2: 1.0e-6, 4: 1.4e-6, 29: 1.8e-6}
    cm = costs["cost_model"]
    assert cm["energy_per_neuron_update_j"] == pytest.approx(72.8e-12)
    assert cm["energy_per_neuron_update_inactive_j"] == pytest.approx(51.2e-12)
    assert sb.sync_time(costs["sync_table"], 3) == pytest.approx(1.0e-6)
    assert sb.sync_time(costs["sync_table"], 28) == pytest.approx(1.4e-6)


def test_spikes_by_hand(result):
    s = result["spikes"]
    np.testing.assert_array_equal(s["in"], IN_SPIKES)
    a = np.zeros((T, 2), dtype=bool)
    a[3, 0] = True  # a0: v = 1, 1, 2 > 1.5 at step 3 (input arrives one step late)
    a[[2, 4], 1] = True  # a1: v = 1, 1 + 2 at step 2; 1, 2 at step 4
    np.testing.assert_array_equal(s["a"], a)
    b = np.zeros((T, 1), dtype=bool)
    b[[2, 5], 0] = True  # b0: v = 0.5, 1.0, 1.5 > 1.2
    np.testing.assert_array_equal(s["b"], b)


def test_energy_is_hand_sum_of_events(result, costs):
    e = costs["energy"]
    synops = 3 * 2 + 1  # in0 reaches a0 and a1 three times, in1 reaches a1 once
    messages = 3 * 2 + 1  # one per (spike, destination core)
    accesses = 3 * T  # every LIF neuron is read every step (inputs cost nothing)
    updates = 5 + 4 + 6  # a0 idle at 0; a1 idle at 0 and 5; b0 has a bias
    fired = 1 + 2 + 2
    hops_x = hops_y = 3 + 1  # messages from tile (0,0) to tile (1,1)
    expected = (
        synops * e["synop_dense"]
        + accesses * e["neuron_access"]
        + updates * e["neuron_update"]
        + fired * e["spike_out"]
        + messages * (e["message_out"] + e["message_in"])
        + hops_x * e["hop_east"]
        + hops_y * e["hop_north"]
    )
    assert result["energy_j"]["total"] == pytest.approx(expected, rel=1e-9)
    assert result["energy_j"]["synapse"] == pytest.approx(synops * e["synop_dense"], rel=1e-9)
    assert result["energy_per_step_j"].sum() == pytest.approx(expected, rel=1e-9)
    assert result["messages"] == messages
    assert int(result["synops"].sum()) == synops
    assert int(result["hops"].sum()) == hops_x + hops_y


def test_step_time_is_hand_sum(result, costs):
    lat = costs["latency"]
    idle = lat["neuron_access"]
    upd = idle + lat["neuron_update"]
    fire = upd + lat["spike_out"]
    msg = lat["message_in"] + lat["synop_dense"]  # every message here reads one synapse
    # per step, the busiest core: max(neuron processing + message out, messages received)
    busiest = [
        max(idle + upd, msg),  # 0: core (0,1) runs a0 idle + b0; receives one message
        max(upd + upd, msg),  # 1
        upd + fire,  # 2: core (0,1): a0 updates, b0 fires
        fire + upd,  # 3: a0 fires, b0 updates
        max(upd + upd, fire),  # 4: a1 fires alone on core (5,2)
        upd + fire,  # 5
    ]
    barrier = sb.sync_time(costs["sync_table"], 2)  # tiles 0 and 5 in use
    np.testing.assert_allclose(result["step_time_s"], np.add(busiest, barrier), rtol=1e-9)


def test_spec_errors():
    spec = tiny_spec()
    spec["groups"][1]["tile"] = [0]
    with pytest.raises(ValueError, match="tile"):
        sb.run_on_sanafe(spec, T)
    with pytest.raises(ValueError, match="timing_model"):
        sb.run_on_sanafe(tiny_spec(), T, timing_model="cycle-ish")


def test_lif_params_from_loihi():
    p = sb.lif_params_from_loihi(vth=10, du=4095, dv=256, bias_mant=3, bias_exp=6)
    assert float(p["threshold"]) == 10.0
    assert float(p["bias"]) == pytest.approx(3.0)
    assert float(p["leak_decay"]) == pytest.approx(3840 / 4096)
    assert float(p["input_decay"]) == 0.0


def test_tile_of_matches_sanafe_numbering():
    # SANA-FE's 8 x 4 mesh numbers tiles along y first: tile 6 is (1, 2), tile 13 is (3, 1)
    assert sb.tile_of(1, 2).item() == 6
    assert sb.tile_of(3, 1).item() == 13
