"""What ``nmc run`` and ``nmc deploy`` give back beyond the cost report (docs/cli.md).

* :func:`run_with_outputs` runs a backend with the requested probes (``POP.v``,
  ``POP.u``, ``POP.spikes``; ``record_all`` adds every population's spikes), splits a
  large batch into chunks of ``batch_size`` samples (the chunks' outputs are joined along
  the batch axis, their counters added: samples run one after another), and shows a rich
  progress bar with steps/s once a run has taken more than a second (never under
  ``--json`` or when stdout is not a terminal).
* :class:`RunOutputs` writes ``outputs.npz`` (one array per output name, per probe key
  and, with ``record_all``, per ``POP.spikes``; shape ``(T, n)``, or ``(T, B, n)`` for
  batched inputs) and adds to the run report the spike counts per output population and
  per neuron (per batch sample for batched inputs; the most active neuron is a
  classifier's class), and labels energy as illustrative on a target that is not a real
  chip.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from nmcompiler.ir.errors import InputError, UsageError

__all__ = ["RunOutputs", "run_with_outputs", "probe_keys", "PER_NEURON_MAX", "Alignment",
           "alignment_of", "pad_inputs", "align_result", "run_aligned"]

#: per-neuron counts go into the JSON report up to this many neurons per output
#: (outputs.npz always has every neuron)
PER_NEURON_MAX = 10_000
#: per-neuron counts are printed up to this many neurons (else the most active ones)
PRINT_NEURONS = 16
_VARS = ("spikes", "v", "u")


def probe_keys(network: Any, probes: tuple[str, ...] | list[str], record_all: bool
               ) -> tuple[str, ...]:
    """The probe keys to record: ``POP.var`` checked against the network, plus every
    population's ``.spikes`` with ``record_all``; duplicates dropped, order kept."""
    keys: list[str] = []
    for key in probes:
        pop, _, var = str(key).rpartition(".")
        if not pop or var not in _VARS:
            raise UsageError(f"--probe '{key}' is not POPULATION.VARIABLE", obj=str(key),
                             rule="probe format", need="POP.v, POP.u or POP.spikes",
                             hint="e.g. --probe hidden.v")
        if pop not in network.populations:
            raise InputError(f"--probe '{key}': the network has no population '{pop}'",
                             obj=str(key), rule="known population",
                             limit=sorted(network.populations)[:20],
                             hint="populations: " + ", ".join(list(network.populations)[:20]))
        keys.append(f"{pop}.{var}")
    if record_all:
        keys += [f"{p}.spikes" for p in network.populations]
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True, kw_only=True)
class Alignment:
    """How far a compiled network's outputs lag its input (docs/cli.md#output-alignment).

    Retiming shifts outputs (``+2`` steps on loihi2): output ``o`` emits at step
    ``t + outputs[o]`` the response to input step ``t``; a population's probes lag by
    ``populations[pop]``. A run aligned by this pads the input with zero steps and reads
    each recording its lag later, so that row ``t`` is the response to input step ``t``.
    """

    outputs: dict[str, int] = field(default_factory=dict)
    populations: dict[str, int] = field(default_factory=dict)

    def lag_of(self, key: str) -> int:
        """The lag of an output name or a probe key ``POP.var``."""
        if key in self.outputs:
            return int(self.outputs[key])
        return int(self.populations.get(key.rpartition(".")[0], 0))

    def pad(self, keys: tuple[str, ...] | list[str] = ()) -> int:
        """Zero steps to add: the largest lag of the outputs and of ``keys``."""
        return max([int(v) for v in self.outputs.values()]
                   + [self.lag_of(k) for k in keys], default=0)


def alignment_of(compiled: Any) -> Alignment:
    """The :class:`Alignment` of a compiled network (from its compile report)."""
    rep = getattr(compiled, "report", None) or {}
    shifts = (rep.get("summary") or {}).get("output_shift_steps") or {}
    lags = ((rep.get("passes") or {}).get("lower") or {}).get("retiming", {}).get("lags") or {}
    return Alignment(outputs={str(k): int(v) for k, v in shifts.items()},
                     populations={str(k): int(v) for k, v in lags.items()})


def pad_inputs(inputs: Mapping[str, np.ndarray], steps: int, pad: int
               ) -> dict[str, np.ndarray]:
    """The first ``steps`` steps of every input followed by ``pad`` steps of zeros.

    Raises:
        InputError: an input has fewer than ``steps`` steps.
    """
    out: dict[str, np.ndarray] = {}
    for k, v in inputs.items():
        a = np.asarray(v)
        if a.ndim < 2 or a.shape[0] < steps:
            raise InputError(f"input '{k}' has {a.shape[0] if a.ndim else 0} steps, "
                             f"{steps} asked for", obj=k, rule="input length", need=steps,
                             limit=a.shape[0] if a.ndim else 0,
                             hint="ask for fewer steps (--steps) or give a longer input")
        a = a[:steps]
        if pad > 0:
            a = np.concatenate([a, np.zeros((pad,) + a.shape[1:], dtype=a.dtype)], axis=0)
        out[k] = a
    return out


def align_result(result: Any, alignment: Alignment, steps: int) -> Any:
    """``result`` of a padded run with every output and probe read its lag later:
    ``steps`` rows, row ``t`` the response to input step ``t``. Counters stay those of
    the whole run (``result.info["alignment"]`` says how many steps it ran)."""
    pad = int(result.steps) - int(steps)
    outputs = {k: np.asarray(v)[alignment.lag_of(k):alignment.lag_of(k) + steps]
               for k, v in result.outputs.items()}
    probes = {k: np.asarray(v)[alignment.lag_of(k):alignment.lag_of(k) + steps]
              for k, v in result.probes.items()}
    info = dict(result.info)
    info["alignment"] = {
        "input_steps": int(steps), "steps_run": int(result.steps), "padded_steps": pad,
        "output_shift_steps": dict(alignment.outputs),
        "statement": (f"the input was padded with {pad} zero step(s) and every output read "
                      "its shift later: row t of each output is the response to input step t"
                      if pad else "no output shift: row t is the response to input step t"),
    }
    return replace(result, outputs=outputs, probes=probes, info=info)


def run_aligned(compiled: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
                *, backend: str | Any = "emulator", **kw: Any) -> Any:
    """Run ``compiled`` with outputs aligned to the input (:class:`Alignment`): a
    ``steps``-step input (default: its length) gives ``steps`` output rows, row ``t`` the
    response to input step ``t``, although retiming shifted the outputs.

    ``kw`` goes to the backend's ``run`` (``probes``, ``record_all``, ...). Returns the
    backend's RunResult with aligned outputs and probes; ``info["alignment"]`` holds the
    padding, and the counters cover every step run (``steps`` + padding).
    """
    if isinstance(backend, str):
        from .backend import get_backend

        backend = get_backend(backend)
    if steps is None:
        steps = min((int(np.shape(v)[0]) for v in inputs.values()), default=0)
    al = alignment_of(compiled)
    keys = tuple(kw.get("probes", ()))
    pad = al.pad(keys)
    res = backend.run(compiled, pad_inputs(inputs, steps, pad), steps + pad, **kw)
    return align_result(res, al, steps)


def _batch_of(inputs: Mapping[str, np.ndarray]) -> int | None:
    """The batch size of ``(T, B, n)`` inputs, or None for ``(T, n)`` inputs."""
    sizes = {int(np.asarray(v).shape[1]) for v in inputs.values() if np.ndim(v) == 3}
    return sizes.pop() if len(sizes) == 1 else None


class _Progress:
    """A rich progress bar that appears once a run has taken more than ``after_s``."""

    def __init__(self, steps: int, enabled: bool, label: str, after_s: float = 1.0) -> None:
        self.steps, self.enabled, self.label, self.after_s = steps, enabled, label, after_s
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.bar: Any = None
        self.task: Any = None
        self.offset = 0  # steps already done by earlier batch chunks

    def __call__(self, t: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.bar is None:
            if now - self.t0 < self.after_s:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.steps, rate="")
        if now - self.last < 0.1 and t + 1 < self.steps:
            return
        self.last = now
        done = self.offset + t + 1
        rate = done / max(now - self.t0, 1e-9)
        self.bar.update(self.task, completed=done, rate=f"{rate:,.0f} steps/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _join(parts: list[Any]) -> Any:
    """One RunResult from the results of consecutive batch chunks."""
    from .backend import Counters

    first = parts[0]
    if len(parts) == 1:
        return first
    outputs = {k: np.concatenate([np.asarray(p.outputs[k]) for p in parts], axis=1)
               for k in first.outputs}
    probes = {k: np.concatenate([np.asarray(p.probes[k]) for p in parts], axis=1)
              for k in first.probes}

    def add(name: str) -> Any:
        arrs = [getattr(p.counters, name) for p in parts]
        if any(a is None for a in arrs):
            return None
        arrs = [np.asarray(a) for a in arrs]
        if len({a.shape for a in arrs}) > 1:  # some chunks kept totals only: totals
            arrs = [a.sum(axis=0, keepdims=True) if a.ndim == 2 else a for a in arrs]
        return np.sum(arrs, axis=0)

    energy: dict[str, float] = {}
    for p in parts:
        for k, v in p.counters.energy_j.items():
            energy[k] = energy.get(k, 0.0) + float(v)
    counters = Counters(
        sops=add("sops"), neuron_updates=add("neuron_updates"), spikes_sent=add("spikes_sent"),
        messages=add("messages"), link_hops=add("link_hops"), step_time_s=add("step_time_s"),
        step_energy_j=add("step_energy_j"), energy_j=energy)
    info = dict(first.info)
    for k in ("wall_s", "synaptic_events", "spikes", "local_deliveries", "input_messages"):
        vals = [p.info.get(k) for p in parts]
        if all(isinstance(v, (int, float)) for v in vals):
            info[k] = sum(vals)
    for k in ("noc_latency_s", "compute_time_s"):
        vals = [p.info.get(k) for p in parts]
        if all(v is not None for v in vals):
            info[k] = np.sum([np.asarray(v) for v in vals], axis=0)
    if all(isinstance(p.info.get("populations"), dict) for p in parts):
        pops: dict[str, dict[str, int]] = {}
        for p in parts:
            for name, cnt in p.info["populations"].items():
                acc = pops.setdefault(name, {})
                for k, v in cnt.items():
                    acc[k] = acc.get(k, 0) + int(v)
        info["populations"] = pops
    info["batch_chunks"] = len(parts)
    return replace(first, outputs=outputs, probes=probes, counters=counters, info=info)


def run_with_outputs(
    backend: Any,
    artifact: Any,
    inputs: Mapping[str, np.ndarray],
    steps: int,
    *,
    network: Any,
    probes: tuple[str, ...] | list[str] = (),
    record_all: bool = False,
    batch_size: int | None = None,
    show_progress: bool = False,
    label: str = "running",
    align: Alignment | None = None,
) -> RunOutputs:
    """Run ``artifact`` on ``backend`` with probes, batch chunks and a progress bar.

    Args:
        backend: the backend that runs (emulator, lava, ...).
        artifact: what that backend's ``run`` takes (a compiled network or its files).
        inputs: ``(T, n)`` or ``(T, B, n)`` per input name.
        steps: steps to run.
        network: the compiled network (for the probe check and the outputs' kinds).
        probes: ``POP.var`` keys (:func:`probe_keys`).
        record_all: record every population's spikes too.
        batch_size: at most this many samples of a ``(T, B, n)`` input per backend run.
        show_progress: allow the progress bar (the caller passes False under ``--json``
            or when stdout is not a terminal); it appears after one second.
        label: the progress bar's text.
        align: pad the input and align the outputs and probes by this
            (:func:`alignment_of`): ``steps`` output rows, row ``t`` the response to input
            step ``t``; None runs ``steps`` steps as they come.
    """
    keys = probe_keys(network, tuple(probes), record_all)
    asked = steps
    if align is not None:
        pad = align.pad(keys)
        inputs = pad_inputs(inputs, steps, pad)
        steps = steps + pad
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size {batch_size} is not a positive number of samples",
                         obj="batch-size", rule="batch size >= 1", need=">= 1",
                         limit=batch_size, hint="e.g. --batch-size 64")
    params = inspect.signature(backend.run).parameters
    kw: dict[str, Any] = {}
    if keys:
        if "probes" not in params:
            raise UsageError(f"backend '{backend.name}' records no probes", obj=backend.name,
                             rule="probes", hint="run on the emulator (nmc run)")
        kw["probes"] = keys
    batch = _batch_of(inputs)
    chunks: list[tuple[int, int]] = [(0, batch or 0)]
    if batch is not None and batch_size is not None and batch_size < batch:
        chunks = [(b0, min(b0 + batch_size, batch)) for b0 in range(0, batch, batch_size)]
    bar = _Progress(steps * len(chunks), show_progress and "progress" in params, label)
    if "progress" in params:
        kw["progress"] = bar
    parts = []
    try:
        for b0, b1 in chunks:
            part = dict(inputs) if len(chunks) == 1 else {
                k: (np.asarray(v)[:, b0:b1] if np.ndim(v) == 3 else v) for k, v in inputs.items()}
            parts.append(backend.run(artifact, part, steps, **kw))
            bar.offset += steps
    finally:
        bar.close()
    result = _join(parts)
    if align is not None:
        result = align_result(result, align, asked)
    return RunOutputs(result=result, network=network, probe_keys=keys,
                      batched=batch is not None, chunks=len(chunks))


def _spiking(network: Any, pop: str) -> bool:
    from nmcompiler.ir.models import canonical

    p = network.populations.get(pop)
    return True if p is None else bool(canonical(p.model)["spiking"])


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutputs:
    """A run's result with the probes asked for; writes ``outputs.npz`` and adds the
    output counts to a run report."""

    result: Any
    network: Any
    probe_keys: tuple[str, ...] = ()
    batched: bool = False
    chunks: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """``outputs.npz``'s arrays: outputs, then probes; ``(T, n)`` unless batched."""
        out: dict[str, np.ndarray] = {}
        items = list(self.result.outputs.items()) + [
            (k, v) for k, v in self.result.probes.items()
            if k in self.probe_keys and k not in self.result.outputs]
        for k, v in items:
            a = np.asarray(v)
            if not self.batched and a.ndim == 3 and a.shape[1] == 1:
                a = a[:, 0]
            out[k] = a
        return out

    def write(self, directory: Path) -> Path:
        """Write ``directory/outputs.npz`` (the caller's directory is already atomic)."""
        path = Path(directory) / "outputs.npz"
        arrays: dict[str, Any] = self.arrays()
        np.savez(path, **arrays)
        return path

    def counts(self) -> dict[str, Any]:
        """Per output population: spikes in total, per neuron and per batch sample (or,
        for a non-spiking readout, its final value per neuron) and the most active
        neuron (the class of a classifier)."""
        net = self.network
        res: dict[str, Any] = {}
        for name, arr in self.result.outputs.items():
            a = np.asarray(arr)
            a3 = a if a.ndim == 3 else a[:, None, :]
            src = net.outputs[name].source if name in net.outputs else name
            entry: dict[str, Any] = {"population": src, "neurons": int(a3.shape[2])}
            if _spiking(net, src):
                per = np.count_nonzero(a3, axis=0)  # (B, n) spikes per neuron
                entry["kind"] = "spikes"
                entry["spikes"] = int(per.sum())
                score = per
            else:
                score = np.real(a3[-1])  # (B, n) final readout value
                entry["kind"] = "readout (final value)"
            win = [int(np.argmax(s)) if s.size else None for s in score]
            if self.batched:
                if entry["kind"] == "spikes":
                    entry["spikes_per_batch"] = [int(x) for x in per.sum(axis=1)]
                entry["most_active_per_batch"] = win
            else:
                entry["most_active"] = win[0]
            if a3.shape[2] <= PER_NEURON_MAX:
                vals = score.tolist() if entry["kind"] != "spikes" else \
                    [[int(x) for x in row] for row in score]
                key = "per_neuron" if entry["kind"] == "spikes" else "final_per_neuron"
                entry[key] = vals if self.batched else vals[0]
            else:
                entry["per_neuron"] = f"{a3.shape[2]} neurons: see outputs.npz"
            res[name] = entry
        return res

    def annotate(self, report: dict[str, Any], target: Any) -> dict[str, Any]:
        """Add the output counts, the batch and the energy's status to ``report``."""
        report["outputs"] = self.counts()
        if self.batched:
            report["batch"] = int(next(iter(self.result.outputs.values())).shape[1]) \
                if self.result.outputs else None
            report["batch_chunks"] = self.chunks
        if "energy_j" in report and not bool(getattr(target, "real_chip", True)):
            report["energy_illustrative"] = True
            report["energy_note"] = (f"{target.name} is not a real chip (real_chip = false): "
                                     "its cost numbers are illustrative")
        for k in ("counters_per_step", "link_hops_per_step"):
            if k in self.result.info:
                report[k] = bool(self.result.info[k])
        return report

    def render(self, report: Mapping[str, Any], console: Any, files: str = "") -> None:
        """Print the output counts (a table per output) and the energy label."""
        from rich.table import Table

        for name, e in report.get("outputs", {}).items():
            t = Table(title=f"output '{name}' ({e['population']}, {e['neurons']} neurons, "
                      f"{e['kind']})")
            spikes = e["kind"] == "spikes"
            per = e.get("per_neuron" if spikes else "final_per_neuron")
            rows = per if self.batched else [per]
            wins = e.get("most_active_per_batch") or [e.get("most_active")]
            totals = e.get("spikes_per_batch") or [e.get("spikes")]
            t.add_column("sample" if self.batched else "", justify="right")
            if spikes:
                t.add_column("spikes", justify="right")
            t.add_column("most active neuron", justify="right")
            t.add_column("per neuron" if isinstance(per, list) else "neurons")
            for b, win in enumerate(wins):
                row = rows[b] if isinstance(per, list) else None
                if row is None:
                    cells = str(per)
                elif len(row) <= PRINT_NEURONS:
                    cells = " ".join(_fmt(v) for v in row)
                else:
                    top = np.argsort(-np.asarray(row), kind="stable")[:5]
                    cells = "top: " + ", ".join(f"#{i}: {_fmt(row[i])}" for i in top)
                first = str(b) if self.batched else "all"
                t.add_row(*([first] + ([f"{totals[b]:,}"] if spikes else [])
                            + ["-" if win is None else str(win), cells]))
            console.print(t)
        if report.get("energy_note"):
            console.print(f"[yellow]energy is illustrative[/yellow]: {report['energy_note']}")


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def progress_allowed(json_out: bool, stream: Any = None) -> bool:
    """The progress bar shows only on a terminal and never under ``--json``."""
    import sys

    s = stream or sys.stdout
    return not json_out and bool(getattr(s, "isatty", lambda: False)())


ProgressHook = Callable[[int], None]
