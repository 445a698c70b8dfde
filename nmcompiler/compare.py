"""One network on every chip, side by side (``nmc compare``; docs/compare.md).

:func:`compare` compiles one network for each target (in parallel processes), runs every
compiled network on the emulator backend with the same input, runs the float reference
(:func:`nmcompiler.ir.simulate`) on that input, and returns one record per target::

    from nmcompiler.compare import compare
    records = compare(network, ["loihi2", "spinnaker", "speck2f"], steps=100, rate=0.05)

Every record has the same keys (:data:`COLUMNS`): whether the network fits (or the named
reason it does not), cores and chips, synaptic operations, energy and latency from the
target's cost model, the agreement of the outputs with the float reference, the
quantisation error, and how many unpublished cost numbers (labelled defaults, see
docs/targets.md) stand behind each figure. :func:`write_compare` writes ``compare.json``,
``compare.csv`` and ``compare.png`` into a directory, atomically. The same network,
input, targets and seed give byte-identical files.

:func:`evaluate_point` does the work for one target and one set of compile options; the
design-space sweep (:mod:`nmcompiler.sweep`) calls it for every point of its grid.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import FitError, FormatError, NmcError, RetimingError, UsageError

__all__ = [
    "COLUMNS",
    "ComparePoint",
    "compare",
    "evaluate_point",
    "reference_outputs",
    "random_inputs",
    "load_inputs",
    "derive_target",
    "unpublished_numbers",
    "pareto_front",
    "write_compare",
    "render_table",
    "COMPARE_FORMAT",
]

COMPARE_FORMAT = "nmcompiler.compare"
COMPARE_VERSION = 1
_COMPARE_FILES = frozenset({"compare.json", "compare.csv", "compare.png"})

#: The columns of a record, in table order (``compare.csv`` has exactly these).
COLUMNS = (
    "target", "status", "reason", "cores", "chips", "synaptic_ops_per_step",
    "energy_per_step_j", "energy_per_inference_j", "latency_per_step_s",
    "latency_per_inference_s", "agreement", "decision_agreement", "output_spikes",
    "reference_spikes", "quantisation_error", "score", "unpublished_fit",
    "unpublished_energy", "unpublished_latency", "unpublished_quantisation",
)

#: Cost-model fields behind each figure (the emulator's formulas, docs/emulator.md).
_ENERGY_FIELDS = ("energy_per_synop_j", "energy_per_neuron_update_j", "energy_per_hop_j",
                  "energy_per_hop_x_j", "energy_per_hop_y_j", "energy_per_spike_sent_j",
                  "energy_per_spike_local_j", "static_power_w", "power_per_active_core_w",
                  "synop_energy_all_in")
_STATIC_FIELDS = ("static_power_w", "power_per_active_core_w")
_LATENCY_FIELDS = ("time_per_synop_s", "time_per_neuron_update_s", "time_per_hop_s",
                   "time_per_hop_x_s", "time_per_hop_y_s", "time_per_spike_local_s",
                   "barrier_time_s", "step_time_s")
_FIT_SECTIONS = ("topology.", "core_budget.", "chip_budget.", "capabilities.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComparePoint:
    """One target with one set of compile options.

    Attributes:
        target: a bundled target name (``nmc targets``) or a TOML path.
        seed: seed of every compile pass (and of the random input where none is given).
        partitioner: ``partition_method`` of :func:`nmcompiler.compile`.
        placer: ``place_method`` of :func:`nmcompiler.compile`.
        weight_bits: override the target's weight width (None: the target's own).
        max_neurons_per_core: cap the target's neurons per core (None: no cap).
    """

    target: str
    seed: int = 0
    partitioner: str = "auto"
    placer: str = "auto"
    weight_bits: int | None = None
    max_neurons_per_core: int | None = None

    def options(self) -> dict[str, Any]:
        """The point as a JSON-ready dict."""
        return dataclasses.asdict(self)


# ============================================================================ inputs
def random_inputs(net: ir.Network, steps: int, rate: float, seed: int) -> dict[str, np.ndarray]:
    """Bernoulli spikes of probability ``rate`` per channel and step, ``(steps, n)`` per
    input, from ``numpy.random.default_rng(seed)`` (inputs in network order)."""
    if not 0.0 <= rate <= 1.0 or not math.isfinite(rate):
        raise UsageError(f"input rate {rate} is not a probability", obj="rate",
                         rule="0 <= rate <= 1", need="0..1", limit=rate,
                         hint="pass e.g. --rate 0.05")
    _check_steps(steps)
    rng = np.random.default_rng(seed)
    return {name: (rng.random((steps, inp.size)) < rate).astype(np.float64)
            for name, inp in net.inputs.items()}


def _check_steps(steps: Any) -> None:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1 \
            or steps > 10_000_000:
        raise UsageError(f"steps = {steps!r} is not a step count", obj="steps",
                         rule="1 <= steps <= 1e7", limit=steps, hint="pass --steps N")


def load_inputs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Arrays of a ``.npz`` file (one per input name, ``(T, n)`` or ``(T, B, n)``)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as f:
            return {k: np.asarray(f[k]) for k in f.files}
    except FileNotFoundError:
        raise FormatError(f"input file '{p}' does not exist", obj=str(p), rule="file exists",
                          hint="check the path") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"input file '{p}' is not a .npz of arrays ({exc})", obj=str(p),
                          rule="npz", hint="write it with numpy.savez(path, input_name=array)"
                          ) from None


def _input_steps(inputs: Mapping[str, np.ndarray]) -> int:
    lengths = [int(np.shape(v)[0]) for v in inputs.values() if np.ndim(v)]
    if not lengths:
        raise UsageError("the input file holds no arrays with a time axis", obj="inputs",
                         rule="(T, n) arrays", hint="numpy.savez(path, input=x) with x (T, n)")
    return min(lengths)


def with_outputs(net: ir.Network) -> ir.Network:
    """``net`` itself, or (when it declares no outputs) a copy whose every population is
    an output, so that a network without outputs can still be compared."""
    if net.outputs:
        return net
    outs = {name: ir.Output(name=name, source=name) for name in net.populations}
    return net.replace(outputs=outs)


def reference_outputs(net: ir.Network, inputs: Mapping[str, np.ndarray],
                      steps: int) -> dict[str, np.ndarray]:
    """The float reference's outputs, ``(T, B, n)`` per output (``ir.simulate``)."""
    return dict(ir.simulate(net, dict(inputs), steps).outputs)


# ============================================================================ targets
def derive_target(target: Any, *, weight_bits: int | None = None,
                  max_neurons_per_core: int | None = None) -> Any:
    """``target`` with a narrower (or wider) weight format and / or a neurons-per-core cap.

    The changed numbers are marked ``synthetic`` (a design value) in the provenance, so
    they no longer count as unpublished. Returns ``target`` itself when nothing changes.
    """
    if weight_bits is None and max_neurons_per_core is None:
        return target
    changes: dict[str, Any] = {}
    keys: list[str] = []
    if weight_bits is not None:
        if not isinstance(weight_bits, int) or isinstance(weight_bits, bool) or \
                not 1 <= weight_bits <= 32:
            raise UsageError(f"weight_bits = {weight_bits!r}", obj="weight_bits",
                             rule="1 <= weight_bits <= 32", limit=weight_bits,
                             hint="give an integer bit width such as 8")
        changes["formats"] = dataclasses.replace(target.formats, weight_bits=weight_bits)
        keys.append("formats.weight_bits")
    if max_neurons_per_core is not None:
        cap = max_neurons_per_core
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise UsageError(f"max_neurons_per_core = {cap!r}", obj="max_neurons_per_core",
                             rule=">= 1", limit=cap, hint="give a positive neuron count")
        n = target.core.neurons
        capped = tuple(min(int(v), cap) for v in n) if isinstance(n, tuple) else min(int(n), cap)
        changes["core"] = dataclasses.replace(target.core, neurons=capped)
        keys.append("core_budget.neurons")
    sources = tuple(
        dataclasses.replace(p, status="synthetic", source="compare/sweep override",
                            note=None) if p.key in keys else p
        for p in target.sources)
    return dataclasses.replace(target, sources=sources, _cache={}, **changes)


def unpublished_numbers(target: Any) -> dict[str, tuple[str, ...]]:
    """The target's unpublished numbers (labelled defaults) behind each figure.

    ``fit``: topology, core and chip budgets, capabilities (fits, cores, chips);
    ``energy``: the energy fields of the emulator's cost formulas (with the time fields
    when static power is charged over the step time); ``latency``: the time fields;
    ``quantisation``: the number formats (agreement and quantisation error).
    """
    unknown = set(target.unknown_fields())
    cost = target.cost
    energy = [f for f in _ENERGY_FIELDS if f"cost.{f}" in unknown]
    latency = [f for f in _LATENCY_FIELDS if f"cost.{f}" in unknown]
    static = not cost.synop_energy_all_in and any(
        getattr(cost, f) for f in _STATIC_FIELDS)
    if cost.synop_energy_all_in:  # routing and static parts are inside the synop figure
        energy = [f for f in energy if f in ("energy_per_synop_j",
                                             "energy_per_neuron_update_j",
                                             "synop_energy_all_in")]
    if static:
        energy += [f for f in latency if f not in energy]
    return {
        "fit": tuple(sorted(k for k in unknown if k.startswith(_FIT_SECTIONS))),
        "energy": tuple(f"cost.{f}" for f in energy),
        "latency": tuple(f"cost.{f}" for f in latency),
        "quantisation": tuple(sorted(k for k in unknown if k.startswith("formats."))),
    }


# ============================================================================ one point
def _empty_record(point: ComparePoint) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(COLUMNS)
    rec["target"] = point.target
    return rec


def _agreement(network: ir.Network, compiled: Any, run_outputs: Mapping[str, np.ndarray],
               reference: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Output agreement of a run with the float reference (docs/compare.md).

    Spiking outputs: spikes in both runs over spikes in either (the Jaccard index of the
    two spike sets over (step, sample, neuron); 1 when both are silent), the compiled
    outputs read ``output_shift`` steps later (retiming).
    Voltage outputs: the fraction of (step, sample) where the largest output neuron is
    the same. ``decision_agreement``: the fraction of samples whose output with the most
    spikes (or the largest summed voltage) over the run is the same. Both are the minimum
    over outputs.
    """
    shifts = compiled.report.get("summary", {}).get("output_shift_steps", {}) or {}
    agree: list[float] = []
    decide: list[float] = []
    n_out = n_ref = 0.0
    for name, ref in reference.items():
        if name not in run_outputs:
            continue
        a = np.asarray(ref).real
        b = np.asarray(run_outputs[name]).real
        s = int(shifts.get(name, 0))
        t = min(a.shape[0], b.shape[0] - s)
        if t <= 0:
            continue
        a, b = a[:t], b[s:s + t]
        src = network.outputs[name].source
        if network.populations[src].model.spiking:
            both = float(np.count_nonzero((a != 0) & (b != 0)))
            either = float(np.count_nonzero((a != 0) | (b != 0)))
            agree.append(both / either if either else 1.0)
            n_ref += float(np.count_nonzero(a))
            n_out += float(np.count_nonzero(b))
            sa, sb = (a != 0).sum(axis=0), (b != 0).sum(axis=0)
        else:
            agree.append(float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1))))
            sa, sb = a.sum(axis=0), b.sum(axis=0)
        if a.shape[-1] > 1:
            decide.append(float(np.mean(np.argmax(sa, axis=-1) == np.argmax(sb, axis=-1))))
    return {
        "agreement": min(agree) if agree else None,
        "decision_agreement": min(decide) if decide else None,
        "output_spikes": int(n_out),
        "reference_spikes": int(n_ref),
    }


def evaluate_point(
    network: ir.Network,
    point: ComparePoint,
    inputs: Mapping[str, np.ndarray],
    steps: int,
    reference: Mapping[str, np.ndarray] | None = None,
    *,
    score: Callable[[Mapping[str, np.ndarray]], float] | None = None,
    timings: bool = False,
    catch: type[BaseException] | tuple[type[BaseException], ...] = NmcError,
) -> dict[str, Any]:
    """Compile ``network`` for one point, run it on the emulator, and return its record.

    Args:
        network: the float network (with outputs: see :func:`with_outputs`).
        point: target and compile options.
        inputs: the run's input, ``(T, n)`` or ``(T, B, n)`` per input.
        steps: the run's length in steps.
        reference: :func:`reference_outputs` of the same input (computed when None).
        score: optional ``score(outputs) -> float`` of the run's outputs (e.g. accuracy).
        timings: add ``compile_time_s`` and ``run_time_s`` (wall clock: not reproducible).
        catch: errors recorded as the point's status instead of raised. ``NmcError``
            (the default) records "does not fit" and other named errors; the sweep passes
            ``Exception`` so that no point stops it.

    Returns:
        A dict with the :data:`COLUMNS` (``status`` ``ok``, ``does not fit`` or
        ``error``; ``reason`` the named error) plus ``unpublished`` (the field names).
    """
    from .api import compile as compile_network
    from .backend import get_backend
    from .targets import load_target

    rec = _empty_record(point)
    if reference is None:
        reference = reference_outputs(network, inputs, steps)
    stage = "target"
    t0 = time.perf_counter()
    try:
        tgt = derive_target(load_target(point.target), weight_bits=point.weight_bits,
                            max_neurons_per_core=point.max_neurons_per_core)
        unpub = unpublished_numbers(tgt)
        rec["unpublished"] = {k: list(v) for k, v in unpub.items()}
        for k, v in unpub.items():
            rec[f"unpublished_{k}"] = len(v)
        stage = "compile"
        compiled = compile_network(network, tgt, seed=point.seed,
                                   partition_method=point.partitioner,
                                   place_method=point.placer)
        t1 = time.perf_counter()
        if timings:
            rec["compile_time_s"] = t1 - t0
        stage = "run"
        result = get_backend("emulator").run(compiled, dict(inputs), steps)
        if timings:
            rec["run_time_s"] = time.perf_counter() - t1
    except catch as exc:
        rec["status"] = "does not fit" if isinstance(exc, (FitError, RetimingError)) \
            else "error"
        msg = exc.message if isinstance(exc, NmcError) else str(exc)
        rec["reason"] = f"{type(exc).__name__} ({stage}): {msg}"
        if timings and "compile_time_s" not in rec:
            rec["compile_time_s"] = time.perf_counter() - t0
        return rec
    rec.update(_figures(compiled, result, steps))
    rec.update(_agreement(network, compiled, result.outputs, reference))
    if score is not None:
        rec["score"] = float(score(result.outputs))
    rec["status"] = "ok"
    return rec


def _figures(compiled: Any, result: Any, steps: int) -> dict[str, Any]:
    """Cores, chips, SOPs, energy and latency of one run (per sample of a batch)."""
    k = result.counters
    batch = max(int(next((np.shape(v)[1] for v in result.outputs.values()), 1)), 1)
    summ = compiled.report.get("summary", {})
    q = compiled.report.get("passes", {}).get("quantize", {}).get("summary", {}) or {}
    energy = float(k.energy_j.get("total", 0.0)) if k.energy_j else None
    lat = float(np.asarray(k.step_time_s).sum()) if k.step_time_s is not None else None
    sops = float(np.asarray(k.sops).sum()) if k.sops is not None else None
    per = steps * batch
    return {
        "cores": int(compiled.n_cores),
        "chips": int(summ.get("chips_used", 0)),
        "synaptic_ops_per_step": None if sops is None else sops / per,
        "energy_per_step_j": None if energy is None else energy / per,
        "energy_per_inference_j": None if energy is None else energy / batch,
        "latency_per_step_s": None if lat is None else lat / per,
        "latency_per_inference_s": None if lat is None else lat / batch,
        "quantisation_error": q.get("max_weight_rel_rms_error"),
    }


def _mp_context() -> Any:
    """``fork`` where it exists and this process runs one thread (cheap: the children
    inherit the imports; safe: no other thread can hold a lock), else ``spawn`` (then a
    script calling :func:`compare` needs the ``if __name__ == "__main__":`` guard)."""
    import threading

    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _picklable(obj: Any) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
    except Exception:  # a closure or lambda: such a score runs in this process
        return False
    return True


def _worker(args: tuple) -> dict[str, Any]:
    network, point, inputs, steps, reference, score = args
    return evaluate_point(network, point, inputs, steps, reference, score=score)


# ============================================================================ compare
def default_targets() -> list[str]:
    """The bundled targets (``nmc targets``), in their listing order."""
    from .targets import list_targets

    return [t.name for t in list_targets()]


def compare(
    network: ir.Network,
    targets: Sequence[str] | None = None,
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
    steps: int | None = None,
    rate: float = 0.05,
    seed: int = 0,
    jobs: int | None = None,
    score: Callable[[Mapping[str, np.ndarray]], float] | None = None,
) -> list[dict[str, Any]]:
    """Compile and run ``network`` on every target with the same input: one record each.

    Args:
        network: the float network (a network without outputs gets every population as
            an output, :func:`with_outputs`).
        targets: target names or TOML paths (default: every bundled target).
        inputs: ``(T, n)`` / ``(T, B, n)`` arrays per input name; default: Bernoulli
            spikes of ``rate`` for ``steps`` steps (default 100) seeded by ``seed``.
        steps: steps to run (default: the inputs' length, or 100).
        rate: spike probability of the random input.
        seed: compile seed of every target and seed of the random input.
        jobs: processes (default: one per target, at most the CPU count; 1 runs here).
        score: optional ``score(outputs) -> float`` (e.g. accuracy); one that cannot be
            pickled (a closure) makes the targets run one after another in this process.

    Returns:
        The records, in the order of ``targets`` (identical whatever ``jobs``).

    Raises:
        ConfigError / UsageError: an unknown target or a bad option (before any work);
        InputError: an input the network does not accept.
    """
    from .targets import load_target

    names = list(targets) if targets else default_targets()
    if not names:
        raise UsageError("no targets to compare", obj="targets", rule="at least one",
                         hint="pass --targets loihi2,spinnaker")
    for n in names:  # unknown names fail here, before any process starts
        load_target(n)
    net = with_outputs(network)
    if inputs is None:
        steps = 100 if steps is None else steps
        inputs = random_inputs(net, steps, rate, seed)
    elif steps is None:
        steps = _input_steps(inputs)
    _check_steps(steps)
    reference = reference_outputs(net, inputs, steps)
    points = [ComparePoint(target=n, seed=seed) for n in names]
    work = [(net, p, inputs, steps, reference, score) for p in points]
    jobs = min(len(points), os.cpu_count() or 1) if jobs is None else max(int(jobs), 1)
    if jobs == 1 or len(points) == 1 or not _picklable(score):
        return [_worker(w) for w in work]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context()) as pool:
        return list(pool.map(_worker, work))


# ============================================================================ outputs
def pareto_front(records: Sequence[Mapping[str, Any]],
                 x: str = "latency_per_step_s", y: str = "energy_per_inference_j") -> list[int]:
    """Indices of the records no other record beats on both ``x`` and ``y`` (lower is
    better; records without both figures are left out), in input order."""
    pts = [(i, r[x], r[y]) for i, r in enumerate(records)
           if r.get(x) is not None and r.get(y) is not None]
    front = []
    for i, xi, yi in pts:
        dominated = any((xj <= xi and yj <= yi) and (xj < xi or yj < yi)
                        for j, xj, yj in pts if j != i)
        if not dominated:
            front.append(i)
    return front


def json_text(doc: Any) -> str:
    from .compiled import json_default

    return json.dumps(doc, indent=2, sort_keys=True, default=json_default) + "\n"


def csv_text(records: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """The records as CSV (``repr``-exact floats, empty cells for missing values)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in records:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def plot_compare(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """PNG: energy per inference vs latency per step (marker size by cores, the Pareto
    front joined) and a bar panel of output agreement with the float reference."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .report import PNG_METADATA

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2),
                                 gridspec_kw={"width_ratios": [3, 2]})
    ok = [i for i, r in enumerate(records) if r.get("status") == "ok"
          and r.get("latency_per_step_s") and r.get("energy_per_inference_j")]
    front = set(pareto_front([records[i] for i in ok]))
    cores = [max(int(records[i]["cores"] or 1), 1) for i in ok]
    cmax = max(cores, default=1)
    labels: dict[tuple[float, float], list[str]] = {}
    for k, i in enumerate(ok):
        r = records[i]
        on = k in front
        xy = (r["latency_per_step_s"], r["energy_per_inference_j"])
        ax.scatter(*xy, s=40 + 400 * math.sqrt(cores[k] / cmax), alpha=0.75,
                   edgecolors="black" if on else "none", linewidths=1.5,
                   color="tab:red" if on else "tab:blue", zorder=3)
        labels.setdefault(xy, []).append(f"{r['target']} ({r['cores']} cores)")
    for xy, names in labels.items():  # targets on the same point share one label
        ax.annotate("\n".join(names), xy, textcoords="offset points", xytext=(8, 6),
                    fontsize=8)
    fr = sorted((records[ok[k]]["latency_per_step_s"], records[ok[k]]["energy_per_inference_j"])
                for k in front)
    if len(fr) > 1:
        ax.plot([p[0] for p in fr], [p[1] for p in fr], "--", color="tab:red", zorder=2,
                label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    if ok:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("latency per step (s, modelled)")
    ax.set_ylabel("energy per inference (J, modelled)")
    ax.set_title(title or "energy vs latency (marker size: cores; red: Pareto front)")
    ax.grid(True, which="both", alpha=0.3)

    names = [r["target"] for r in records]
    vals = [r["agreement"] if r.get("agreement") is not None else 0.0 for r in records]
    ypos = np.arange(len(records))
    bx.barh(ypos, vals, color=["tab:green" if r.get("agreement") is not None else "#cccccc"
                               for r in records])
    for y, r in enumerate(records):
        label = (f"{100 * r['agreement']:.1f}%" if r.get("agreement") is not None
                 else r.get("status") or "-")
        bx.text(0.01, y, label, va="center", fontsize=8)
    bx.set_yticks(ypos, names)
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xlabel("output agreement with the float reference")
    bx.set_title("agreement (spikes in both / spikes in either)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
    return path


def write_compare(records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``compare.json`` (meta + records), ``compare.csv`` and ``compare.png`` into
    ``out_dir`` atomically (a failure leaves nothing; an existing directory is replaced
    only when it holds nothing but these files)."""
    from .compiled import write_dir_atomically

    out = Path(out_dir)
    check_replaceable(out, _COMPARE_FILES)
    doc = {"format": COMPARE_FORMAT, "version": COMPARE_VERSION, **dict(meta or {}),
           "columns": list(COLUMNS), "records": [dict(r) for r in records],
           "pareto_front": [records[i]["target"] for i in pareto_front(records)]}

    def fill(tmp: Path) -> None:
        (tmp / "compare.json").write_text(json_text(doc))
        (tmp / "compare.csv").write_text(csv_text(records))
        plot_compare(records, tmp / "compare.png", str((meta or {}).get("title", "")))

    return write_dir_atomically(out, fill)


def check_replaceable(out: Path, ours: Collection[str] = ()) -> None:
    """The project's ``-o`` rule (docs/cli.md): refuse to replace anything nmcompiler did
    not write (a non-empty directory without its marker, a file, the working directory).

    ``ours`` (the file names this command writes) is kept for callers; the marker file
    that every atomic output holds is what identifies nmcompiler's own directories.
    """
    from .outputs import check_output

    check_output(Path(out))


# ============================================================================ table
def si_or_dash(x: float | None, unit: str) -> str:
    from .report import si

    return "-" if x is None else si(x, unit)


def render_table(records: Sequence[Mapping[str, Any]], console: Any, title: str = "") -> None:
    """Print the records as one rich table."""
    from rich.table import Table

    table = Table(title=title or "one network on every target (emulator in each target's "
                  "arithmetic; energy and latency from its cost model)")
    has_score = any(r.get("score") is not None for r in records)
    for col in ("target", "fits", "cores", "chips", "SOPs / step", "energy / step",
                "energy / inference", "latency / step", "agreement", "quant. error",
                "unpublished fit/E/t/q") + (("score",) if has_score else ()) + ("note",):
        table.add_column(col, overflow="fold")
    front = set(pareto_front(records))
    for i, r in enumerate(records):
        unpub = "/".join("-" if r.get(f"unpublished_{k}") is None else
                         str(r[f"unpublished_{k}"])
                         for k in ("fit", "energy", "latency", "quantisation"))
        if r.get("status") != "ok":
            row = [r["target"], "no" if r.get("status") == "does not fit" else "error"] + \
                ["-"] * 8 + [unpub] + (["-"] if has_score else []) + [str(r.get("reason"))]
        else:
            agr = "-" if r.get("agreement") is None else f"{100 * r['agreement']:.1f}%"
            qe = "-" if r.get("quantisation_error") is None else \
                f"{100 * r['quantisation_error']:.2g}%"
            row = [r["target"] + (" *" if i in front else ""), "yes", str(r["cores"]),
                   str(r["chips"]), f"{r['synaptic_ops_per_step']:,.0f}",
                   si_or_dash(r["energy_per_step_j"], "J"),
                   si_or_dash(r["energy_per_inference_j"], "J"),
                   si_or_dash(r["latency_per_step_s"], "s"), agr, qe, unpub]
            if has_score:
                row.append("-" if r.get("score") is None else f"{100 * r['score']:.1f}%")
            row.append("")
        table.add_row(*row)
    console.print(table)
    console.print("* on the Pareto front of energy per inference and latency per step. "
                  "Unpublished fit/E/t/q: labelled default numbers (docs/targets.md) behind "
                  "the fit, the energy, the latency and the quantisation figures. Agreement: "
                  "output spikes in both the compiled run and the float reference over spikes "
                  "in either (docs/compare.md), not the compile report's float spikes kept.")


# ============================================================================ command
def compare_command(model: Path, targets: str | None, input_path: Path | None, rate: float,
                    steps: int | None, seed: int, out: Path | None, jobs: int | None,
                    json_out: bool, console: Any) -> list[dict[str, Any]]:
    """What ``nmc compare`` does (the CLI only parses options)."""
    from .api import load_model

    net, warnings = load_model(model)
    if warnings:
        from rich.console import Console

        err = Console(stderr=True)
        for w in warnings:
            err.print(f"[yellow]warning:[/] {w}", highlight=False)
    names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    inputs = load_inputs(input_path) if input_path is not None else None
    dest = out or Path(f"{model.stem}-compare")
    check_replaceable(dest, _COMPARE_FILES)
    records = compare(net, names, inputs=inputs, steps=steps, rate=rate, seed=seed, jobs=jobs)
    used_steps = steps if steps is not None else (
        _input_steps(inputs) if inputs is not None else 100)
    meta = {"model": model.name, "network": net.name, "seed": seed, "steps": used_steps,
            "input": input_path.name if input_path is not None else
            {"random_rate": rate, "seed": seed}}
    write_compare(records, dest, meta)
    if json_out:
        console.print_json(json_text({"records": records}))
    else:
        render_table(records, console, title=f"{net.name}: one network on every target")
        console.print(f"wrote {dest}/compare.json, compare.csv, compare.png")
    return records
