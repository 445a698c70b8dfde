"""Scores of the frontends' examples, for docs/lsm.md and docs/ann2snn.md.

Run from the repository root::

    MPLBACKEND=Agg .venv/bin/python bench/frontends_scores.py

Prints Markdown tables (the numbers in the docs) and writes
docs/img/ann2snn_accuracy.png. Everything is seeded and generated in code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nmcompiler import ir
from nmcompiler.examples import digits_classifier, digits_data, lsm_example
from nmcompiler.frontends import ann2snn
from nmcompiler.models import lsm as L

ROOT = Path(__file__).resolve().parents[1]
PNG = ROOT / "docs" / "img" / "ann2snn_accuracy.png"


def lsm_scores(seed: int = 0) -> None:
    """Delayed recall: reservoir readout versus a readout on the current input."""
    ex = lsm_example(seed=seed)
    task = ex.task
    t0 = time.perf_counter()
    states = ex.lsm.run(task.inputs)[task.sample_times]
    t_run = time.perf_counter() - t0
    raw = task.inputs[task.sample_times]
    tr, te = task.train, task.test
    # alpha chosen on a validation split of the training segments (last quarter)
    cut = tr[: int(0.75 * tr.size)]
    val = tr[int(0.75 * tr.size):]
    alphas = (0.1, 1.0, 10.0, 100.0, 1000.0)
    print("## LSM: validation accuracy (mean over delays 1-3) per ridge alpha\n")
    print("| alpha | reservoir | raw input |")
    print("|---:|---:|---:|")
    for a in alphas:
        row = []
        for x in (states, raw):
            r = L.Readout(a).fit(x[cut], L.one_hot(task.labels(1)[cut], task.n_symbols))
            accs = []
            for k in (1, 2, 3):
                y = task.labels(k)
                r.refit(L.one_hot(y[cut], task.n_symbols))
                accs.append(np.mean(r.classify(x[val]) == y[val]))
            row.append(np.mean(accs))
        print(f"| {a:g} | {row[0]:.3f} | {row[1]:.3f} |")
    print()
    t0 = time.perf_counter()
    res = L.Readout(L.EXAMPLE_ALPHA).fit(states[tr], L.one_hot(task.labels(0)[tr], 4))
    t_fit = time.perf_counter() - t0
    base = L.Readout(1.0).fit(raw[tr], L.one_hot(task.labels(0)[tr], 4))
    net = ex.network
    meta = net.metadata["lsm"]
    print(f"reservoir: {net.n_neurons} LIF neurons on grid {tuple(meta['grid'])}, "
          f"{meta['n_excitatory']} excitatory, {meta['n_synapses']} recurrent synapses; "
          f"task: {task.n_symbols} symbols x {task.hold} steps, {task.symbols.size} "
          f"segments ({task.inputs.shape[0]} steps), train {tr.size}, test {te.size}; "
          f"alpha {L.EXAMPLE_ALPHA:g} (reservoir), 1 (raw)\n")
    print("## LSM: test accuracy of recalling the symbol k segments back (chance 0.25)\n")
    print("| k | reservoir readout | raw-input readout |")
    print("|---:|---:|---:|")
    t_refit = []
    for k in range(6):
        y = task.labels(k)
        t0 = time.perf_counter()
        res.refit(L.one_hot(y[tr], 4))
        t_refit.append(time.perf_counter() - t0)
        base.refit(L.one_hot(y[tr], 4))
        a_res = np.mean(res.classify(states[te]) == y[te])
        a_raw = np.mean(base.classify(raw[te]) == y[te])
        print(f"| {k} | {a_res:.3f} | {a_raw:.3f} |")
    print(f"\ntimes: reservoir run {t_run:.2f} s (once), first fit {t_fit * 1e3:.1f} ms, "
          f"re-fit on new targets {np.mean(t_refit) * 1e3:.2f} ms each "
          f"(decompositions: {res.n_decompositions})\n")


def ann2snn_scores(seed: int = 0, max_steps: int = 200) -> None:
    """Accuracy versus steps of the converted digits MLP (and a small torch CNN)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    ex = None
    for output in ("li", "spikes"):
        ex = digits_classifier(seed=seed, steps=max_steps, output=output)
        t0 = time.perf_counter()
        sc = ann2snn.run(ex.network, ex.x_test, max_steps, every_step=True)
        dt = time.perf_counter() - t0
        curves[f"direct input, {output} output"] = np.mean(
            np.argmax(sc, -1) == ex.y_test[None], axis=1)
        print(f"(simulated {max_steps} steps x {len(ex.y_test)} samples, output={output}: "
              f"{dt:.2f} s)")
    assert ex is not None
    net = ann2snn.convert(ex.layers, digits_data(seed)[0], input_encoding="rate")
    sc = ann2snn.run(net, ex.x_test, max_steps, every_step=True, seed=seed)
    curves["rate-coded input, li output"] = np.mean(np.argmax(sc, -1) == ex.y_test[None], 1)

    steps_shown = [s for s in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200) if s <= max_steps]
    print(f"\n## ANN-to-SNN: digits MLP 64-64-64-10, ANN test accuracy "
          f"{ex.ann_accuracy:.4f} ({len(ex.y_test)} test samples)\n")
    print("| steps | " + " | ".join(curves) + " |")
    print("|---:|" + "---:|" * len(curves))
    for s in steps_shown:
        print(f"| {s} | " + " | ".join(f"{c[s - 1]:.4f}" for c in curves.values()) + " |")
    print()

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    t = np.arange(1, max_steps + 1)
    for label, c in curves.items():
        ax.plot(t, 100 * c, label=f"SNN, {label}")
    ax.axhline(100 * ex.ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.axhline(100 * ex.ann_accuracy - 1, color="grey", ls=":", lw=1, label="ANN - 1 pp")
    ax.set_xscale("log")
    ax.set_xlabel("simulation steps")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(50, 100)
    ax.set_title("digits MLP converted to IF neurons (Rueckauer et al. 2017)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG)
    print(f"wrote {PNG.relative_to(ROOT)}\n")


def torch_cnn_scores(seed: int = 0, steps: int = 100) -> None:
    """A small CNN (Conv2d / ReLU / AvgPool2d / Flatten / Linear) trained with torch."""
    try:
        import torch
    except ImportError:  # pragma: no cover - optional
        print("torch not installed: CNN skipped\n")
        return
    nn = torch.nn
    torch.manual_seed(seed)
    x_tr, x_te, y_tr, y_te = digits_data(seed)
    xt = torch.tensor(x_tr.reshape(-1, 1, 8, 8), dtype=torch.float32)
    yt = torch.tensor(y_tr)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for _ in range(20):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    t_train = time.perf_counter() - t0
    xte = x_te.reshape(-1, 1, 8, 8)
    with torch.no_grad():
        ann = np.mean(model(torch.tensor(xte, dtype=torch.float32)).argmax(1).numpy() == y_te)
    net = ann2snn.convert(model, xt)
    t0 = time.perf_counter()
    sc = ann2snn.run(net, xte, steps, every_step=True)
    t_sim = time.perf_counter() - t0
    acc = np.mean(np.argmax(sc, -1) == y_te[None], axis=1)
    kinds = ", ".join(f"{p.name}: {type(p.conn).__name__}" for p in net.projections.values())
    print(f"## ANN-to-SNN: torch CNN ({kinds}); trained {t_train:.1f} s, "
          f"simulated {t_sim:.1f} s\n")
    print(f"ANN test accuracy {ann:.4f}; SNN: " + ", ".join(
        f"{s} steps {acc[s - 1]:.4f}" for s in (5, 10, 20, 50, 100) if s <= steps) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    print(f"ir {ir.__version__}, seed {args.seed}\n")
    lsm_scores(args.seed)
    ann2snn_scores(args.seed, args.steps)
    torch_cnn_scores(args.seed)


if __name__ == "__main__":
    main()
