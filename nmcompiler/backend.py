"""The backend interface (docs/architecture.md#the-backend-contract).

A backend serves one or more target families. It is a subclass of :class:`Backend`,
registered under the entry-point group ``nmcompiler.backends`` (pyproject.toml), and found
with :func:`backend_names` / :func:`get_backend`; nmcompiler never imports a backend
module by name. A vendor toolchain is imported only inside its backend, lazily. Each
backend is checked when it is loaded (:func:`load_backends`): a :class:`Backend` subclass
with a name, at least one family, a ``run`` that takes the base class's keywords, and a
name no other backend has.

Every backend that can run returns the same :class:`RunResult`: spikes and probes as
``(T, B, n)`` arrays per population, and :class:`Counters` of the work done. A backend
that only lowers keeps the base class's ``run``, which raises
:class:`~nmcompiler.ir.errors.ToolchainMissing` with its :meth:`Backend.available` reason.
"""

from __future__ import annotations

import abc
import contextlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from nmcompiler.ir.errors import ConfigError, ToolchainMissing, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .compiled import CompiledNetwork

__all__ = [
    "Backend",
    "ScriptBackend",
    "dask_client",
    "Counters",
    "RunResult",
    "ENTRY_POINT_GROUP",
    "backend_names",
    "get_backend",
    "load_backends",
]

ENTRY_POINT_GROUP = "nmcompiler.backends"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Counters:
    """Work counted during a run, per step and per core (arrays; absent = not counted).

    Attributes:
        sops: ``(T, n_cores)`` synaptic operations (one per synapse a spike reaches).
        neuron_updates: ``(T, n_cores)`` neuron state updates.
        spikes_sent: ``(T, n_cores)`` spikes emitted by the neurons of each core.
        messages: ``(T, n_cores)`` messages sent into the network-on-chip (one per
            (source neuron, destination core)).
        link_hops: ``(T, n_links)`` messages that crossed each link (target's link list).
        step_time_s: ``(T,)`` modelled wall time of each step, seconds.
        step_energy_j: ``(T,)`` modelled energy of each step (dynamic + static), joules.
        energy_j: energy by component, joules, over the whole run (``{"synaptic": ...,
            "neuron": ..., "routing": ..., "static": ...}``).
    """

    sops: np.ndarray | None = None
    neuron_updates: np.ndarray | None = None
    spikes_sent: np.ndarray | None = None
    messages: np.ndarray | None = None
    link_hops: np.ndarray | None = None
    step_time_s: np.ndarray | None = None
    step_energy_j: np.ndarray | None = None
    energy_j: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RunResult:
    """What every backend's ``run`` returns.

    Attributes:
        backend: the backend's name.
        steps: steps run.
        outputs: per output name, ``(T, B, n)``: spikes (payloads) of a spiking
            population, voltage of a non-spiking readout, in the compiled network's units.
        probes: per probe key ``"population.var"``, ``(T, B, n)``.
        counters: work counted (emulator: everything; vendor simulators: what they give).
        info: backend-specific extras (versions, wall time, artifact paths).
    """

    backend: str
    steps: int
    outputs: dict[str, np.ndarray]
    probes: dict[str, np.ndarray] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    info: dict[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """A target family's backend. Subclasses set ``name`` and ``families``."""

    #: short name used on the command line (``nmc deploy --backend NAME``)
    name: str = ""
    #: target ``backend`` values (hw_configs ``backend = "..."``) this backend serves
    families: tuple[str, ...] = ()

    @abc.abstractmethod
    def available(self) -> str | None:
        """None when this backend can lower *and* run here, else the exact reason."""

    @abc.abstractmethod
    def lower(self, compiled: CompiledNetwork, out_dir: Path) -> Path:
        """Write the vendor artifact for ``compiled`` under ``out_dir``; return its path."""

    def run(
        self,
        artifact: Path | CompiledNetwork,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        *,
        probes: tuple[str, ...] = (),
        record_all: bool = False,
    ) -> RunResult:
        """Run a lowered artifact (or a compiled network) for ``steps`` steps.

        Every backend takes these arguments; a backend may add keyword-only options with
        defaults after them (the emulator's ``count``, Lava's ``fuse`` and ``timeout``).

        Args:
            artifact: a :class:`~nmcompiler.compiled.CompiledNetwork`, its build directory
                or ``compiled.nmc``, or what this backend's :meth:`lower` wrote.
            inputs: ``{input name: (T, n) or (T, B, n)}`` spikes or payloads.
            steps: steps to run (>= 1).
            probes: extra recordings ``"population.spikes"``, ``".v"`` or ``".u"``, added
                to the network's own probes.
            record_all: record spikes, ``v`` and ``u`` of every population.

        Returns:
            :class:`RunResult`; this base implementation raises
            :class:`~nmcompiler.ir.errors.ToolchainMissing` (a backend that only lowers).
        """
        reason = self.available()
        raise ToolchainMissing(
            f"backend '{self.name}' cannot run networks here",
            obj=self.name,
            rule="toolchain",
            hint=reason or "this backend only lowers; run on the emulator instead",
        )



class ScriptBackend(Backend):
    """A backend that writes its vendor artifact as a graph of arrays plus a standalone
    runner script (``out_dir/<dir_name>/{network.npz, <script_file>}``) and runs that
    script in the vendor's interpreter (Lava, PyNN): the artifact handling, the step check
    and the input checks they share. Subclasses set the names and :meth:`graph_io`, and
    may refine :meth:`check_input_values`."""

    #: the folder :meth:`lower` writes under ``out_dir``
    dir_name: str = ""
    #: the graph's file in that folder
    network_file: str = "network.npz"
    #: the runner script's file name in that folder
    script_file: str = ""
    #: combine (T, n) inputs with (T, B, n) ones by repeating them over the batch
    broadcast_batch: bool = False

    @abc.abstractmethod
    def runner(self) -> Path:
        """The runner script copied next to the graph."""

    @abc.abstractmethod
    def graph_io(self) -> tuple[Any, Any, Any]:
        """``(lower_compiled, write_graph, read_graph)`` of this backend's graph format;
        the graph has ``inputs``, ``record_all()``."""

    def lower(self, compiled: CompiledNetwork, out_dir: Path, *,
              probes: tuple[str, ...] = ()) -> Path:
        """Write ``out_dir/<dir_name>/{network.npz, script}``; return that folder.

        ``probes`` adds ``"pop.var"`` recordings to the network's own outputs and probes.
        """
        import shutil

        lower_compiled, write_graph, _ = self.graph_io()
        graph = lower_compiled(compiled, probes=probes)
        dest = Path(out_dir) / self.dir_name
        dest.mkdir(parents=True, exist_ok=True)
        write_graph(graph, dest / self.network_file)
        shutil.copyfile(self.runner(), dest / self.script_file)
        return dest

    def artifact_files(self, artifact: Any, tmp: Path, probes: tuple[str, ...],
                       record_all: bool) -> tuple[Path, Path | None]:
        """``(network.npz, script or None)`` for any accepted artifact: a lowered folder
        or its graph file (used as is), a build directory / ``compiled.nmc`` or a
        CompiledNetwork (lowered into ``tmp``). Paths are made absolute: the runner
        starts in another directory."""
        compiled = artifact
        if isinstance(artifact, (str, Path)):
            p = Path(artifact).resolve()
            folder = None
            if p.is_file() and p.suffix == ".npz":
                folder, npz = p.parent, p
            elif p.is_dir() and (p / self.network_file).exists():
                folder, npz = p, p / self.network_file
            if folder is not None:
                script = folder / self.script_file
                return npz, script if script.exists() else None
            from nmcompiler.compiled import load_compiled

            compiled = load_compiled(p)
        lower_compiled, write_graph, _ = self.graph_io()
        graph = lower_compiled(compiled, probes=probes)
        if record_all:
            graph.record_all()
        return write_graph(graph, tmp / self.network_file), None

    @staticmethod
    def check_steps(steps: Any) -> int:
        """``steps`` as an int >= 1, else an InputError."""
        from nmcompiler.ir.errors import InputError

        if steps is None or int(steps) < 1:
            raise InputError("nothing to run: 0 steps", obj="steps", rule="steps >= 1",
                             hint="pass steps >= 1")
        return int(steps)

    def check_input_values(self, name: str, a: np.ndarray) -> None:
        """Refuse values this backend's runner cannot send (default: accept all)."""

    def check_inputs(self, sizes: Mapping[str, int], inputs: Mapping[str, np.ndarray],
                     steps: int) -> dict[str, np.ndarray]:
        """The inputs cut to ``steps`` steps, checked against the graph's input sizes
        (``{name: n}``): known names, ``(T >= steps, n)`` or ``(T, B, n)``, one batch
        size, values accepted by :meth:`check_input_values`."""
        from nmcompiler.ir.errors import InputError

        out = {}
        for name, x in (inputs or {}).items():
            if name not in sizes:
                raise InputError(f"input '{name}' is not an input of the network",
                                 obj=name, rule="known input",
                                 hint="inputs: " + (", ".join(sizes) or "none"))
            a = np.asarray(x)
            n = int(sizes[name])
            if a.ndim not in (2, 3) or a.shape[-1] != n or a.shape[0] < steps:
                raise InputError(
                    f"input '{name}' has shape {a.shape}; need (T >= {steps}, {n}) or "
                    f"(T, B, {n})", obj=name, rule="input shape",
                    hint="one (T, n) or (T, B, n) array per input")
            self.check_input_values(name, a)
            out[name] = a[:steps]
        batches = {a.shape[1] for a in out.values() if a.ndim == 3}
        if len(batches) > 1:
            raise InputError(f"inputs have different batch sizes {sorted(batches)}",
                             obj="inputs", rule="one batch size", hint="use one B for all")
        if batches and self.broadcast_batch:
            b = batches.pop()
            out = {k: (v if v.ndim == 3 else np.repeat(v[:, None, :], b, axis=1))
                   for k, v in out.items()}
        return out


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None, client: Any = None,
                timeout_s: float = 20.0, what: str = "nmc sweep") -> Iterator[Any]:
    """A ``distributed.Client``: ``client`` itself, one connected to ``scheduler``, or a
    ``LocalCluster`` of ``workers`` processes (closed at the end). ``nmc sweep`` and
    the distributed emulation (docs/scale.md) share it; ``what`` names the caller."""
    if client is not None:
        yield client
        return
    try:
        import distributed
    except ImportError:
        raise ToolchainMissing(f"{what} needs dask.distributed",
                               obj="distributed", rule="installed",
                               hint='pip install "nmcompiler[scale]"') from None
    own: list[Any] = []
    try:
        if scheduler is not None:
            try:
                own.append(distributed.Client(scheduler, timeout=f"{timeout_s}s"))
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at '{scheduler}' ({exc})",
                                  obj=scheduler, rule="scheduler address",
                                  hint="start one with: dask scheduler (docs/scale.md)"
                                  ) from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=None, silence_logs=logging.ERROR)
            own.append(cluster)
            own.insert(0, distributed.Client(cluster))
        yield own[0]
    finally:
        for obj in own:
            obj.close()

#: the keyword arguments every backend's ``run`` takes (checked when a backend is loaded)
RUN_KEYWORDS = ("probes", "record_all")


def _entry_points() -> dict[str, metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def _invalid(entry: str, why: str) -> UsageError:
    return UsageError(f"the backend registered as '{entry}' is invalid: {why}", obj=entry,
                      rule="backend protocol",
                      hint="fix its entry point in the group 'nmcompiler.backends' "
                           "(docs/architecture.md#the-backend-contract)")


def _check(entry: str, cls: Any) -> type[Backend]:
    """``cls`` if it is a valid backend class for entry point ``entry``, else UsageError."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise _invalid(entry, f"{cls!r} is not a subclass of nmcompiler.backend.Backend")
    if not cls.name:
        raise _invalid(entry, f"{cls.__name__}.name is empty")
    families = cls.families
    if not (isinstance(families, tuple) and families
            and all(isinstance(f, str) and f for f in families)):
        raise _invalid(entry, f"{cls.__name__}.families must be a non-empty tuple of "
                              f"family names, not {families!r}")
    if getattr(cls, "__abstractmethods__", None):
        raise _invalid(entry, f"{cls.__name__} does not implement "
                              + ", ".join(sorted(cls.__abstractmethods__)))
    params = inspect.signature(cls.run).parameters
    missing = [k for k in RUN_KEYWORDS
               if k not in params or params[k].kind is not inspect.Parameter.KEYWORD_ONLY]
    if missing:
        raise _invalid(entry, f"{cls.__name__}.run does not take the keyword-only "
                              "argument(s) " + ", ".join(missing))
    return cls


def load_backends() -> dict[str, type[Backend]]:
    """Every installed backend class by name, each checked (:func:`_check`).

    Raises:
        UsageError: a registered backend is not a valid :class:`Backend` subclass, or two
            backends share a name (exit code 2).
    """
    out: dict[str, type[Backend]] = {}
    for entry, ep in _entry_points().items():
        cls = _check(entry, ep.load())
        if cls.name in out:
            raise _invalid(entry, f"its name '{cls.name}' is also the name of "
                                  f"{out[cls.name].__module__}.{out[cls.name].__name__}")
        out[cls.name] = cls
    return out


def backend_names() -> list[str]:
    """Names of the installed backends (entry points), sorted."""
    return list(_entry_points())


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered as ``name`` (checked as :func:`load_backends`).

    Raises:
        UsageError: no backend has that name (the message lists the installed ones), or
            the registered class is not a valid backend.
    """
    eps = _entry_points()
    if name not in eps:
        raise UsageError(
            f"no backend named '{name}'",
            obj=name,
            rule="installed backend",
            hint="installed backends: " + (", ".join(eps) or "none (is nmcompiler installed?)"),
        )
    cls = _check(name, eps[name].load())
    if cls.name != name:
        raise _invalid(name, f"its class says its name is '{cls.name}'")
    return cls()
