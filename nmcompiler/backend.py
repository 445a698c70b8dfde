"""The backend interface (DESIGN.md section 5).

A backend serves one family of targets. It is a subclass of :class:`Backend`, registered
under the entry-point group ``nmcompiler.backends`` (pyproject.toml), and found with
:func:`backends_available` / :func:`get_backend`; nmcompiler never imports a backend
module by name. A vendor toolchain is imported only inside its backend, lazily.

Every backend that can run returns the same :class:`RunResult`: spikes and probes as
``(T, B, n)`` arrays per population, and :class:`Counters` of the work done. Backends
that only lower (e.g. Speck without samna) return ``None`` from :meth:`Backend.run`'s
availability check and raise :class:`~nmcompiler.ir.errors.ToolchainMissing` from ``run``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from nmcompiler.ir.errors import ToolchainMissing, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .compiled import CompiledNetwork

__all__ = [
    "Backend",
    "Counters",
    "RunResult",
    "ENTRY_POINT_GROUP",
    "backend_names",
    "get_backend",
    "backend_for_target",
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
    ) -> RunResult:
        """Run a lowered artifact (or a compiled network) for ``steps`` steps."""
        reason = self.available()
        raise ToolchainMissing(
            f"backend '{self.name}' cannot run networks here",
            obj=self.name,
            rule="toolchain",
            hint=reason or "this backend only lowers; run on the emulator instead",
        )


def _entry_points() -> dict[str, metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def backend_names() -> list[str]:
    """Names of the installed backends (entry points), sorted."""
    return list(_entry_points())


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered as ``name``."""
    eps = _entry_points()
    if name not in eps:
        raise UsageError(
            f"no backend named '{name}'",
            obj=name,
            rule="installed backend",
            hint="installed backends: " + (", ".join(eps) or "none (is nmcompiler installed?)"),
        )
    cls = eps[name].load()
    return cls()


def backend_for_target(family: str) -> list[Backend]:
    """The installed backends that serve target family ``family``."""
    out = []
    for name in _entry_points():
        b = get_backend(name)
        if family in b.families:
            out.append(b)
    return out
