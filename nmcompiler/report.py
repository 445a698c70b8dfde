"""Compile reports for people: a terminal table (rich) and PNG plots (matplotlib).

The report itself is the JSON dict built by :func:`nmcompiler.compile`
(``compiled.report``, written to ``report.json``); this module only renders it.
PNGs are written with fixed metadata, so the same compile gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

__all__ = ["render_compile_report", "plot_core_usage", "PNG_METADATA"]

#: matplotlib metadata for reproducible PNGs (no software version, no date).
PNG_METADATA = {"Software": None}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_compile_report(report: dict[str, Any], console: Console) -> None:
    """Print the summary and the per-budget usage table of a compile report."""
    tgt = report["target"]
    s = report["summary"]
    net = report["network"]
    head = Table(title=f"{net['name']} on {tgt['name']}", show_header=False)
    head.add_column("what")
    head.add_column("value")
    head.add_row("network", f"{net['neurons']:,} neurons in {net['populations']} populations, "
                 f"{net['synapses']:,} synapses after lowering")
    head.add_row("cores", f"{s['cores_used']} of {s['cores_available']} "
                 f"({s['chips_used']} chip(s))")
    head.add_row("inter-core messages", f"{s['inter_core_messages']:,} per spike round "
                 f"(one per source neuron and destination core)")
    head.add_row("mean hops", f"{s['mean_hops']:.2f}")
    head.add_row("busiest link", f"{s['max_link_load']:,} messages" if s["max_link_load"]
                 is not None else "-")
    q = report["passes"].get("quantize", {}).get("summary", {})
    if q:
        head.add_row("quantisation", f"weight RMS error {_pct(q.get('max_weight_rel_rms_error'))}"
                     f" of RMS weight, largest error {_pct(q.get('max_weight_rel_error'))} of "
                     f"largest weight, {q.get('clipped_synapses', 0)} clipped synapses")
    beh = report["passes"].get("quantize", {}).get("behaviour") or {}
    if beh.get("spike_agreement") is not None:
        head.add_row("spike agreement", f"{_pct(beh['spike_agreement'])} of float spikes "
                     f"kept over {beh.get('steps')} test steps")
    shifts = s.get("output_shift_steps") or {}
    if any(shifts.values()):
        head.add_row("output shift", ", ".join(f"{k}: +{v} steps" for k, v in shifts.items()))
    unknown = tgt.get("unknown_fields") or []
    if unknown:
        head.add_row("target caveat", f"{len(unknown)} numbers of {tgt['name']} are not "
                     "published; labelled defaults are used (docs/targets.md)")
    console.print(head)

    usage = report["partition"].get("usage", {})
    table = Table(title="per-core usage (the fullest core) against the target's budgets")
    for col in ("budget", "max used", "limit", "fill", "total"):
        table.add_column(col, justify="right" if col != "budget" else "left")
    for name, u in usage.items():
        table.add_row(name, f"{u['max']:,}", "-" if u["limit"] is None else f"{u['limit']:,}",
                      _pct(u["max_fill"]), f"{u['total']:,}")
    console.print(table)
    if "timings_s" in report:
        t = report["timings_s"]
        console.print("compile time: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in t.items() if isinstance(v, (int, float))))


def plot_core_usage(compiled: Any, path: Path) -> Path:
    """PNG: the chip's cores coloured by neuron fill, and inter-core traffic as lines."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    tgt = compiled.target
    part, pl = compiled.partition, compiled.placement
    coords = tgt.core_coords().astype(float)  # chip_x, chip_y, node_x, node_y, slot
    nx_, ny_ = tgt.topology.node_grid
    cpn = max(tgt.topology.cores_per_node, 1)
    sub = int(np.ceil(np.sqrt(cpn)))
    # a 2-D position for every physical core: chips side by side, nodes in the chip,
    # cores of a node in a small sub-grid
    x = coords[:, 0] * (nx_ + 1) + coords[:, 2] + (coords[:, 4] % sub) / (sub + 1)
    y = coords[:, 1] * (ny_ + 1) + coords[:, 3] + (coords[:, 4] // sub) / (sub + 1)
    fill = np.zeros(len(coords))
    names = part.usage.names
    j = names.index("neurons")
    lim = np.maximum(part.usage.limit[:, j], 1)
    fill[pl.core] = part.usage.used[:, j] / lim

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    ax = axes[0]
    used = np.zeros(len(coords), dtype=bool)
    used[pl.core] = True
    ax.scatter(x[~used], y[~used], s=12, c="#dddddd", marker="s", label="free core")
    sc = ax.scatter(x[used], y[used], s=30, c=fill[used], cmap="viridis", vmin=0, vmax=1,
                    marker="s", label="used core")
    fig.colorbar(sc, ax=ax, label="neuron budget used")
    ax.set_title(f"{part.n_cores} cores used of {tgt.total_cores} ({tgt.name})")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])

    ax = axes[1]
    ax.scatter(x[~used], y[~used], s=12, c="#eeeeee", marker="s")
    ax.scatter(x[used], y[used], s=20, c="#444444", marker="s")
    if len(part.edge_src):
        src, dst = pl.core[part.edge_src], pl.core[part.edge_dst]
        w = part.edge_messages.astype(float)
        order = np.argsort(w, kind="stable")[-2000:]  # the heaviest edges
        wmax = w.max()
        from matplotlib.collections import LineCollection

        segs = np.stack([np.stack([x[src[order]], y[src[order]]], 1),
                         np.stack([x[dst[order]], y[dst[order]]], 1)], 1)
        lc = LineCollection(segs, linewidths=0.3 + 2.5 * w[order] / wmax,
                            colors=plt.cm.plasma(w[order] / wmax), alpha=0.6)
        ax.add_collection(lc)
    ax.set_title(f"inter-core traffic: {part.messages:,} messages, "
                 f"mean {pl.mean_hops:.2f} hops")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return path
