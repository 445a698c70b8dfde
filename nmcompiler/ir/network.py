"""The network: populations, projections, inputs, outputs and probes.

Semantics: docs/architecture.md#ir-semantics.

A :class:`Network` is a directed graph stored as a few small records, each holding arrays:
there is no Python object per neuron or synapse. The builder methods read naturally::

    net = Network(name="demo")
    net.input("in", 100)
    net.population("hidden", 128, LIF(lam=0.9, theta=1.0))
    net.connect("in", "hidden", Dense(weight=w), delay=1)
    net.output("hidden")

Passes never mutate a network: they call :meth:`Network.replace`, which returns a new one
sharing the unchanged records (arrays are treated as immutable once in a network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from .connectivity import Connectivity
from .errors import DuplicateNameError, UsageError
from .models import NeuronModel

__all__ = ["Population", "Input", "Projection", "Output", "Probe", "Network", "PROBE_VARS"]

#: Variables a probe can record: spikes (payloads), voltage v, current u.
PROBE_VARS = ("spikes", "v", "u")


def _shape(size: int | None, shape: Iterable[int] | None) -> tuple[int, ...]:
    if shape is not None:
        return tuple(int(x) for x in shape)
    if size is None:
        raise UsageError("a population or input needs a size or a shape", hint="pass size=N")
    return (int(size),)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Population:
    """A group of neurons of one model.

    Attributes:
        name: unique name.
        shape: layout of the neurons, e.g. ``(128,)`` or ``(16, 15, 15)`` (CHW); the
            population has ``prod(shape)`` neurons, flattened in C order.
        model: the neuron model with its (per-step) parameters.
    """

    name: str
    shape: tuple[int, ...]
    model: NeuronModel

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Input:
    """An input port: values given each step (binary or graded spikes, or analog currents)."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of channels."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Projection:
    """Synapses from ``pre`` (a population or input) to ``post`` (a population).

    Attributes:
        name: unique name.
        pre: name of the source population or input.
        post: name of the target population.
        conn: the connectivity and its weights.
        delay: steps between a spike and its arrival (integer >= 0; 0 = same step).
            Per-synapse delays in ``conn.delays`` are added to it.
    """

    name: str
    pre: str
    post: str
    conn: Connectivity
    delay: int = 1


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Output:
    """A named output: the spikes of a spiking population, the voltage of an LI readout."""

    name: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Probe:
    """Record ``var`` (one of :data:`PROBE_VARS`) of population ``target`` every step."""

    target: str
    var: str

    @property
    def key(self) -> str:
        """The key of the recording in a result: ``"target.var"``."""
        return f"{self.target}.{self.var}"


class Network:
    """A spiking network: see the module docstring.

    Attributes (read-only by convention; use the builder methods or :meth:`replace`):
        name: the network's name.
        populations, inputs, projections, outputs: dicts by name, in insertion order.
        probes: tuple of :class:`Probe`.
        metadata: free-form, JSON-serialisable provenance (frontend, dt, ...).
    """

    __slots__ = ("name", "populations", "inputs", "projections", "outputs", "probes", "metadata")

    def __init__(
        self,
        name: str = "network",
        *,
        populations: Mapping[str, Population] | None = None,
        inputs: Mapping[str, Input] | None = None,
        projections: Mapping[str, Projection] | None = None,
        outputs: Mapping[str, Output] | None = None,
        probes: Iterable[Probe] = (),
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        self.name = name
        self.populations: dict[str, Population] = dict(populations or {})
        self.inputs: dict[str, Input] = dict(inputs or {})
        self.projections: dict[str, Projection] = dict(projections or {})
        self.outputs: dict[str, Output] = dict(outputs or {})
        self.probes: tuple[Probe, ...] = tuple(probes)
        self.metadata: dict[str, object] = dict(metadata or {})

    # ------------------------------------------------------------------ builder
    def _check_new(self, name: str, kind: str) -> None:
        if name in self.populations or name in self.inputs:
            raise DuplicateNameError(
                f"{kind} '{name}' cannot be added: the name is already used by "
                f"{'a population' if name in self.populations else 'an input'}",
                obj=name,
                rule="unique names",
                hint="choose another name",
            )

    def input(self, name: str, size: int | None = None, *, shape: Iterable[int] | None = None
              ) -> Input:
        """Add an input port of ``size`` channels (or a ``shape`` such as CHW)."""
        self._check_new(name, "input")
        inp = Input(name=name, shape=_shape(size, shape))
        self.inputs[name] = inp
        return inp

    def population(
        self,
        name: str,
        size: int | None = None,
        model: NeuronModel | None = None,
        *,
        shape: Iterable[int] | None = None,
    ) -> Population:
        """Add a population of ``size`` neurons (or a ``shape``) of ``model``."""
        self._check_new(name, "population")
        if model is None:
            raise UsageError(
                f"population '{name}' has no neuron model", obj=name, hint="pass e.g. LIF()"
            )
        pop = Population(name=name, shape=_shape(size, shape), model=model)
        self.populations[name] = pop
        return pop

    def connect(
        self, pre: str, post: str, conn: Connectivity, *, delay: int = 1, name: str | None = None
    ) -> Projection:
        """Add a projection from ``pre`` to ``post`` (name defaults to ``"pre->post"``)."""
        if name is None:
            name = f"{pre}->{post}"
            k = 2
            while name in self.projections:
                name = f"{pre}->{post}#{k}"
                k += 1
        if name in self.projections:
            raise DuplicateNameError(
                f"projection '{name}' already exists",
                obj=name,
                rule="unique names",
                hint="pass another name=",
            )
        proj = Projection(name=name, pre=pre, post=post, conn=conn, delay=delay)
        self.projections[name] = proj
        return proj

    def output(self, source: str, *, name: str | None = None) -> Output:
        """Mark population ``source`` as an output (named ``name``, default the source)."""
        name = source if name is None else name
        if name in self.outputs:
            raise DuplicateNameError(
                f"output '{name}' already exists", obj=name, rule="unique names",
                hint="pass another name=",
            )
        out = Output(name=name, source=source)
        self.outputs[name] = out
        return out

    def probe(self, target: str, var: str = "spikes") -> Probe:
        """Record ``var`` ("spikes", "v" or "u") of population ``target``."""
        p = Probe(target=target, var=var)
        if any(q.key == p.key for q in self.probes):
            raise DuplicateNameError(
                f"probe '{p.key}' already exists", obj=p.key, rule="unique names",
                hint="probe each variable once",
            )
        self.probes = self.probes + (p,)
        return p

    # ------------------------------------------------------------------ queries
    def size_of(self, name: str) -> int:
        """Number of neurons or channels of a population or input."""
        node = self.populations.get(name) or self.inputs.get(name)
        if node is None:
            raise KeyError(name)
        return node.size

    def shape_of(self, name: str) -> tuple[int, ...]:
        """Shape of a population or input."""
        node = self.populations.get(name) or self.inputs.get(name)
        if node is None:
            raise KeyError(name)
        return node.shape

    @property
    def n_neurons(self) -> int:
        """Total neurons over all populations."""
        return sum(p.size for p in self.populations.values())

    def replace(self, **changes: object) -> Network:
        """A new network with some of the fields replaced (others shared)."""
        kw = {
            "populations": self.populations,
            "inputs": self.inputs,
            "projections": self.projections,
            "outputs": self.outputs,
            "probes": self.probes,
            "metadata": self.metadata,
        }
        name = changes.pop("name", self.name)
        kw.update(changes)
        return Network(str(name), **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"Network({self.name!r}: {len(self.populations)} populations, "
            f"{self.n_neurons} neurons, {len(self.projections)} projections)"
        )
