"""The compile API (docs/architecture.md#the-compiler-core)::

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

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from nmcompiler.ir import Network
from nmcompiler.ir.connectivity import AvgPool2d, SumPool2d
from nmcompiler.ir.errors import UsageError
from nmcompiler.ir.network import Projection
from nmcompiler.ir.verify import verify

from . import __version__
from .compiled import CompiledNetwork
from .passes.base import CompileState, Pass, strip_timings
from .passes.pipeline import DEFAULT_PASS_NAMES, default_pipeline, run_pipeline
from .targets import Target, load_target

__all__ = ["compile", "resolve_target", "load_model", "strip_timings", "PHASES",
           "check_inputs_of"]

#: The phases of a compile, in order (progress callbacks receive these names).
PHASES = DEFAULT_PASS_NAMES

Progress = Callable[[str, int, int], None]


def resolve_target(target: str | os.PathLike | Target) -> tuple[Target, str]:
    """A :class:`Target` and the TOML text it was read from."""
    if isinstance(target, Target):
        tgt = target
    else:
        tgt = load_target(target if isinstance(target, str) else Path(target))
    return tgt, Path(tgt.path).read_text(encoding="utf-8")


def compile(  # noqa: A001 - the API's name, as in docs/architecture.md
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
    check_input: Mapping[str, Any] | None = None,
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
        check_input: the user's own input for the behaviour check, ``(T, n)`` or
            ``(T, B, n)`` per input name (a single array for a one-input network), in
            place of ``check_steps`` steps of random spikes (docs/passes.md#fidelity).

    Raises:
        NetworkError, FitError, RetimingError, ConfigError: with the object, the limit
        and a hint.
    """
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
    q_options = dict(quantize_options or {})
    if check_input is not None:
        q_options["check_input"] = check_inputs_of(network, check_input)
    passes = default_pipeline(
        lower=dict(lower_options or {}), quantize=q_options,
        partition={"method": partition_method},
        place={"method": place_method, "time_limit_s": time_limit_s})

    def before(p: Pass, index: int, total: int) -> None:
        if progress is not None:
            progress(p.name, index, total)

    res = run_pipeline(passes, CompileState(network=network, target=tgt, seed=int(seed),
                                            source=network), before=before)
    st = res.state
    net, part, pl, rt = st.network, st.partition, st.placement, st.routes
    assert part is not None and pl is not None and rt is not None
    report = _report(network, net, tgt, st, int(seed))
    if timings:
        detail = {"passes": {k: res.timings[k] for k in ("lower", "quantize")
                             if k in res.timings},
                  **{k: res.timings.get(k, {}) for k in ("partition", "place", "route")}}
        report["timings_s"] = {**{k: round(v, 4) for k, v in res.seconds.items()},
                               "total": round(sum(res.seconds.values()), 4),
                               "detail": detail}
    options = {
        "partition_method": getattr(partition_method, "value", partition_method),
        "place_method": getattr(place_method, "value", place_method),
        "time_limit_s": time_limit_s,
        "lower": dict(lower_options or {}),
        "quantize": dict(quantize_options or {}),
    }
    if check_input is not None:
        t = min(int(a.shape[0]) for a in q_options["check_input"].values()) \
            if q_options["check_input"] else 0
        options["check_input"] = f"the user's input ({t} steps)"
    return CompiledNetwork(network=net, target=tgt, target_toml=toml_text, partition=part,
                           placement=pl, routes=rt, report=report, seed=int(seed),
                           options=options)


def check_inputs_of(network: Network, inputs: Any) -> dict[str, Any]:
    """The behaviour check's input checked against ``network``: a mapping of input name
    to ``(T, n)`` or ``(T, B, n)`` array, or one array for a one-input network.

    Raises:
        InputError: an unknown input, a wrong shape, unequal lengths, no steps, values
            that are not finite numbers (exit 1).
    """
    import numpy as np

    from nmcompiler.ir.errors import InputError
    from nmcompiler.ir.simulate import normalise_inputs

    if not isinstance(inputs, Mapping):
        if len(network.inputs) != 1:
            raise InputError(f"the check input is one array but network '{network.name}' "
                             f"has {len(network.inputs)} inputs", obj="check_input",
                             rule="one array per input",
                             hint="give a mapping {input name: array}")
        inputs = {next(iter(network.inputs)): inputs}
    arrays = {str(k): np.asarray(v) for k, v in inputs.items()}
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf" or (a.size and not np.all(np.isfinite(a))):
            raise InputError(f"check input '{k}' holds values that are not finite numbers",
                             obj=k, rule="finite numeric input",
                             hint="spikes as 0/1, payloads as integers")
    missing = sorted(set(network.inputs) - set(arrays))
    if missing:
        raise InputError(f"the check input has no array for input '{missing[0]}'",
                         obj=missing[0], rule="one array per input",
                         hint="inputs: " + ", ".join(network.inputs))
    _, steps, _, _ = normalise_inputs(network, arrays, None)
    if steps < 1:
        raise InputError("the check input has 0 steps", obj="check_input",
                         rule="steps >= 1", hint="give at least one step")
    return arrays


def _report(network: Network, net: Network, tgt: Target, st: CompileState,
            seed: int) -> dict[str, Any]:
    """The compile report: target, network, pass reports, mapping and summary."""
    part, pl, rt = st.partition, st.placement, st.routes
    assert part is not None and pl is not None and rt is not None
    n_syn = sum(_n_synapses(net, p) for p in net.projections.values())
    report: dict[str, Any] = {
        "nmcompiler_version": __version__,
        "seed": seed,
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
        "passes": {"lower": st.report("lower"), "quantize": st.report("quantize")},
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
            "max_link_load": int(rt.max_link_load),
            "output_shift_steps": _output_shift(st.report("lower")),
        },
    }
    return report


def _n_synapses(net: Network, proj: Projection) -> int:
    """Synapses of one projection as the compile report counts them: pooling layers
    (kept only on convolution hardware) carry no weights and count 0."""
    if isinstance(proj.conn, (SumPool2d, AvgPool2d)):
        return 0
    return int(proj.conn.n_synapses(net.shape_of(proj.pre), net.shape_of(proj.post)))


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
