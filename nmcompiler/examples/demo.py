"""The main job (``make demo``): build the example networks, run them on the reference
simulator, compile them for every target, and run them on the emulator where it is
installed, printing one comparison table; then deploy the hard-reset converted digits
network to ``loihi`` (Lava) and ``spinnaker`` (PyNN on NEST).

    python -m nmcompiler.examples.demo [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from rich.console import Console
from rich.table import Table

from nmcompiler import ir
from nmcompiler.examples import digits_classifier, interop_dir, lsm_example
from nmcompiler.ir.errors import NmcError

console = Console(width=None if sys.stdout.isatty() else 150)
#: the NIR paper's CNN as sinabs exported it, in the interop folder (docs/nir.md#interop-files)
CNN_FILE = Path("nir_paper_cnn") / "cnn_sinabs.nir"


@dataclass
class Example:
    """One example network with its input and how to score it."""

    name: str
    network: ir.Network
    inputs: dict[str, np.ndarray]
    steps: int
    task: str
    score: Callable[[Mapping[str, np.ndarray]], float] | None = None
    reference: dict[str, Any] = field(default_factory=dict)


def _lsm(quick: bool) -> Example:
    from nmcompiler.models.lsm import Readout

    ex = lsm_example(seed=0)
    task, lsm = ex.task, ex.lsm
    t0 = time.perf_counter()
    states = lsm.run(task.inputs)
    wall = time.perf_counter() - t0
    x = states[task.sample_times]
    labels = task.labels(1)
    tr, te = task.train, task.test
    ro = Readout(alpha=100.0).fit_classes(x[tr], labels[tr])
    acc = float(np.mean(ro.classify(x[te]) == labels[te]))
    steps = min(task.inputs.shape[0], 200)
    return Example(name="LSM reservoir", network=ex.network,
                   inputs={"input": task.inputs[:steps]}, steps=steps,
                   task="recall 1 symbol back", reference={"accuracy": acc, "wall_s": wall})


def _digits(quick: bool) -> Example:
    from nmcompiler.frontends import ann2snn

    ex = digits_classifier(seed=0, steps=50 if quick else 100)
    n = 100 if quick else len(ex.y_test)
    t0 = time.perf_counter()
    pred = ann2snn.predict(ex.network, ex.x_test[:n], ex.steps)
    wall = time.perf_counter() - t0
    acc = float(np.mean(pred == ex.y_test[:n]))
    from nmcompiler.encoding import rate

    k = 64 if quick else 200
    # chips take spikes: rate-code the test images (integer inputs for every arithmetic)
    spikes = rate(ex.x_test[:k], ex.steps, seed=0, dtype=np.float64)
    labels = ex.y_test[:k]

    def score(outputs: Mapping[str, np.ndarray]) -> float:
        out = np.asarray(outputs["output"]).real.sum(axis=0)  # (B, 10): counts or voltages
        return float(np.mean(np.argmax(out, axis=1) == labels))

    return Example(name="digits MLP (converted)", network=ex.network,
                   inputs={"input": spikes}, steps=ex.steps,
                   task=f"digits, {k} test images, rate-coded", score=score,
                   reference={"accuracy": acc, "ann_accuracy": ex.ann_accuracy, "wall_s": wall})


def _cnn() -> Example | None:
    folder = interop_dir()
    if folder is None or not (folder / CNN_FILE).is_file():
        return None
    path = folder / CNN_FILE
    try:
        from nmcompiler.frontends.nir import from_nir

        net = from_nir(path, preset="sinabs").network
    except NmcError as exc:  # nir not installed
        console.print(f"[yellow]skipping the NIR paper CNN:[/] {exc}")
        return None
    rng = np.random.default_rng(0)
    steps = 20
    x = (rng.random((steps, 2 * 34 * 34)) < 0.05).astype(np.float64)
    t0 = time.perf_counter()
    res = ir.simulate(net, {"input": x})
    wall = time.perf_counter() - t0
    spikes = int(sum(v.sum() for v in res.outputs.values()))
    return Example(name="NIR paper CNN (sinabs)", network=net, inputs={"input": x},
                   steps=steps, task="random N-MNIST-shaped input",
                   reference={"output_spikes": spikes, "wall_s": wall})


#: (target, vendor backend) pairs the converted digits network is deployed to
DEPLOY_TARGETS = (("loihi", "lava"), ("spinnaker", "pynn"))


def _deploy_converted(quick: bool) -> None:
    """The digits MLP converted with hard reset (reset to zero, max normalisation: the
    variant of docs/ann2snn.md that fits Loihi 1 and sPyNNaker neurons, which cannot
    reset by subtraction), compiled for ``loihi`` and ``spinnaker`` and deployed through
    their vendor toolchains: Lava's bit-accurate CPU models (docs/loihi_backend.md) and
    PyNN on NEST (docs/spinnaker_backend.md), next to the emulator in each target's
    arithmetic. A small rate-coded test subset keeps the two subprocess runs short; a
    toolchain that is not installed is reported, not run."""
    import nmcompiler
    from nmcompiler import examples
    from nmcompiler.backend import get_backend
    from nmcompiler.encoding import rate
    from nmcompiler.frontends import ann2snn

    k, steps = (8, 30) if quick else (16, 40)
    ex = examples.digits_classifier(seed=0, steps=steps)
    x_train = examples.digits_data(0)[0]
    net = ann2snn.convert(ex.layers, x_train, percentile=100.0, reset="hard",
                          output="spikes", name="digits_mlp_hard_reset")
    spikes = rate(ex.x_test[:k], steps, seed=0, dtype=np.float64)
    labels = ex.y_test[:k]

    def accuracy(out: np.ndarray) -> float:
        counts = np.asarray(out).real.sum(axis=0)  # (B, 10) output spike counts
        return float(np.mean(np.argmax(counts, axis=1) == labels))

    ref = accuracy(ir.simulate(net, {"input": spikes}).outputs["output"])
    table = Table(title=f"converted digits MLP (hard reset) deployed: {k} test images, "
                  f"{steps} steps, rate-coded; reference (float, ir.simulate) "
                  f"{100 * ref:.1f}%")
    for col in ("target", "emulator accuracy", "vendor backend", "backend accuracy",
                "output spikes (backend / emulator)", "backend wall time"):
        table.add_column(col)
    for target, name in DEPLOY_TARGETS:
        cn = nmcompiler.compile(net, target, seed=0)
        em = get_backend("emulator").run(cn, {"input": spikes}, steps)
        em_out = np.asarray(em.outputs["output"]).real
        backend = get_backend(name)
        why = backend.available()
        if why is not None:
            table.add_row(target, f"{100 * accuracy(em_out):.1f}%", name, "not run",
                          f"toolchain missing: {why}"[:120], "-")
            continue
        opts: dict[str, Any] = {"fuse": True} if name == "lava" else {}
        t0 = time.perf_counter()
        try:
            res = backend.run(cn, {"input": spikes}, steps, **opts)
        except NmcError as exc:
            table.add_row(target, f"{100 * accuracy(em_out):.1f}%", name, "failed",
                          str(exc).splitlines()[0][:120], "-")
            continue
        wall = time.perf_counter() - t0
        out = np.asarray(res.outputs["output"]).real
        if out.shape == em_out.shape:
            n_diff = int(np.count_nonzero(out != em_out))
            agree = "identical" if n_diff == 0 else f"differ at {n_diff} (step, image, neuron)"
        else:
            agree = f"shape {out.shape} against {em_out.shape}"
        table.add_row(target, f"{100 * accuracy(em_out):.1f}%", name,
                      f"{100 * accuracy(out):.1f}%",
                      f"{int(out.sum()):,} / {int(em_out.sum()):,}: {agree}", f"{wall:.1f} s")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, for tests")
    args = ap.parse_args(argv)

    console.rule("nmcompiler demo: the example networks")
    examples = [_lsm(args.quick), _digits(args.quick)]
    cnn = _cnn()
    if cnn is not None:
        examples.append(cnn)
    table = Table(title="reference simulator (float64, ir.simulate)")
    for col in ("network", "neurons", "synapses", "task", "result", "wall time"):
        table.add_column(col)
    for ex in examples:
        ref = ex.reference
        if "accuracy" in ref:
            result = f"accuracy {100 * ref['accuracy']:.1f}%"
            if "ann_accuracy" in ref:
                result += f" (ANN {100 * ref['ann_accuracy']:.1f}%)"
        else:
            result = f"{ref['output_spikes']} output spikes"
        n_syn = sum(_n_syn(ex.network, p) for p in ex.network.projections.values())
        table.add_row(ex.name, f"{ex.network.n_neurons:,}", f"{n_syn:,}", ex.task, result,
                      f"{ref['wall_s']:.2f} s")
    console.print(table)

    console.rule("compiled for every target, run on the emulator")
    from nmcompiler.compare import compare, render_table

    for ex in examples:
        records = compare(ex.network, inputs=ex.inputs, steps=ex.steps, seed=0,
                          score=ex.score)
        render_table(records, console, title=f"every example on every target: {ex.name} "
                     "(emulator in the target's arithmetic; energy and latency from its "
                     "cost model)")
        if ex.score is not None:
            res = ir.simulate(ex.network, ex.inputs)
            console.print(f"reference (float, ir.simulate) on the same input: score "
                          f"{100 * ex.score(res.outputs):.1f}%")

    console.rule("the converted ANN on the vendor toolchains (Loihi 1 via Lava, "
                 "SpiNNaker via PyNN/NEST)")
    _deploy_converted(args.quick)
    return 0


def _n_syn(net: ir.Network, proj: Any) -> int:
    return proj.conn.n_synapses(net.shape_of(proj.pre), net.shape_of(proj.post))


if __name__ == "__main__":
    sys.exit(main())
