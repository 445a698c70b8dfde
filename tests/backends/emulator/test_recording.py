"""What a run records, and in which dtype (docs/cli.md, "Run outputs").

Spikes of populations whose spikes are binary are recorded as bool, graded payloads and
states as float64; the values are the reference simulator's, whatever the dtype.
"""

from __future__ import annotations

import numpy as np
from emu_nets import target_file
from test_counter_folding import _one_delay_network

from nmcompiler import ir
from nmcompiler.backends.emulator import engine_for
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target


def test_binary_spikes_are_bool_graded_payloads_and_states_float(tmp_path):
    net, n_in = _one_delay_network(31, 1, graded=True)
    tgt = load_target(target_file(tmp_path, "rec31", 7, base="emulator"))
    eng = engine_for(net, tgt, partition=partition(net, tgt, seed=0))
    steps = 21
    x = {"in": (np.random.default_rng(31).random((steps, n_in)) < 0.5) * 1.0}
    res = eng.run(x, steps, probes=("a.v", "g.spikes"))
    ref = ir.simulate(net, x, steps)
    assert res.outputs["a"].dtype == np.bool_ and res.outputs["b"].dtype == np.bool_
    assert res.probes["a.spikes"].dtype == np.bool_  # the network's own probe
    assert res.outputs["g"].dtype == np.float64 and res.probes["g.spikes"].dtype == np.float64
    assert res.probes["a.v"].dtype == np.float64
    assert res.outputs["a"].any() and (res.outputs["g"] > 1).any()  # graded payloads kept
    for k, v in ref.outputs.items():
        np.testing.assert_array_equal(res.outputs[k], v, err_msg=k)
    # counting a bool raster gives the spike counts
    assert int(res.outputs["a"].sum()) == int(np.count_nonzero(ref.outputs["a"]))
