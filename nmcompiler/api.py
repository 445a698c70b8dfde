"""The compile API (DESIGN.md section 3)::

    import nmcompiler
    compiled = nmcompiler.compile(network, "loihi2", seed=0)
    nmcompiler.save_compiled(compiled, "build/")

``compile`` runs ``verify -> lower -> quantize -> partition -> place -> route`` and returns
a :class:`~nmcompiler.compiled.CompiledNetwork`. It is deterministic: the same network,
target and seed give a byte-identical artifact. Wall-clock timings are therefore kept out
of the artifact; they are returned in ``compiled.report`` only under ``"timings_s"`` when
``timings=True`` is asked for (the CLI prints them but does not store them).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from nmcompiler.ir import Network, verify
from nmcompiler.ir.errors import UsageError

from . import __version__
from .compiled import CompiledNetwork
from .targets import Target, load_target

__all__ = ["compile", "resolve_target", "load_model", "strip_timings", "PHASES"]

#: The phases of a compile, in order (progress callbacks receive these names).
PHASES = ("lower", "quantize", "partition", "place", "route")

Progress = Callable[[str, int, int], None]


def resolve_target(target: str | os.PathLike | Target) -> tuple[Target, str]:
    """A :class:`Target` and the TOML text it was read from."""
    tgt = target if isinstance(target, Target) else load_target(target)
    return tgt, Path(tgt.path).read_text(encoding="utf-8")


def _is_timing(key: str) -> bool:
    return key.endswith("_s") or "wall" in key


def strip_timings(value: Any) -> tuple[Any, dict[str, Any]]:
    """Split wall-clock entries (keys ending in ``_s``) out of nested report dicts."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        for k, v in value.items():
            if _is_timing(str(k)) and isinstance(v, (int, float)):
                timings[k] = v
                continue
            kv, tv = strip_timings(v)
            kept[k] = kv
            if tv:
                timings[k] = tv
        return kept, timings
    return value, {}


def _clean(record: Any) -> tuple[Any, dict[str, Any]]:
    stats = getattr(record, "stats", None)
    if not isinstance(stats, dict):
        return record, {}
    kept, timings = strip_timings(stats)
    return dataclasses.replace(record, stats=kept), timings


def compile(  # noqa: A001 - the API's name, as in DESIGN.md
    network: Network,
    target: str | os.PathLike | Target,
    *,
    seed: int = 0,
    partition_method: str = "auto",
    place_method: str = "auto",
    time_limit_s: float = 10.0,
    lower_options: Mapping[str, Any] | None = None,
    quantize_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    timings: bool = False,
) -> CompiledNetwork:
    """Compile ``network`` for ``target`` (a bundled name, a TOML path or a Target).

    Args:
        network: the network (verified first).
        target: e.g. ``"loihi2"``, ``"spinnaker:spinn3"``, ``"my_chip.toml"``.
        seed: seeds every pass; same seed -> byte-identical artifact.
        partition_method: ``"auto"``, ``"metis"`` or ``"sequential"`` (the baseline).
        place_method: ``"auto"``, ``"cpsat"``, ``"heuristic"``, ``"sequential"``,
            ``"random"``.
        time_limit_s: CP-SAT's (deterministic) time limit for placement.
        lower_options, quantize_options: options of those passes (docs/passes.md).
        progress: called as ``progress(phase, index, total)`` before each phase.
        timings: add the wall time of each phase to the report (breaks byte-identity).

    Raises:
        NetworkError, FitError, RetimingError, ConfigError: with the object, the limit
        and a hint.
    """
    from .passes.lower import lower
    from .passes.partition import partition
    from .passes.pipeline import Pass, run_passes
    from .passes.place import place
    from .passes.quantize import quantize
    from .passes.route import route

    if not isinstance(network, Network):
        raise UsageError(
            f"compile() takes an ir.Network, got {type(network).__name__}",
            obj="network", rule="type",
            hint="import a file first: nmcompiler.load_model(path)",
        )
    tgt, toml_text = resolve_target(target)
    verify(network)
    from .limits import check_compile_bounds

    check_compile_bounds(network, tgt)  # bounded work before the passes (docs/cli.md)
    clock: dict[str, Any] = {}

    def phase(name: str) -> float:
        if progress is not None:
            progress(name, PHASES.index(name), len(PHASES))
        return time.perf_counter()

    t0 = phase("lower")
    res_l = run_passes(network, tgt, [Pass(name="lower", fn=lower,
                                           options=dict(lower_options or {}),
                                           enforces_min_delay=True)], seed=seed)
    clock["lower"] = time.perf_counter() - t0
    t0 = phase("quantize")
    res_q = run_passes(res_l.network, tgt, [Pass(name="quantize", fn=quantize,
                                                 options=dict(quantize_options or {}))],
                       seed=seed)
    net = res_q.network
    clock["quantize"] = time.perf_counter() - t0
    t0 = phase("partition")
    part, part_t = _clean(partition(net, tgt, seed=seed, method=partition_method))
    clock["partition"] = time.perf_counter() - t0
    t0 = phase("place")
    pl, place_t = _clean(place(part, tgt, seed=seed, method=place_method,
                               time_limit_s=time_limit_s))
    clock["place"] = time.perf_counter() - t0
    t0 = phase("route")
    rt, route_t = _clean(route(part, pl, tgt, seed=seed))
    clock["route"] = time.perf_counter() - t0
    verify(net, min_delay=int(tgt.core.min_delay))

    passes, pass_t = strip_timings({"lower": res_l.report("lower"),
                                    "quantize": res_q.report("quantize")})
    n_syn = sum(_n_synapses(net, p) for p in net.projections.values())
    report: dict[str, Any] = {
        "nmcompiler_version": __version__,
        "seed": int(seed),
        "target": {
            "name": tgt.name,
            "description": tgt.description,
            "backend": tgt.backend,
            "real_chip": tgt.real_chip,
            "total_cores": tgt.total_cores,
            "unknown_fields": list(tgt.unknown_fields()),
        },
        "network": {
            "name": network.name,
            "populations": len(network.populations),
            "neurons": network.n_neurons,
            "compiled_populations": len(net.populations),
            "compiled_neurons": net.n_neurons,
            "synapses": int(n_syn),
        },
        "passes": passes,
        "partition": part.report(),
        "placement": pl.report(),
        "routes": rt.report(),
        "summary": {
            "cores_used": int(part.n_cores),
            "cores_available": int(tgt.total_cores),
            "chips_used": int(len(set((pl.core // tgt.topology.cores_per_chip).tolist()))),
            "inter_core_messages": int(part.messages),
            "mean_hops": float(pl.mean_hops),
            "traffic_x_hops": int(pl.cost),
            "max_link_load": int(rt.max_link_load) if hasattr(rt, "max_link_load") else None,
            "output_shift_steps": _output_shift(res_l.report("lower")),
        },
    }
    if timings:
        clock_total = sum(clock.values())
        report["timings_s"] = {**{k: round(v, 4) for k, v in clock.items()},
                               "total": round(clock_total, 4),
                               "detail": {"passes": pass_t, "partition": part_t,
                                          "place": place_t, "route": route_t}}
    options = {
        "partition_method": partition_method,
        "place_method": place_method,
        "time_limit_s": time_limit_s,
        "lower": dict(lower_options or {}),
        "quantize": dict(quantize_options or {}),
    }
    return CompiledNetwork(network=net, target=tgt, target_toml=toml_text, partition=part,
                           placement=pl, routes=rt, report=report, seed=int(seed),
                           options=options)


def _n_synapses(net: Network, proj: Any) -> int:
    conn = proj.conn
    try:
        return int(conn.n_synapses())
    except TypeError:
        if hasattr(conn, "weight") and getattr(conn.weight, "ndim", 0) == 4:
            return int(conn.n_synapses(net.shape_of(proj.post)))
        return int(conn.n_synapses(net.size_of(proj.post)))
    except AttributeError:
        return 0


def _output_shift(lower_report: Mapping[str, Any]) -> dict[str, int]:
    """Steps each output is shifted by (from the lower pass's retiming report)."""
    shifts = lower_report.get("output_shift")
    if shifts is None:
        shifts = (lower_report.get("retiming") or {}).get("outputs") or {}
    out: dict[str, int] = {}
    if isinstance(shifts, dict):
        for k, v in shifts.items():
            if isinstance(v, dict):
                v = v.get("shift", 0)
            out[str(k)] = int(v)
    return out


def load_model(path: str | os.PathLike, **nir_options: Any) -> tuple[Network, list[Any]]:
    """Read a model file: ``.nmir`` (saved IR) or ``.nir`` (NIR, with import options).

    Returns the network and the import warnings (lenient NIR import; empty otherwise).
    """
    from nmcompiler import ir

    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file '{p}' does not exist", obj=str(p), rule="file exists",
                         hint="check the path")
    if p.suffix == ".nmir":
        return ir.load(p), []
    if p.suffix in (".nir", ".h5", ".hdf5"):
        from .frontends.nir_checks import import_checked

        imported = import_checked(p, **nir_options)
        return imported.network, list(imported.warnings)
    raise UsageError(f"model file '{p}' has an unknown extension '{p.suffix}'", obj=str(p),
                     rule="model format", hint="give a .nir file or a saved .nmir network")
