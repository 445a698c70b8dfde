"""pytest plugin for hardware-in-the-loop tests (entry point ``pytest11``: ``nmcompiler``).

Fixtures:

``nmc_compile``
    ``nmc_compile(network, target="emulator", seed=0, **options) -> CompiledNetwork``.
``nmc_deploy``
    ``nmc_deploy(compiled, backend="emulator") -> Deployment``; ``Deployment.run(inputs,
    steps, probes=())`` returns the backend's :class:`~nmcompiler.backend.RunResult`.
    A backend that cannot run here skips the test with its ``available()`` reason.
``nmc_reference``
    ``nmc_reference(compiled_or_network, inputs, steps, probes=())`` runs the reference
    simulator (``ir.simulate``) on the same (compiled) network: the expectation for
    targets whose arithmetic is exact.
``nmc_expect``
    ``nmc_expect(result, name)`` compares with a recording stored beside the test file
    (``__nmc_expectations__/<name>.npz``); ``pytest --nmc-record`` writes it.
``nmc_assert_same``
    ``nmc_assert_same(expected, result, compiled=None)`` fails with the first diverging
    step, neuron and core (see :func:`nmcompiler.testing.format_divergence`).

docs/hil_testing.md shows a complete test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import pytest

from .compare import assert_same_spikes

if TYPE_CHECKING:  # pragma: no cover
    from nmcompiler.backend import Backend, RunResult
    from nmcompiler.compiled import CompiledNetwork

__all__ = ["Deployment", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--nmc-record``: write expectations instead of comparing with them."""
    group = parser.getgroup("nmcompiler")
    group.addoption("--nmc-record", action="store_true", default=False,
                    help="nmcompiler: record hardware-in-the-loop expectations")


@dataclass
class Deployment:
    """A compiled network deployed on a backend."""

    compiled: CompiledNetwork
    backend: Backend

    def run(self, inputs: Mapping[str, np.ndarray], steps: int, probes: tuple[str, ...] = ()
            ) -> RunResult:
        """Run and return the backend's RunResult (every backend takes ``probes``)."""
        return self.backend.run(self.compiled, inputs, steps, probes=tuple(probes))


def _recordings(result: Any) -> dict[str, np.ndarray]:
    out = dict(getattr(result, "outputs", {}) or {})
    out.update(getattr(result, "probes", {}) or {})
    return out


@pytest.fixture
def nmc_compile() -> Callable[..., Any]:
    """Compile a network for a target (see the module docstring)."""
    from nmcompiler.api import compile as compile_network

    def _compile(network: Any, target: Any = "emulator", seed: int = 0, **options: Any) -> Any:
        return compile_network(network, target, seed=seed, **options)

    return _compile


@pytest.fixture
def nmc_deploy() -> Callable[..., Deployment]:
    """Deploy a compiled network on a backend that can run here (else skip)."""
    from nmcompiler.backend import get_backend

    def _deploy(compiled: Any, backend: str = "emulator") -> Deployment:
        b = get_backend(backend)
        reason = b.available()
        if reason is not None:
            pytest.skip(f"backend '{backend}' cannot run here: {reason}")
        return Deployment(compiled=compiled, backend=b)

    return _deploy


@pytest.fixture
def nmc_reference() -> Callable[..., dict[str, np.ndarray]]:
    """Run ir.simulate on a compiled network (or a plain one); returns its recordings."""
    from nmcompiler import ir

    def _reference(net_or_compiled: Any, inputs: Mapping[str, np.ndarray], steps: int,
                   probes: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        net = getattr(net_or_compiled, "network", net_or_compiled)
        res = ir.simulate(net, inputs, steps, probes=probes)
        return {**res.outputs, **res.probes}

    return _reference


@pytest.fixture
def nmc_assert_same() -> Callable[..., None]:
    """Assert two runs agree; the failure names the first diverging step, neuron, core."""

    def _same(expected: Any, actual: Any, compiled: Any = None, atol: float = 0.0) -> None:
        exp = expected if isinstance(expected, Mapping) else _recordings(expected)
        act = actual if isinstance(actual, Mapping) else _recordings(actual)
        assert_same_spikes(exp, act, compiled=compiled, atol=atol)

    return _same


@pytest.fixture
def nmc_expect(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Compare a run with a stored recording (``--nmc-record`` stores it)."""
    record = bool(request.config.getoption("--nmc-record"))
    folder = Path(str(request.path)).parent / "__nmc_expectations__"

    def _expect(result: Any, name: str, compiled: Any = None) -> None:
        rec = result if isinstance(result, Mapping) else _recordings(result)
        path = folder / f"{name}.npz"
        if record:
            folder.mkdir(exist_ok=True)
            arrays = {k.replace(".", "__"): np.asarray(v) for k, v in rec.items()}
            np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
            return
        if not path.exists():
            pytest.fail(f"no recorded expectation '{path}': run pytest --nmc-record once")
        with np.load(path) as f:
            exp = {k.replace("__", "."): f[k] for k in f.files}
        assert_same_spikes(exp, rec, compiled=compiled, expected_label="recorded",
                           actual_label="now")

    return _expect
