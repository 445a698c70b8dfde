"""Helper populations (docs/passes.md#helper-populations) are marked where they are made
and kept out of the run report's totals, shown on their own line."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from nmcompiler import compile as nmc_compile
from nmcompiler import ir
from nmcompiler.backend import get_backend
from nmcompiler.helpers import HELPERS_KEY, helper_populations
from nmcompiler.report import render_run_report, run_report


def _biased() -> ir.Network:
    """A lagged population with a bias: retiming adds a bias source (on loihi2)."""
    rng = np.random.default_rng(3)
    net = ir.Network("biased")
    net.input("in", 10)
    net.population("h", 20, ir.LIF(lam=0.9, theta=1.0, bias=0.05))
    net.population("o", 5, ir.LIF(lam=0.95, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0.5, 0.5, (20, 10))), delay=0)
    net.connect("h", "o", ir.Dense(weight=rng.normal(0.3, 0.2, (5, 20))), delay=0)
    net.output("o")
    return net


def test_lowering_marks_its_bias_source():
    cn = nmc_compile(_biased(), "loihi2")
    assert cn.network.metadata[HELPERS_KEY] == {"bias_source": "bias source"}
    assert helper_populations(cn.network) == {"bias_source": "bias source"}
    assert helper_populations(_biased()) == {}


def test_helpers_are_out_of_the_run_totals():
    cn = nmc_compile(_biased(), "loihi2")
    x = (np.random.default_rng(0).random((50, 10)) < 0.2).astype(np.float64)
    res = get_backend("emulator").run(cn, {"in": x}, 50,
                                      probes=("h.spikes", "o.spikes", "bias_source.spikes"))
    rep = run_report(res, cn)
    pops = rep["populations"]
    # the counters per source (populations and the input) add up to the run's counters
    c = res.counters
    assert sum(p["spikes"] for p in pops.values()) == int(np.asarray(c.spikes_sent).sum())
    assert sum(p["synaptic_ops"] for p in pops.values()) == int(np.asarray(c.sops).sum())
    assert sum(p["messages"] for p in pops.values()) == int(np.asarray(c.messages).sum())
    # the spikes per population are the recorded ones
    for name in ("h", "o", "bias_source"):
        assert pops[name]["spikes"] == int(np.count_nonzero(res.probes[f"{name}.spikes"]))
    # the bias source fires every step; its work is its own line, not the network's
    h = rep["helpers"]
    assert h["populations"] == {"bias_source": "bias source"} and h["spikes"] == 50
    assert h["synaptic_ops"] == pops["bias_source"]["synaptic_ops"] > 0
    assert pops["in"]["spikes"] == 0 and pops["in"]["synaptic_ops"] > 0
    assert rep["spikes"] == pops["h"]["spikes"] + pops["o"]["spikes"]
    network = ("in", "h", "o")
    assert rep["synaptic_ops"] == sum(pops[k]["synaptic_ops"] for k in network)
    assert rep["messages"] == pops["h"]["messages"] + pops["o"]["messages"]
    buf = io.StringIO()
    render_run_report(rep, Console(file=buf, width=200))
    line = next(s for s in buf.getvalue().splitlines() if "helper populations" in s)
    assert "50 spikes" in line and "bias_source (bias source)" in line


def test_importer_bias_source_is_marked(tmp_path):
    """The NIR importer's bias source (a bias into a current stage) carries its mark."""
    import nir

    n = 3
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2])),
        nir.Affine(weight=np.ones((n, 2)), bias=np.full(n, 0.5)),
        nir.CubaLIF(tau_mem=np.full(n, 0.02), tau_syn=np.full(n, 0.01), r=np.ones(n),
                    v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.ones(n)),
        nir.Output(output_type=np.array([n])),
    )
    from nmcompiler.frontends.nir import from_nir

    net = from_nir(graph, dt=1e-3).network
    marks = net.metadata.get(HELPERS_KEY) or {}
    assert any(k.startswith("bias_source") for k in marks), net.populations.keys()
    assert helper_populations(net) == marks
