"""The emulator backend: runs a compiled network core by core in the target's arithmetic.

:class:`EmulatorBackend` serves every target family (its arithmetic is chosen by the
target's ``backend`` field: ``emulator``, ``loihi``, ``spinnaker``, ``speck``; see
:mod:`nmcompiler.backends.emulator.arith`), needs no toolchain, and returns spikes, probes and the
full :class:`~nmcompiler.backend.Counters` (synaptic operations, neuron updates, spikes,
messages and hops per link, time and energy per step from the target's cost model).
:func:`emulate` runs an uncompiled network (one unbounded core unless a partition is
given). Design and formulas: docs/emulator.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from nmcompiler.backend import Backend, Counters, RunResult
from nmcompiler.compiled import CompiledNetwork
from nmcompiler.ir.errors import BackendError
from nmcompiler.ir.network import Network
from nmcompiler.targets import Target

from .arith import FAMILIES
from .costs import CostTables
from .engine import Engine, EngineResult

if TYPE_CHECKING:  # pragma: no cover
    from nmcompiler.compiled import CompiledNetwork

__all__ = ["EmulatorBackend", "Engine", "emulate", "engine_for", "FAMILIES"]


def _neuron_core(net: Network, partition: Any) -> tuple[np.ndarray, int]:
    """Every neuron's logical core in network order, from a mapping.Partition."""
    pops = tuple(getattr(partition, "populations", ()))
    nc = np.asarray(partition.neuron_core, dtype=np.int64)
    if pops == tuple(net.populations):
        return nc, int(partition.n_cores)
    if set(pops) != set(net.populations):
        raise BackendError(
            "the partition does not cover the network's populations",
            obj=net.name, rule="partition", need=sorted(net.populations), limit=sorted(pops),
            hint="compile the network again")
    parts = [np.asarray(partition.cores_of(name), dtype=np.int64) for name in net.populations]
    return np.concatenate(parts), int(partition.n_cores)


def neuron_cores(net: Network, partition: Any) -> tuple[np.ndarray, int]:
    """Every neuron's logical core in network order, and the number of cores, from a
    mapping.Partition (what :func:`engine_for` gives the engine)."""
    return _neuron_core(net, partition)


def run_result(engine: Any, res: EngineResult, name: str, extra: dict) -> RunResult:
    """The backend's :class:`RunResult` of an engine's raw result (as :meth:`run`)."""
    return _result(engine, res, name, extra)


def engine_for(
    net: Network,
    target: Target | None = None,
    *,
    partition: Any = None,
    placement: Any = None,
    family: str | None = None,
    check: bool = True,
    routes: Any = None,
) -> Engine:
    """An :class:`Engine` for ``net`` on ``target`` (a Target or None) and a mapping.

    ``routes``: the compiled routes (``CompiledNetwork.routes``), whose multicast trees
    the cost model then charges (one routing model for the compile and the run report).

    Without a partition everything runs on one core (logical core 0, physical core 0).
    The arithmetic is the one the target's chip family names
    (``target.family.emulator_arithmetic``); ``family`` overrides it (default
    ``"emulator"``, the generic fixed point).
    """
    rules = getattr(target, "family", None) if target is not None else None
    fam = family or (rules.emulator_arithmetic if rules is not None else None) or \
        getattr(target, "backend", None) or "emulator"
    if fam not in FAMILIES:
        raise BackendError(f"the emulator has no arithmetic for target family '{fam}'",
                           obj=fam, rule="family", hint="families: " + ", ".join(FAMILIES))
    neuron_core, n_cores = (None, 1) if partition is None else _neuron_core(net, partition)
    costs = None
    if target is not None:
        physical = None if placement is None else np.asarray(placement.core)
        costs = CostTables(target, physical, n_cores, routes=routes)
    return Engine(
        net,
        family=fam,
        formats=getattr(target, "formats", None),
        neuron_core=neuron_core,
        n_cores=n_cores,
        costs=costs,
        time_stepped=bool(getattr(getattr(target, "capabilities", None), "time_stepped", True)),
        check=check,
    )


def _result(engine: Engine, res: EngineResult, name: str, extra: dict) -> RunResult:
    cnt = res.counters
    counters = Counters()
    info: dict[str, Any] = {
        "wall_s": res.wall_s,
        "synaptic_events": res.synaptic_events,
        "spikes": res.spikes,
        "family": engine.family,
        "n_cores": engine.n_cores,
        "batched": res.batched,
        "float32_accumulation": bool(engine._mats32 is not None),
        **extra,
    }
    if cnt:
        costs = res.costs if res.costs is not None else engine.costs_of(cnt)
        info["counters_per_step"] = res.counters_per_step
        info["link_hops_per_step"] = res.link_hops_per_step
        # (T, n_cores) per counter: the samples' sum (one sample: a view, no copy)
        total = {k: (v[:, 0] if v.shape[1] == 1 else v.sum(axis=1, dtype=np.int64))
                 if v.dtype.kind in "iu" else v.sum(axis=1).astype(np.int64)
                 for k, v in cnt.items()}
        counters = Counters(
            sops=total["sops"],
            neuron_updates=total["updates"],
            spikes_sent=total["spikes"],
            messages=total["messages"],
            link_hops=None if costs is None else costs["link_hops"].astype(np.int64),
            step_time_s=None if costs is None else costs["step_time_s"],
            step_energy_j=None if costs is None else costs["step_energy_j"],
            energy_j={} if costs is None else costs["energy_j"],
        )
        if res.per_population:
            info["populations"] = res.per_population
        info["local_deliveries"] = int(total["local"].sum())
        info["input_messages"] = int(total["input"].sum())
        if costs is not None:
            info["noc_latency_s"] = costs["noc_latency_s"]
            info["compute_time_s"] = costs["compute_time_s"]
            info["physical_cores"] = engine.costs.physical.tolist()  # type: ignore[union-attr]
    return RunResult(backend=name, steps=res.steps, outputs=res.outputs, probes=res.probes,
                     counters=counters, info=info)


def emulate(
    net: Network,
    inputs: Mapping[str, np.ndarray] | None = None,
    steps: int | None = None,
    *,
    target: Target | None = None,
    partition: Any = None,
    placement: Any = None,
    family: str | None = None,
    probes: tuple[str, ...] = (),
    count: bool = True,
) -> RunResult:
    """Run an uncompiled network on the emulator (see :func:`engine_for`)."""
    eng = engine_for(net, target, partition=partition, placement=placement, family=family)
    res = eng.run(inputs, steps, probes=probes, count=count)
    return _result(eng, res, EmulatorBackend.name, {})


class EmulatorBackend(Backend):
    """Cycle-level software emulator of every target family (docs/emulator.md)."""

    name = "emulator"
    families = FAMILIES

    def available(self) -> str | None:
        """Always available: numpy and scipy only."""
        return None

    def lower(self, compiled: CompiledNetwork, out_dir: Path) -> Path:
        """The emulator's artifact is the compiled network itself: write it to ``out_dir``."""
        from nmcompiler.compiled import ARTIFACT_NAME, save_compiled

        out = save_compiled(compiled, out_dir)
        return Path(out) / ARTIFACT_NAME

    def engine(self, compiled: CompiledNetwork) -> Engine:
        """The engine of a compiled network (reusable across runs)."""
        return engine_for(compiled.network, compiled.target, partition=compiled.partition,
                          placement=compiled.placement, routes=compiled.routes)

    def run(
        self,
        artifact: Path | CompiledNetwork,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        *,
        probes: tuple[str, ...] = (),
        record_all: bool = False,
        count: bool = True,
        progress: Callable[[int], None] | None = None,
        workers: int | None = None,
        scheduler: str | None = None,
        split: str = "chips",
    ) -> RunResult:
        """Run a compiled network (or its saved artifact) for ``steps`` steps.

        ``probes`` and ``record_all`` are :meth:`nmcompiler.backend.Backend.run`'s;
        ``count=False`` skips the work counters (faster); ``progress(t)`` is called after
        every step. With ``workers`` or ``scheduler`` the run is spread over Dask workers
        (its chips, or with ``split="batch"`` its samples), with the same result
        (:func:`nmcompiler.backends.emulator.distributed.run_distributed`, docs/scale.md).
        """
        if isinstance(artifact, (str, Path)):
            from nmcompiler.compiled import load_compiled

            compiled = load_compiled(artifact)
        else:
            compiled = artifact
        if record_all:
            probes = tuple(probes) + tuple(f"{pop}.{var}" for pop in compiled.network.populations
                                           for var in ("spikes", "v", "u")
                                           if f"{pop}.{var}" not in probes)
        if workers is not None or scheduler is not None:
            from .distributed import run_distributed

            return run_distributed(compiled, inputs, steps, workers=workers,
                                   scheduler=scheduler, split=split, probes=tuple(probes),
                                   count=count, progress=progress)
        eng = self.engine(compiled)
        res = eng.run(inputs, steps, probes=probes, count=count, progress=progress)
        return _result(eng, res, self.name, {"target": compiled.target.name})
