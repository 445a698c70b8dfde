"""The one errors module of nmcompiler.

Every error a user can meet derives from :class:`NmcError` and carries the same parts:
the object it is about (population, projection, core, file, node), the rule or
resource, what was needed or found, the limit or what was expected, and a hint.
``str(error)`` reads as one sentence, e.g.::

    population 'hidden' needs 5120 input axons on one core; loihi2 allows 4096:
    split it or lower fan-in

The CLI maps each family to an exit code
(DESIGN.md section 7): :class:`NetworkError` and :class:`FitError` -> 1,
:class:`ConfigError` / :class:`UsageError` -> 2, :class:`ToolchainMissing` -> 3.
"""

from __future__ import annotations

__all__ = [
    "NmcError",
    "NetworkError",
    "ShapeMismatchError",
    "DanglingReferenceError",
    "DuplicateNameError",
    "ParameterError",
    "DelayError",
    "NonFiniteError",
    "EmptyPopulationError",
    "ZeroDelayCycleError",
    "ConvGeometryError",
    "InputError",
    "FormatError",
    "ImportFormatError",
    "ConfigError",
    "UsageError",
    "FitError",
    "RetimingError",
    "ToolchainMissing",
    "BackendError",
]


class NmcError(Exception):
    """Base of every nmcompiler error.

    Parameters are keyword-only; ``message`` is the sentence before the hint. The
    structured parts stay on the instance for programs (``err.obj``, ``err.need``...).
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        obj: str | None = None,
        rule: str | None = None,
        need: object = None,
        limit: object = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.obj = obj
        self.rule = rule
        self.need = need
        self.limit = limit
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:  # noqa: D105
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class NetworkError(NmcError):
    """A network that is structurally invalid (raised by ``ir.verify``)."""


class ShapeMismatchError(NetworkError):
    """An array or declared shape does not match what its neighbours need."""


class DanglingReferenceError(NetworkError):
    """A projection, output or probe names something that does not exist."""


class DuplicateNameError(NetworkError):
    """Two objects share one name."""


class ParameterError(NetworkError):
    """A parameter is unknown, of the wrong kind, or out of its range."""


class DelayError(NetworkError):
    """A delay is negative, not an integer, or below what the target allows."""


class NonFiniteError(NetworkError):
    """NaN or infinity in weights or parameters."""


class EmptyPopulationError(NetworkError):
    """A population or input with no neurons."""


class ZeroDelayCycleError(NetworkError):
    """Projections of delay 0 form a cycle (no step order can evaluate it)."""


class ConvGeometryError(NetworkError):
    """Convolution or pooling geometry does not produce the declared output shape."""


class InputError(NmcError):
    """Run-time input (spike arrays, input files) of the wrong name, shape or dtype."""


class FormatError(NmcError):
    """A saved file that cannot be read: unknown version, truncated, corrupted."""


class ImportFormatError(NmcError):
    """A foreign file (NIR, torch model...) that cannot be imported."""


class ConfigError(NmcError):
    """A malformed or inconsistent target description or option."""

    exit_code = 2


class UsageError(NmcError):
    """A wrong call: unknown option value, missing file, bad combination."""

    exit_code = 2


class FitError(NmcError):
    """The network does not fit the target: names the resource, need and limit."""


class RetimingError(NmcError):
    """No retiming gives every projection the target's minimum delay."""


class ToolchainMissing(NmcError):
    """A vendor toolchain needed by a backend is not installed or cannot run here."""

    exit_code = 3


class BackendError(NmcError):
    """A backend failed while lowering or running."""
