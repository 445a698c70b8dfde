"""Design-space sweeps on Dask (``nmc sweep``; docs/scale.md).

A sweep is the cross product of targets, seeds, compile options (partitioner, placer,
weight bits, neurons-per-core caps) and input sets, read from a TOML grid file
(:func:`load_grid`). Every point is one :func:`nmcompiler.compare.evaluate_point`: compile,
run on the emulator, compare with the float reference; its record holds the
:data:`nmcompiler.compare.COLUMNS` plus the point's options and the compile time.

Points run as tasks on ``dask.distributed``: a ``LocalCluster`` on this machine's cores by
default, or an existing cluster (``scheduler="tcp://host:8786"``). A point that fails is
recorded with its named error and never stops the sweep. Finished points are cached on
disk, one JSON file per point named by a hash of the network, the point and the input, so
that a rerun computes only what is missing. Every value but the wall times
(``compile_time_s``, ``run_time_s``) is identical to a serial run (``serial=True``) with the
same grid: the work of a point depends only on the point.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import NmcError, ToolchainMissing, UsageError

from .backend import dask_client
from .compare import (
    COLUMNS,
    ComparePoint,
    csv_text,
    evaluate_point,
    json_text,
    load_inputs,
    random_inputs,
    reference_outputs,
    with_outputs,
)

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["Grid", "InputSet", "SweepPoint", "SWEEP_COLUMNS", "load_grid", "parse_grid",
           "grid_points", "sweep", "write_sweep", "SWEEP_FORMAT"]

SWEEP_FORMAT = "nmcompiler.sweep"
SWEEP_VERSION = 1
PARTITIONERS = ("auto", "metis", "sequential")
PLACERS = ("auto", "cpsat", "heuristic", "sequential", "random")
_OPTION_COLUMNS = ("target", "seed", "partitioner", "placer", "weight_bits",
                   "max_neurons_per_core", "input")
#: Columns of ``sweep.csv``: the point, then the compare columns, then the compile time.
SWEEP_COLUMNS = _OPTION_COLUMNS + tuple(c for c in COLUMNS if c != "target") + (
    "compile_time_s",)
_TIMING_KEYS = ("compile_time_s", "run_time_s")
MAX_POINTS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSet:
    """One input of the sweep: random spikes (``rate``, seeded by the point's seed) or a
    ``.npz`` file (``file``)."""

    name: str
    rate: float | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grid:
    """A sweep grid (see docs/scale.md for the TOML form). ``None`` in ``weight_bits`` /
    ``max_neurons_per_core`` means the target's own value."""

    targets: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    partitioners: tuple[str, ...] = ("auto",)
    placers: tuple[str, ...] = ("auto",)
    weight_bits: tuple[int | None, ...] = (None,)
    max_neurons_per_core: tuple[int | None, ...] = (None,)
    inputs: tuple[InputSet, ...] = (InputSet(name="rate=0.05", rate=0.05),)
    steps: int | None = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepPoint:
    """One point of the grid: a target with compile options, and an input set."""

    point: ComparePoint
    input: InputSet

    def options(self) -> dict[str, Any]:
        """The point's columns."""
        return {**self.point.options(), "input": self.input.name}


# ============================================================================ grid file
def _err(key: str, problem: str, hint: str, value: Any = None) -> UsageError:
    return UsageError(f"grid: '{key}' {problem}", obj=key, rule="sweep grid", limit=value,
                      hint=hint)


def _list(doc: Mapping[str, Any], key: str, default: Sequence[Any], kind: type | tuple,
          hint: str) -> list[Any]:
    v = doc.get(key, list(default))
    if not isinstance(v, list):
        v = [v]
    if not v:
        raise _err(key, "is an empty list", hint)
    if len(v) > 10_000:
        raise _err(key, f"has {len(v)} values (more than 10000)", hint)
    for x in v:
        if isinstance(x, bool) or not isinstance(x, kind):
            raise _err(key, f"holds {x!r}, not {getattr(kind, '__name__', kind)}", hint, x)
    if len(set(map(repr, v))) != len(v):
        raise _err(key, "repeats a value", "list each value once", v)
    return v


def _compile_options(doc: Mapping[str, Any]) -> tuple[list, list, list, list]:
    """The ``[compile]`` table: partitioners, placers, weight bits, neurons-per-core caps."""
    comp = doc.get("compile", {})
    if not isinstance(comp, dict):
        raise _err("compile", "is not a table", "write [compile] then its keys")
    ckeys = {"partitioner", "placer", "weight_bits", "max_neurons_per_core"}
    for k in comp:
        if k not in ckeys:
            raise _err(f"compile.{k}", "is not a compile option",
                       "options: " + ", ".join(sorted(ckeys)))
    parts = _list(comp, "partitioner", ("auto",), str, 'partitioner = ["auto", "sequential"]')
    places = _list(comp, "placer", ("auto",), str, 'placer = ["auto", "heuristic"]')
    for key, vals, allowed in (("compile.partitioner", parts, PARTITIONERS),
                               ("compile.placer", places, PLACERS)):
        for v in vals:
            if v not in allowed:
                raise _err(key, f"holds {v!r}", "choose from " + ", ".join(allowed), v)
    # 0 stands for "the target's own value" (TOML has no null)
    wbits = _list(comp, "weight_bits", (0,), int, "weight_bits = [0, 8, 4] (0: the target's)")
    caps = _list(comp, "max_neurons_per_core", (0,), int,
                 "max_neurons_per_core = [0, 256] (0: no cap)")
    if any(not 0 <= w <= 32 for w in wbits):
        raise _err("compile.weight_bits", "holds a width outside 0..32",
                   "weight_bits = [0, 8, 4]", wbits)
    if any(c < 0 or c > 2**31 for c in caps):
        raise _err("compile.max_neurons_per_core", "holds a negative or huge cap",
                   "max_neurons_per_core = [0, 256]", caps)
    return parts, places, wbits, caps


def _input_sets(doc: Mapping[str, Any], base_dir: str | os.PathLike) -> list[InputSet]:
    """The ``[inputs]`` table: one input set per rate and per file."""
    inp = doc.get("inputs", {})
    if not isinstance(inp, dict):
        raise _err("inputs", "is not a table", "write [inputs] then rates / files")
    for k in inp:
        if k not in ("rates", "files"):
            raise _err(f"inputs.{k}", "is not an input key", "keys: rates, files")
    sets: list[InputSet] = []
    if "rates" in inp or "files" not in inp:
        for r in _list(inp, "rates", (0.05,), (int, float), "rates = [0.02, 0.05]"):
            if not (0.0 <= float(r) <= 1.0) or not math.isfinite(float(r)):
                raise _err("inputs.rates", f"holds {r!r}, not a probability",
                           "rates = [0.02, 0.05]", r)
            sets.append(InputSet(name=f"rate={float(r):g}", rate=float(r)))
    if "files" in inp:
        for f in _list(inp, "files", (), str, 'files = ["spikes.npz"]'):
            p = Path(base_dir) / f
            if not p.is_file():
                raise _err("inputs.files", f"names '{f}', which does not exist",
                           "paths are relative to the grid file", f)
            sets.append(InputSet(name=f"file={f}", file=str(p)))
    return sets


def _steps(doc: Mapping[str, Any], sets: list[InputSet]) -> int | None:
    """``steps``: required when rates and files are mixed; 100 for rates alone."""
    steps = doc.get("steps", None)
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool)
                              or not 1 <= steps <= 10_000_000):
        raise _err("steps", "is not a step count in 1..1e7", "steps = 100", steps)
    has_file = any(s.file is not None for s in sets)
    if has_file and any(s.rate is not None for s in sets) and steps is None:
        raise _err("steps", "is missing", "give steps = N when rates and files are mixed")
    if steps is None and not has_file:
        steps = 100
    return steps


def parse_grid(doc: Mapping[str, Any], base_dir: str | os.PathLike = ".") -> Grid:
    """A :class:`Grid` from a parsed TOML document (file paths relative to ``base_dir``).

    Raises :class:`UsageError` naming the key, the value and a fix.
    """
    known = {"targets", "seeds", "steps", "compile", "inputs"}
    for k in doc:
        if k not in known:
            raise _err(k, "is not a grid key", "keys: " + ", ".join(sorted(known)))
    if "targets" not in doc:
        raise _err("targets", "is missing", 'write targets = ["loihi2", "spinnaker"]')
    targets = _list(doc, "targets", (), str, 'targets = ["loihi2", "spinnaker"]')
    seeds = _list(doc, "seeds", (0,), int, "seeds = [0, 1, 2]")
    if any(s < 0 or s >= 2**63 for s in seeds):
        raise _err("seeds", "holds a seed outside 0..2**63-1", "seeds = [0, 1, 2]", seeds)
    parts, places, wbits, caps = _compile_options(doc)
    sets = _input_sets(doc, base_dir)
    grid = Grid(targets=tuple(targets), seeds=tuple(seeds), partitioners=tuple(parts),
                placers=tuple(places),
                weight_bits=tuple(w or None for w in wbits),
                max_neurons_per_core=tuple(c or None for c in caps), inputs=tuple(sets),
                steps=_steps(doc, sets))
    n = (len(grid.targets) * len(grid.seeds) * len(grid.partitioners) * len(grid.placers)
         * len(grid.weight_bits) * len(grid.max_neurons_per_core) * len(grid.inputs))
    if n > MAX_POINTS:
        raise _err("grid", f"has {n} points (more than {MAX_POINTS})",
                   "split the sweep into several grids")
    return grid


def load_grid(path: str | os.PathLike) -> Grid:
    """Read a grid TOML file (docs/scale.md); checks every target name too."""
    from .targets import load_target

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"grid file '{p}' does not exist", obj=str(p), rule="file exists",
                         hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"grid file '{p}' cannot be read ({exc})", obj=str(p),
                         rule="UTF-8 TOML file", hint="give a TOML text file") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"grid file '{p}' is not valid TOML ({exc})", obj=str(p),
                         rule="TOML", hint="see docs/scale.md for an example") from None
    grid = parse_grid(doc, p.parent)
    for t in grid.targets:
        load_target(t)
    return grid


def grid_points(grid: Grid) -> list[SweepPoint]:
    """The cross product, in a fixed order (targets outermost, input sets innermost)."""
    return [SweepPoint(point=ComparePoint(target=t, seed=s, partitioner=pa, placer=pl,
                                          weight_bits=w, max_neurons_per_core=c), input=i)
            for t, s, pa, pl, w, c, i in itertools.product(
                grid.targets, grid.seeds, grid.partitioners, grid.placers, grid.weight_bits,
                grid.max_neurons_per_core, grid.inputs)]


# ============================================================================ one point
def _inputs_of(net: ir.Network, iset: InputSet, files: Mapping[str, Any], seed: int,
               steps: int | None) -> tuple[dict[str, np.ndarray], int]:
    if iset.file is not None:
        arrays = dict(files[iset.file])
        if steps is None:
            steps = min(int(np.shape(v)[0]) for v in arrays.values() if np.ndim(v))
        return arrays, int(steps)
    return random_inputs(net, int(steps or 100), float(iset.rate or 0.0), seed), int(steps or 100)


def _reference(net: ir.Network, iset: InputSet, files: Mapping[str, Any], seed: int,
               steps: int | None) -> Any:
    """The float reference of one input (or the named error the input gives)."""
    try:
        x, t = _inputs_of(net, iset, files, seed, steps)
        return reference_outputs(net, x, t)
    except NmcError as exc:
        return f"{type(exc).__name__} (input): {exc.message}"


def _run_point(net: ir.Network, sp: SweepPoint, files: Mapping[str, Any], steps: int | None,
               reference: Any) -> dict[str, Any]:
    """One point's record; any exception becomes the record's named error."""
    rec: dict[str, Any]
    try:
        if isinstance(reference, str):  # the input itself was refused
            rec = dict.fromkeys(COLUMNS)
            rec.update(target=sp.point.target, status="error", reason=reference)
        else:
            x, t = _inputs_of(net, sp.input, files, sp.point.seed, steps)
            rec = evaluate_point(net, sp.point, x, t, reference, timings=True,
                                 catch=Exception)
    except Exception as exc:  # noqa: BLE001 - a failed point never stops the sweep
        rec = dict.fromkeys(COLUMNS)
        rec.update(target=sp.point.target, status="error",
                   reason=f"{type(exc).__name__}: {exc}")
    rec.update(sp.options())
    return rec


# ============================================================================ cache
def network_digest(net: ir.Network) -> str:
    """SHA-256 of the network's saved bytes (``ir.save`` is deterministic)."""
    with tempfile.TemporaryDirectory(prefix="nmc-sweep-") as d:
        p = ir.save(net, Path(d) / "net.nmir")
        return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def point_key(net_digest: str, sp: SweepPoint, steps: int | None,
              file_digests: Mapping[str, str]) -> str:
    """The cache key of a point: a hash of everything its record depends on."""
    from . import __version__

    doc = {"network": net_digest, "point": sp.point.options(), "input": sp.input.name,
           "rate": sp.input.rate,
           "file": file_digests.get(sp.input.file) if sp.input.file else None,
           "steps": steps, "nmcompiler": __version__, "format": SWEEP_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _cache_read(cache: Path | None, key: str) -> dict[str, Any] | None:
    if cache is None:
        return None
    p = cache / f"{key}.json"
    try:
        rec = json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("status") else None


def _cache_write(cache: Path | None, key: str, rec: Mapping[str, Any]) -> None:
    """Write one finished point atomically (internal errors are not cached: a rerun
    retries them)."""
    if cache is None or str(rec.get("reason") or "").startswith(("KilledWorker",
                                                                 "CommClosedError")):
        return
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=cache)
    with os.fdopen(fd, "w") as f:
        f.write(json_text(dict(rec)))
    os.replace(tmp, cache / f"{key}.json")


# ============================================================================ sweep
def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise ToolchainMissing("nmc sweep needs dask.distributed", obj="distributed",
                               rule="installed", hint='pip install "nmcompiler[scale]"'
                               ) from None
    return distributed


def sweep(
    network: ir.Network,
    grid: Grid,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    client: Any = None,
    connect_timeout_s: float = 20.0,
) -> list[dict[str, Any]]:
    """Run every point of ``grid`` and return their records in grid order.

    Args:
        network: the float network (no outputs: every population is one).
        grid: the grid (:func:`load_grid` / :func:`parse_grid`).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``); default: a
            ``LocalCluster`` started here and closed at the end.
        workers: worker processes of the local cluster (default: the CPU count).
        serial: run the points one after another in this process (no Dask).
        cache_dir: one JSON file per finished point; points found there are not run again.
        progress: called as ``progress(done, total, from_cache)`` after every point.
        client: an existing ``distributed.Client`` to use (then nothing is started).
        connect_timeout_s: how long to try reaching ``scheduler``.

    Returns:
        One record per point: the point's options, :data:`nmcompiler.compare.COLUMNS`,
        ``compile_time_s`` / ``run_time_s`` (wall clock) and ``unpublished``.
    """
    net = with_outputs(network)
    points = grid_points(grid)
    files = {s.file: load_inputs(s.file) for s in grid.inputs if s.file is not None}
    fdig = {f: _file_digest(f) for f in files}
    cache = Path(cache_dir) if cache_dir is not None else None
    ndig = network_digest(net) if cache is not None else ""
    keys = [point_key(ndig, sp, grid.steps, fdig) for sp in points]
    records: list[dict[str, Any] | None] = [_cache_read(cache, k) for k in keys]
    todo = [i for i, r in enumerate(records) if r is None]
    total, cached = len(points), len(points) - len(todo)
    done = cached
    if progress is not None:
        progress(done, total, cached)

    def finish(i: int, rec: dict[str, Any]) -> None:
        nonlocal done
        records[i] = rec
        _cache_write(cache, keys[i], rec)
        done += 1
        if progress is not None:
            progress(done, total, cached)

    ref_ids: dict[Any, Any] = {}
    for i in todo:
        sp = points[i]
        rk = (sp.input.name, sp.point.seed if sp.input.file is None else None)
        ref_ids.setdefault(rk, []).append(i)
    if serial:
        for idx in ref_ids.values():
            sp0 = points[idx[0]]
            ref = _reference(net, sp0.input, files, sp0.point.seed, grid.steps)
            for i in idx:
                finish(i, _run_point(net, points[i], files, grid.steps, ref))
        return [r for r in records if r is not None]
    if todo:
        _run_dask(net, points, files, grid.steps, ref_ids, finish, scheduler=scheduler,
                  workers=workers, client=client, timeout_s=connect_timeout_s)
    return [r for r in records if r is not None]


def _run_dask(net: ir.Network, points: list[SweepPoint], files: Mapping[str, Any],
              steps: int | None, ref_ids: Mapping[Any, list[int]],
              finish: Callable[[int, dict[str, Any]], None], *, scheduler: str | None,
              workers: int | None, client: Any, timeout_s: float = 20.0) -> None:
    distributed = _dask()
    with dask_client(scheduler, workers, client, timeout_s) as client:
        [net_f] = client.scatter([net], broadcast=True)
        [files_f] = client.scatter([dict(files)], broadcast=True)
        futures = {}
        for idx in ref_ids.values():
            sp0 = points[idx[0]]
            ref_f = client.submit(_reference, net_f, sp0.input, files_f, sp0.point.seed,
                                  steps, pure=False)
            for i in idx:
                f = client.submit(_run_point, net_f, points[i], files_f, steps, ref_f,
                                  pure=False)
                futures[f] = i
        for f in distributed.as_completed(list(futures)):
            i = futures[f]
            try:
                rec = f.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker: record, go on
                rec = dict.fromkeys(COLUMNS)
                rec.update(target=points[i].point.target, status="error",
                           reason=f"{type(exc).__name__}: {exc}")
                rec.update(points[i].options())
            finish(i, rec)


# ============================================================================ outputs
def comparable(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records without their wall times (what a serial run must reproduce)."""
    return [{k: v for k, v in r.items() if k not in _TIMING_KEYS} for r in records]


def write_sweep(records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike,
                meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``sweep.json`` and ``sweep.csv`` into ``out_dir`` atomically."""
    from .compare import check_replaceable
    from .compiled import write_dir_atomically

    out = Path(out_dir)
    check_replaceable(out, {"sweep.json", "sweep.csv"})
    doc = {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, **dict(meta or {}),
           "columns": list(SWEEP_COLUMNS), "records": [dict(r) for r in records]}

    def fill(tmp: Path) -> None:
        (tmp / "sweep.json").write_text(json_text(doc))
        (tmp / "sweep.csv").write_text(csv_text(records, SWEEP_COLUMNS))

    return write_dir_atomically(out, fill)


def sweep_command(model: Path, grid_path: Path, out: Path | None, scheduler: str | None,
                  workers: int | None, serial: bool, cache: Path | None, json_out: bool,
                  console: Any, err_console: Any) -> list[dict[str, Any]]:
    """What ``nmc sweep`` does (the CLI only parses options)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .api import load_model

    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}", obj="workers", rule=">= 1",
                         hint="give a positive number of worker processes")
    from .compare import check_replaceable

    grid = load_grid(grid_path)
    net, warnings = load_model(model)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    dest = out or Path(f"{model.stem}-sweep")
    check_replaceable(dest, {"sweep.json", "sweep.csv"})  # before hours of work
    cache_dir = cache or Path(str(dest) + ".cache")
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("sweep points", total=None)

        def progress(done: int, total: int, cached: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"sweep points ({cached} from cache)")

        records = sweep(net, grid, scheduler=scheduler, workers=workers, serial=serial,
                        cache_dir=cache_dir, progress=progress)
    meta = {"model": model.name, "network": net.name, "grid": grid_path.name,
            "steps": grid.steps}
    write_sweep(records, dest, meta)
    if json_out:
        console.print_json(json_text({"records": records}))
    else:
        _render(records, console)
        ok = sum(r["status"] == "ok" for r in records)
        console.print(f"{len(records)} points, {ok} ok; wrote {dest}/sweep.json, sweep.csv "
                      f"(cache: {cache_dir})")
    return records


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _render(records: Sequence[Mapping[str, Any]], console: Any) -> None:
    from rich.table import Table

    from .compare import si_or_dash

    table = Table(title="sweep: one row per point")
    for col in ("target", "seed", "partitioner", "placer", "weight bits", "neurons/core cap",
                "input", "status", "cores", "energy / inference", "latency / step",
                "agreement", "compile time", "note"):
        table.add_column(col, overflow="fold", min_width=12 if col == "note" else None)
    for r in records:
        ok = r["status"] == "ok"
        table.add_row(
            r["target"], str(r["seed"]), r["partitioner"], r["placer"],
            "-" if r["weight_bits"] is None else str(r["weight_bits"]),
            "-" if r["max_neurons_per_core"] is None else str(r["max_neurons_per_core"]),
            r["input"], r["status"], str(r["cores"]) if ok else "-",
            si_or_dash(r.get("energy_per_inference_j"), "J"),
            si_or_dash(r.get("latency_per_step_s"), "s"),
            "-" if r.get("agreement") is None else f"{100 * r['agreement']:.1f}%",
            "-" if r.get("compile_time_s") is None else f"{r['compile_time_s']:.2f} s",
            "" if ok else _short(str(r.get("reason"))))
    console.print(table)
