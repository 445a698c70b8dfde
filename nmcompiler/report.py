"""Compile reports for people: a terminal table (rich) and PNG plots (matplotlib).

The report itself is the JSON dict built by :func:`nmcompiler.compile`
(``compiled.report``, written to ``report.json``); this module only renders it.
PNGs are written with fixed metadata, so the same compile gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["render_compile_report", "plot_core_usage", "PNG_METADATA", "si"]

#: matplotlib metadata for reproducible PNGs (no software version, no date).
PNG_METADATA = {"Software": None}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _esc(x: object) -> str:
    """A name read from a file, safe to print: no rich markup, no escape codes."""
    from .cli_checks import plain

    return plain(x)


def load_report(build: Path) -> dict[str, Any]:
    """Read ``build/report.json`` for ``nmc report``; every fault is a named error.

    Raises:
        UsageError: ``build`` has no ``report.json`` (exit 2).
        FormatError: the file is not JSON, too large, or lacks what the report shows.
    """
    import io
    import json

    from nmcompiler.ir.errors import FormatError, UsageError

    path = Path(build) / "report.json"
    if not path.is_file():
        raise UsageError(f"'{build}' has no report.json", obj=str(build), rule="build dir",
                         hint="compile first: nmc compile MODEL --target T -o DIR")
    bad = dict(obj=str(path), rule="report.json", hint="compile again")
    if path.stat().st_size > 64 * 2**20:
        raise FormatError(f"'{path}' is larger than 64 MB; not a compile report", **bad)
    try:
        rep = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"'{path}' is not valid JSON ({str(exc)[:120]})", **bad) from None
    if not isinstance(rep, dict):
        raise FormatError(f"'{path}' holds {type(rep).__name__}, not a compile report",
                          **bad) from None
    try:
        render_compile_report(rep, Console(file=io.StringIO(), width=160))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError,
            OverflowError) as exc:
        raise FormatError(f"'{path}' is damaged: entry {str(exc)[:80]} missing or malformed",
                          **bad) from None
    return rep


def render_compile_report(report: dict[str, Any], console: Console) -> None:
    """Print the summary and the per-budget usage table of a compile report."""
    tgt = report["target"]
    s = report["summary"]
    net = report["network"]
    head = Table(title=f"{_esc(net['name'])} on {_esc(tgt['name'])}", show_header=False)
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
    summ = beh.get("summary") or {}
    if summ:
        scope = _esc(beh.get("summary_scope", "outputs"))
        head.add_row(f"float spikes kept ({scope})", _kept(summ))
        what = "(step, sample, neuron)" if beh.get("batch") else "(step, neuron)"
        head.add_row(f"entries that agree ({scope})",
                     f"{_pct(summ.get('entries_agree'))} of {what} entries equal")
        head.add_row(f"spurious spikes added ({scope})", _spurious(summ))
        head.add_row("behaviour check", f"{beh.get('steps')} steps of {_esc(beh.get('input'))}"
                     f" against {_esc(beh.get('reference'))}"
                     + (", read at each population's lag" if beh.get("aligned_by_lag")
                        else ""))
    elif beh.get("spike_agreement") is not None:  # a report written before the figures
        head.add_row("entries that agree (old report)", f"{_pct(beh['spike_agreement'])} of "
                     f"(step, neuron) entries equal in the least exact population, over "
                     f"{beh.get('steps')} steps; compile again for float spikes kept")
    elif beh.get("skipped"):
        head.add_row("behaviour check", f"skipped: {_esc(beh['skipped'])}")
    shifts = s.get("output_shift_steps") or {}
    if any(shifts.values()):
        head.add_row("output shift", ", ".join(f"{_esc(k)}: +{v} steps"
                                               for k, v in shifts.items()))
    ret = (report["passes"].get("lower") or {}).get("retiming") or {}
    if ret.get("inexact_populations"):
        why = ret.get("inexact_reasons") or {}
        head.add_row("retiming inexact", "; ".join(
            f"{_esc(k)}: {why.get(k, 'starts early')}" for k in ret["inexact_populations"]))
    unknown = tgt.get("unknown_fields") or []
    if unknown:
        head.add_row("target caveat", f"{len(unknown)} numbers of {_esc(tgt['name'])} are not "
                     "published; labelled defaults are used (docs/targets.md)")
    console.print(head)
    if summ:
        _behaviour_table(beh, console)

    usage = report["partition"].get("usage", {})
    table = Table(title="per-core usage (the fullest core) against the target's budgets")
    for col in ("budget", "max used", "limit", "fill", "total"):
        table.add_column(col, justify="right" if col != "budget" else "left")
    for name, u in usage.items():
        table.add_row(_esc(name), f"{u['max']:,}", "-" if u["limit"] is None else f"{u['limit']:,}",
                      _pct(u["max_fill"]), f"{u['total']:,}")
    console.print(table)
    if "timings_s" in report:
        t = report["timings_s"]
        console.print("compile time: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in t.items() if isinstance(v, (int, float))))


def _kept(f: dict[str, Any]) -> str:
    if f.get("float_spikes_kept") is None:
        return f"- (the float network does not spike; the compiled one spikes " \
               f"{f.get('compiled_spikes', 0):,} times)"
    return (f"{_pct(f['float_spikes_kept'])} ({f.get('kept_spikes', 0):,} of "
            f"{f['float_spikes']:,} float spikes at the same step and neuron)")


def _spurious(f: dict[str, Any]) -> str:
    per = f.get("spurious_per_float_spike")
    return (f"{f.get('spurious_spikes', 0):,} compiled spikes the float network lacks"
            + ("" if per is None else f" ({per:.3f} per float spike)"))


def _behaviour_table(beh: dict[str, Any], console: Console) -> None:
    """Per output population, and every inexact population: the check's figures."""
    pops = beh.get("populations") or {}
    outs = list(dict.fromkeys((beh.get("outputs") or {}).values()))
    shown = outs + [n for n in beh.get("inexact_populations") or [] if n not in outs]
    if not shown:
        return
    t = Table(title="behaviour against the float reference (docs/passes.md#fidelity)")
    for col in ("population", "float spikes kept", "entries that agree", "spurious spikes",
                "lag", "note"):
        t.add_column(col, justify="left" if col in ("population", "note") else "right")
    for n in shown:
        e = pops.get(n) or {}
        note = []
        if n in outs:
            note.append("output")
        if e.get("lowering_inexact"):
            note.append(f"lowering inexact: {e['lowering_inexact']}")
        if "voltage_rel_error" in e:
            t.add_row(_esc(n), "-", "-", "-", str(e.get("lag", 0)), ", ".join(
                note + [f"voltage error {_pct(e['voltage_rel_error'])} of its range"]))
            continue
        if e.get("entries_agree", 1.0) < 1.0:
            note.append(f"first difference at step {e.get('first_difference')}")
        kept = e.get("float_spikes_kept")
        t.add_row(_esc(n), "-" if kept is None else
                  f"{_pct(kept)} of {e.get('float_spikes', 0):,}",
                  _pct(e.get("entries_agree")), f"{e.get('spurious_spikes', 0):,}",
                  str(e.get("lag", 0)), _esc(", ".join(note)))
    console.print(t)


def _chip_axes(ax: Any) -> None:
    """A chip-layout panel: square cells, chip row 0 on top, no ticks."""
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as a reproducible PNG and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return path


def core_positions(target: Target) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D drawing position for every physical core: chips side by side, routers (nodes)
    in the chip, the cores of a node in a small sub-grid."""
    coords = target.core_coords().astype(float)  # chip_x, chip_y, node_x, node_y, slot
    nx_, ny_ = target.topology.node_grid
    sub = int(np.ceil(np.sqrt(max(target.topology.cores_per_node, 1))))
    x = coords[:, 0] * (nx_ + 1) + coords[:, 2] + (coords[:, 4] % sub) / (sub + 1)
    y = coords[:, 1] * (ny_ + 1) + coords[:, 3] + (coords[:, 4] // sub) / (sub + 1)
    return x, y


def plot_core_usage(compiled: Any, path: Path) -> Path:
    """PNG: the chip's cores coloured by neuron fill, and inter-core traffic as lines."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    tgt = compiled.target
    part, pl = compiled.partition, compiled.placement
    x, y = core_positions(tgt)

    fill = np.zeros(len(x))
    names = part.usage.names
    j = names.index("neurons")
    lim = np.maximum(part.usage.limit[:, j], 1)
    fill[pl.core] = part.usage.used[:, j] / lim

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    ax = axes[0]
    used = np.zeros(len(x), dtype=bool)
    used[pl.core] = True
    ax.scatter(x[~used], y[~used], s=12, c="#dddddd", marker="s", label="free core")
    sc = ax.scatter(x[used], y[used], s=30, c=fill[used], cmap="viridis", vmin=0, vmax=1,
                    marker="s", label="used core")
    fig.colorbar(sc, ax=ax, label="neuron budget used")
    ax.set_title(f"{part.n_cores} cores used of {tgt.total_cores} ({tgt.name})")
    _chip_axes(ax)

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
    _chip_axes(ax)
    return _save(fig, path)


# ============================================================================== runs
def run_report(result: Any, compiled: Any, *, top: int = 5) -> dict[str, Any]:
    """JSON summary of a backend run: SOPs, energy by component, latency, busiest parts."""
    c = result.counters
    steps = int(result.steps)
    out: dict[str, Any] = {
        "backend": result.backend,
        "target": compiled.target.name,
        "steps": steps,
        "output_spikes": {k: float(np.asarray(v).sum()) for k, v in result.outputs.items()},
    }
    al = result.info.get("alignment")
    if al:  # outputs aligned to the input (docs/cli.md#output-alignment)
        out["alignment"] = dict(al)
    helpers, per_pop = _helper_split(result, compiled)
    if c.sops is not None:
        sops = np.asarray(c.sops)
        out["synaptic_ops"] = int(sops.sum()) - helpers.get("synaptic_ops", 0)
        out["synaptic_ops_per_step"] = float(out["synaptic_ops"] / max(steps, 1))
        per_core = sops.sum(axis=0)
        busiest = np.argsort(-per_core, kind="stable")[:top]
        phys = np.asarray(compiled.placement.core)
        out["busiest_cores"] = [
            {"logical_core": int(i), "physical_core": int(phys[i]), "sops": int(per_core[i]),
             "spikes": int(np.asarray(c.spikes_sent)[:, i].sum())
             if c.spikes_sent is not None else None}
            for i in busiest if per_core[i] > 0
        ]
    if c.neuron_updates is not None:
        out["neuron_updates"] = int(np.asarray(c.neuron_updates).sum())
    if c.spikes_sent is not None:
        out["spikes"] = int(np.asarray(c.spikes_sent).sum()) - helpers.get("spikes", 0)
    if c.messages is not None:
        out["messages"] = int(np.asarray(c.messages).sum()) - helpers.get("messages", 0)
    if per_pop:
        out["populations"] = per_pop
    if helpers:
        out["helpers"] = helpers
    if c.link_hops is not None and np.asarray(c.link_hops).size:
        lh = np.asarray(c.link_hops).sum(axis=0)
        links = compiled.target.links()
        order = np.argsort(-lh, kind="stable")[:top]
        out["link_hops"] = int(lh.sum())
        out["busiest_links"] = [
            {"link": [int(x) for x in np.asarray(links[i]).reshape(-1)], "messages": int(lh[i])}
            for i in order if lh[i] > 0
        ]
    if c.step_time_s is not None:
        st = np.asarray(c.step_time_s)
        out["latency_per_step_s"] = {"mean": float(st.mean()), "max": float(st.max()),
                                     "total": float(st.sum())}
    if c.energy_j:
        out["energy_j"] = {k: float(v) for k, v in c.energy_j.items()}
        total = float(c.energy_j.get("total", sum(c.energy_j.values())))
        out["energy_per_step_j"] = total / max(steps, 1)
        all_sops = out.get("synaptic_ops", 0) + helpers.get("synaptic_ops", 0)
        if c.sops is not None and all_sops:
            out["energy_per_sop_j"] = total / all_sops
    unknown = compiled.target.unknown_fields()
    costs_unknown = [k for k in unknown if k.startswith("cost.")]
    if costs_unknown:
        out["caveat"] = (f"{len(costs_unknown)} cost numbers of {compiled.target.name} are not "
                         "published; energy and latency use labelled defaults")
    return out


def _helper_split(result: Any, compiled: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The helper populations' share of a run's counters, and the counters per
    population (the backends that count per population: the emulator); helpers are
    the importer's and the lowering's own neurons (:mod:`nmcompiler.helpers`)."""
    from .helpers import helper_populations

    lower = ((getattr(compiled, "report", None) or {}).get("passes") or {}).get("lower")
    marks = helper_populations(compiled.network, lower)
    per_pop = result.info.get("populations") if isinstance(result.info, dict) else None
    if not marks:
        return {}, dict(per_pop or {})
    helpers: dict[str, Any] = {"populations": marks}
    if not isinstance(per_pop, dict):
        helpers["note"] = (f"backend '{result.backend}' does not count per population: the "
                           "totals include these helpers")
        return helpers, {}
    for key in ("spikes", "synaptic_ops", "messages"):
        helpers[key] = int(sum(int((per_pop.get(n) or {}).get(key, 0)) for n in marks))
    helpers["note"] = ("neurons the importer or the lowering added (bias sources, relays); "
                       "their spikes, synaptic operations and messages are kept out of the "
                       "network's totals")
    return helpers, dict(per_pop)


def si(x: float, unit: str) -> str:
    """``x`` with an SI prefix (down to pico) and ``unit``, 3 significant digits."""
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= scale or scale == 1e-12:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:g} {unit}"


def _helper_row(rep: dict[str, Any], t: Table) -> None:
    """The helper populations' line of a run report."""
    h = rep.get("helpers")
    if not h:
        return
    what = ", ".join(f"{_esc(n)} ({_esc(k)})" for n, k in list(h["populations"].items())[:6])
    more = len(h["populations"]) - 6
    what += f" and {more} more" if more > 0 else ""
    if "spikes" in h:
        t.add_row("helper populations (not in the totals above)",
                  f"{h['spikes']:,} spikes, {h['synaptic_ops']:,} synaptic ops, "
                  f"{h['messages']:,} messages: {what}")
    else:
        t.add_row("helper populations (in the totals above)", f"{what}: {_esc(h['note'])}")


def render_run_report(rep: dict[str, Any], console: Console) -> None:
    """Print a run report as tables."""
    t = Table(title=f"run on {_esc(rep['backend'])} ({_esc(rep['target'])}), "
              f"{rep['steps']} steps",
              show_header=False)
    t.add_column("what")
    t.add_column("value")
    if "synaptic_ops" in rep:
        t.add_row("synaptic operations", f"{rep['synaptic_ops']:,} "
                  f"({rep['synaptic_ops_per_step']:,.0f} per step)")
    for key, label in (("neuron_updates", "neuron updates"), ("spikes", "spikes"),
                       ("messages", "messages into the NoC"), ("link_hops", "link hops")):
        if key in rep:
            t.add_row(label, f"{rep[key]:,}")
    _helper_row(rep, t)
    if "latency_per_step_s" in rep:
        lat = rep["latency_per_step_s"]
        t.add_row("latency per step", f"{si(lat['mean'], 's')} mean, {si(lat['max'], 's')} max")
    if "energy_j" in rep:
        e = rep["energy_j"]
        label = "energy (illustrative: not a real chip)" if rep.get("energy_illustrative") \
            else "energy"
        t.add_row(label, ", ".join(f"{k} {si(v, 'J')}" for k, v in e.items()))
        t.add_row("energy per step", si(rep["energy_per_step_j"], "J"))
        if "energy_per_sop_j" in rep:
            t.add_row("energy per synaptic op (all in)", si(rep["energy_per_sop_j"], "J"))
    if rep.get("alignment"):
        al = rep["alignment"]
        t.add_row("output alignment", _esc(
            f"{al['statement']} ({al['input_steps']} rows in outputs.npz; "
            f"{al['steps_run']} steps run)"))
    if rep.get("caveat"):
        t.add_row("caveat", _esc(rep["caveat"]))
    console.print(t)
    if rep.get("busiest_cores"):
        bc = Table(title="busiest cores")
        for col in ("logical core", "physical core", "synaptic ops", "spikes"):
            bc.add_column(col, justify="right")
        for r in rep["busiest_cores"]:
            bc.add_row(str(r["logical_core"]), str(r["physical_core"]), f"{r['sops']:,}",
                       "-" if r["spikes"] is None else f"{r['spikes']:,}")
        console.print(bc)
    if rep.get("busiest_links"):
        bl = Table(title="busiest links (router -> router)")
        bl.add_column("link")
        bl.add_column("messages", justify="right")
        for r in rep["busiest_links"]:
            bl.add_row(" -> ".join(str(x) for x in r["link"]), f"{r['messages']:,}")
        console.print(bl)


def plot_raster(result: Any, path: Path, *, max_neurons: int = 2000) -> Path:
    """PNG: spike rasters of every output (and spike probe), one panel each."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    recs = {k: np.asarray(v) for k, v in {**result.outputs, **result.probes}.items()
            if k in result.outputs or k.endswith(".spikes")}
    n = max(len(recs), 1)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n + 0.6), squeeze=False)
    for ax, (key, arr) in zip(axes[:, 0], recs.items(), strict=False):
        a = np.real(arr[:, 0, :max_neurons]) if arr.ndim == 3 else np.real(arr[:, :max_neurons])
        t_idx, n_idx = np.nonzero(a)
        if t_idx.size and np.all(np.isin(np.unique(a), (0, 1))):
            ax.scatter(t_idx, n_idx, s=2, c="k", marker="|")
            ax.set_ylabel("neuron")
        else:
            im = ax.imshow(a.T, aspect="auto", origin="lower", interpolation="nearest")
            fig.colorbar(im, ax=ax)
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.set_title(key)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, path)


def plot_activity(result: Any, compiled: Any, path: Path) -> Path:
    """PNG: synaptic operations per core, on the chip layout."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    tgt = compiled.target
    x, y = core_positions(tgt)

    act = np.zeros(len(x))
    if result.counters.sops is not None:
        act[np.asarray(compiled.placement.core)] = np.asarray(result.counters.sops).sum(axis=0)
    fig, ax = plt.subplots(figsize=(7, 5))
    used = act > 0
    ax.scatter(x[~used], y[~used], s=12, c="#dddddd", marker="s")
    sc = ax.scatter(x[used], y[used], s=30, c=act[used], cmap="inferno", marker="s")
    fig.colorbar(sc, ax=ax, label="synaptic operations")
    ax.set_title(f"activity per core over {result.steps} steps ({tgt.name})")
    _chip_axes(ax)
    return _save(fig, path)
