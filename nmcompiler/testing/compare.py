"""Find and explain where two runs of a network part ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["Divergence", "first_divergence", "format_divergence", "assert_same_spikes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """The first place two recordings differ.

    Attributes:
        key: the output or probe (``"population.var"``) that differs.
        step: the first step with a difference.
        batch: the batch element.
        neuron: index of the first differing neuron in that recording.
        expected, actual: the values there.
        n_differences: differing entries over the whole recording of ``key``.
        population: the population the recording belongs to (when known).
        core: the logical core that neuron lives on (when a partition is given).
        physical_core: its physical core (when a placement is given).
        window: ``(steps, 2, k)`` expected and actual values of the neighbourhood.
    """

    key: str
    step: int
    batch: int
    neuron: int
    expected: float
    actual: float
    n_differences: int
    population: str | None = None
    core: int | None = None
    physical_core: int | None = None
    window: Any = None


def _as_tbn(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.bool_:  # the emulator's binary spikes: compared as 0 / 1
        x = x.astype(np.float64)
    return x[:, None, :] if x.ndim == 2 else x


def _population_of(key: str, compiled: Any) -> str | None:
    if compiled is None:
        return key.rsplit(".", 1)[0] if "." in key else None
    net = compiled.network
    if key in net.outputs:
        return net.outputs[key].source
    pop = key.rsplit(".", 1)[0]
    return pop if pop in net.populations else None


def first_divergence(
    expected: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    *,
    compiled: Any = None,
    atol: float = 0.0,
    keys: tuple[str, ...] | None = None,
) -> Divergence | None:
    """The earliest (step, then key order) difference between two sets of recordings.

    ``expected`` and ``actual`` map output names or probe keys to ``(T, n)`` or
    ``(T, B, n)`` arrays. Keys present in both are compared (or ``keys``). Returns None
    when they agree within ``atol``. With ``compiled`` (a CompiledNetwork) the result
    names the population and the logical and physical core of the neuron.
    """
    names = keys if keys is not None else tuple(k for k in expected if k in actual)
    best: Divergence | None = None
    for key in names:
        e, a = _as_tbn(expected[key]), _as_tbn(actual[key])
        if e.shape != a.shape:
            return Divergence(key=key, step=0, batch=0, neuron=0, expected=float("nan"),
                              actual=float("nan"), n_differences=-1,
                              population=_population_of(key, compiled),
                              window=(e.shape, a.shape))
        diff = np.abs(e - a) > atol
        if not diff.any():
            continue
        t, b, i = (int(v) for v in np.argwhere(diff)[0])
        if best is not None and t >= best.step:
            continue
        pop = _population_of(key, compiled)
        core = phys = None
        if compiled is not None and pop is not None:
            try:
                cores = compiled.partition.cores_of(pop)
                core = int(cores[i])
                phys = int(compiled.placement.core[core])
            except (AttributeError, ValueError, IndexError):
                pass
        lo, hi = max(t - 3, 0), min(t + 4, e.shape[0])
        j0, j1 = max(i - 2, 0), min(i + 3, e.shape[2])
        window = {"steps": (lo, hi), "neurons": (j0, j1),
                  "expected": e[lo:hi, b, j0:j1], "actual": a[lo:hi, b, j0:j1]}
        best = Divergence(key=key, step=t, batch=b, neuron=i, expected=float(np.real(e[t, b, i])),
                          actual=float(np.real(a[t, b, i])), n_differences=int(diff.sum()),
                          population=pop, core=core, physical_core=phys, window=window)
    return best


def format_divergence(d: Divergence, *, expected_label: str = "expected",
                      actual_label: str = "actual") -> str:
    """A readable multi-line account of a divergence."""
    if d.n_differences < 0:
        exp_shape, act_shape = d.window
        return (f"'{d.key}' has shape {act_shape} ({actual_label}) but {exp_shape} "
                f"({expected_label})")
    where = f"neuron {d.neuron}"
    if d.population:
        where += f" of population '{d.population}'"
    if d.core is not None:
        where += f" on logical core {d.core}"
        if d.physical_core is not None:
            where += f" (physical core {d.physical_core})"
    lines = [
        f"first divergence at step {d.step} in '{d.key}', {where}, batch {d.batch}: "
        f"{expected_label} {d.expected:g}, {actual_label} {d.actual:g} "
        f"({d.n_differences} differing entries in all)",
    ]
    w = d.window
    if isinstance(w, dict):
        j0, j1 = w["neurons"]
        head = "step   " + " ".join(f"{'n' + str(j):>15}" for j in range(j0, j1))
        lines.append(f"  {expected_label} / {actual_label} around it:")
        lines.append("  " + head)
        for k, t in enumerate(range(*w["steps"])):
            cells = " ".join(
                f"{w['expected'][k, m]:>7g}/{w['actual'][k, m]:<7g}" for m in range(j1 - j0))
            mark = ">" if t == d.step else " "
            lines.append(f" {mark}{t:<6d}{cells}")
    return "\n".join(lines)


def assert_same_spikes(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray],
                       *, compiled: Any = None, atol: float = 0.0,
                       expected_label: str = "expected", actual_label: str = "actual") -> None:
    """Raise AssertionError with :func:`format_divergence`'s text if the runs differ."""
    d = first_divergence(expected, actual, compiled=compiled, atol=atol)
    if d is not None:
        raise AssertionError(format_divergence(d, expected_label=expected_label,
                                               actual_label=actual_label))
