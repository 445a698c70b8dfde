"""The behaviour check's figures on a recurrent network compiled for loihi2
(docs/passes.md#fidelity): entries that agree, float spikes kept and spurious spikes per
population, as the compile report gives them (200 seeded random steps, the network before
lowering as reference, read at each population's lag), beside the single figure the
report printed before ("spike agreement": the smallest share of (step, neuron) entries
that agree, over 32 random steps, against the lowered float network).

    .venv/bin/python bench/behaviour_figures.py
"""

from __future__ import annotations

import numpy as np

from nmcompiler import ir
from nmcompiler.passes.lower import lower
from nmcompiler.passes.quantize import quantize
from nmcompiler.targets import load_target


def recurrent() -> ir.Network:
    """40 LIF with a recurrent projection and a bias, 5 LIF outputs, float weights."""
    rng = np.random.default_rng(3)
    net = ir.Network("rec")
    net.input("in", 10)
    net.population("h", 40, ir.LIF(lam=0.9, theta=1.0, bias=0.02))
    net.population("o", 5, ir.LIF(lam=0.95, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0.5, 0.5, (40, 10))), delay=0)
    net.connect("h", "h", ir.Dense(weight=rng.normal(0.0, 0.35, (40, 40))), delay=1)
    net.connect("h", "o", ir.Dense(weight=rng.normal(0.15, 0.2, (5, 40))), delay=0)
    net.output("o", name="out")
    return net


def main() -> None:
    tgt = load_target("loihi2")
    net = recurrent()
    lowered, lrep = lower(net, tgt)
    _, old = quantize(lowered, tgt, check_steps=32)
    pops = old["behaviour"]["populations"]
    print("before: 'spike agreement' (smallest entries-agree, 32 steps) = "
          f"{min(e['entries_agree'] for e in pops.values()):.3f}")
    _, new = quantize(lowered, tgt, reference=net, lower_report=lrep)
    beh = new["behaviour"]
    print(f"now: {beh['steps']} steps of {beh['input']} against {beh['reference']}")
    print(f"{'population':>10} {'entries agree':>14} {'float spikes kept':>18} "
          f"{'spurious':>9} {'lag':>4}")
    for name, e in beh["populations"].items():
        print(f"{name:>10} {e['entries_agree']:>14.3f} {e['float_spikes_kept']:>18.3f} "
              f"{e['spurious_spikes']:>9d} {e['lag']:>4d}")


if __name__ == "__main__":
    main()
