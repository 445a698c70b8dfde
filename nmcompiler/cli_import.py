"""The model-import options of the ``nmc`` commands, defined once (docs/cli.md#importing).

Every command that reads a model takes the same NIR import options as
:func:`nmcompiler.frontends.nir.from_nir`, with the choices of the frontend's own enums
(:class:`~nmcompiler.frontends.nir.Preset`, :class:`~nmcompiler.frontends.nir.Integration`,
:class:`~nmcompiler.frontends.nir.ResetMode`). A command declares them by taking a parameter
``nir: ImportOptions`` and wearing :func:`import_options`; it reads the model with
:func:`load`, which prints the import warnings and spells the hints of import errors as the
command-line flags (``--lenient``, not ``lenient=True``).
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from nmcompiler.frontends.nir.options import InputScale, Integration, Preset, ResetMode
from nmcompiler.ir.errors import NmcError

__all__ = ["ImportOptions", "import_options", "load", "as_flags"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    """The import options a user gave on the command line (None: the preset's value)."""

    preset: Preset | None = None
    dt: float | None = None
    integration: Integration | None = None
    reset: ResetMode | None = None
    reset_delay: bool | None = None
    input_scale: InputScale | None = None
    tau_times_dt: bool | None = None
    lenient: bool = False

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nmcompiler.api.load_model` (None = not given)."""
        out: dict[str, Any] = {
            "preset": self.preset.value if self.preset else None,
            "dt": self.dt,
            "integration": self.integration.value if self.integration else None,
            "reset": self.reset.value if self.reset else None,
            "input_scale": self.input_scale.value if self.input_scale else None,
            "lenient": self.lenient,
        }
        for name in ("reset_delay", "tau_times_dt"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


#: the typer parameters, in the order ``nmc CMD --help`` lists them
_PARAMS: tuple[inspect.Parameter, ...] = tuple(
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
    for name, ann, default in (
        ("preset", Optional[Preset], typer.Option(
            None, help="NIR: the exporting framework's conventions")),
        ("dt", Optional[float], typer.Option(
            None, help="NIR: time step in the file's time unit (default: the preset's)")),
        ("integration", Optional[Integration], typer.Option(
            None, help="NIR: how a time constant becomes a decay")),
        ("reset", Optional[ResetMode], typer.Option(
            None, help="NIR: what a spike does to the voltage (snnTorch: its "
                       "reset_mechanism)")),
        ("reset_delay", Optional[bool], typer.Option(
            None, "--reset-delay/--no-reset-delay",
            help="NIR: snnTorch's reset_delay (default: the preset's)")),
        ("input_scale", Optional[InputScale], typer.Option(
            None, help="NIR: what one step of input adds to the voltage (sinabs: unit "
                       "for norm_input=False)")),
        ("tau_times_dt", Optional[bool], typer.Option(
            None, "--tau-times-dt/--no-tau-times-dt",
            help="NIR: time constants written as dt * tau (Norse 1.1's exporter; default: "
                 "the preset's)")),
        ("lenient", bool, typer.Option(
            False, help="NIR: repair known defects with warnings")),
    )
)


def import_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the import options; it receives them as ``nir``."""
    sig = inspect.signature(func, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "nir"]
    names = [p.name for p in _PARAMS]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {n: kwargs.pop(n) for n in names if n in kwargs}
        return func(*args, nir=ImportOptions(**given), **kwargs)

    new = sig.replace(parameters=own + list(_PARAMS))
    wrapper.__signature__ = new  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in new.parameters.values()}
    del wrapper.__wrapped__  # typer must read the new signature, not the original's
    return wrapper


_OPTION_VALUE = re.compile(r"\b(preset|dt|integration|reset|input_scale|lenient|reset_delay"
                           r"|tau_times_dt)=('([^']*)'|\"([^\"]*)\"|[\w.+-]+)")


def as_flags(text: str) -> str:
    """``text`` with Python option spellings (``lenient=True``) as command-line flags."""
    def flag(m: re.Match[str]) -> str:
        name, raw = m.group(1), m.group(2)
        value = m.group(3) if m.group(3) is not None else (
            m.group(4) if m.group(4) is not None else raw)
        opt = "--" + name.replace("_", "-")
        if value in ("True", "False"):
            return opt if value == "True" else "--no-" + name.replace("_", "-")
        return f"{opt} {value}"

    return _OPTION_VALUE.sub(flag, text)


def load(model: Path, nir: ImportOptions, warn: Callable[[str], None]) -> Any:
    """The network of ``model`` (``.nir`` or ``.nmir``); warnings go to ``warn``; import
    errors carry their hints as flags."""
    from .api import load_model

    try:
        net, warnings = load_model(model, **nir.as_kwargs())
    except NmcError as exc:
        exc.message = as_flags(exc.message)
        exc.hint = as_flags(exc.hint) if exc.hint else exc.hint
        exc.args = (str(exc),)
        raise
    for w in warnings:
        warn(as_flags(str(w)))
    return net
