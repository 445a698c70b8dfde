"""Checks the ``nmc`` commands run before any work (docs/cli.md): option values, input
paths, ``--input`` arrays and the text printed from names read from files.

Every check raises a named error (:class:`~nmcompiler.ir.errors.UsageError`, exit 2, for
options and missing paths; :class:`~nmcompiler.ir.errors.InputError`, exit 1, for input
arrays) that names the option or file, the rule and a hint.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import InputError, UsageError

__all__ = [
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_INPUT_VALUE",
    "check_int",
    "check_float",
    "check_path",
    "load_inputs",
    "check_input_arrays",
    "plain",
]

#: largest ``--seed`` (numpy seeds are unsigned; 2**63 - 1 keeps it a signed int64)
MAX_SEED = 2**63 - 1
#: largest ``--steps`` (a bound on the work of one command; 100,000 steps of a small network
#: take about 40 s on the emulator)
MAX_STEPS = 100_000
#: largest magnitude of an ``--input`` value (graded payloads are at most 24-bit on the
#: bundled chips; 2**31 leaves room and stays exact in int32/float64 arithmetic)
MAX_INPUT_VALUE = 2**31 - 1


def check_int(name: str, value: int | None, lo: int, hi: int) -> int | None:
    """``value`` in ``[lo, hi]`` (None passes): else UsageError naming ``--name``."""
    if value is None:
        return None
    if not lo <= int(value) <= hi:
        raise UsageError(f"--{name} {value} is out of range", obj=f"--{name}", rule="range",
                         need=value, limit=(lo, hi), hint=f"give {lo} <= {name} <= {hi:,}")
    return int(value)


def check_float(name: str, value: float | None, lo: float, hi: float, *,
                lo_open: bool = False) -> float | None:
    """A finite ``value`` in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``; None passes)."""
    if value is None:
        return None
    ok = math.isfinite(value) and (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        left = "(" if lo_open else "["
        raise UsageError(f"--{name} {value} is out of range", obj=f"--{name}", rule="range",
                         need=value, limit=(lo, hi),
                         hint=f"give a finite number in {left}{lo:g}, {hi:g}]")
    return float(value)


def check_path(path: Path, what: str) -> Path:
    """An existing path, else UsageError (exit 2) naming it."""
    if not Path(path).exists():
        raise UsageError(f"{what} '{path}' does not exist", obj=str(path),
                         rule="file exists", hint="check the path")
    return Path(path)


def load_inputs(path: Path) -> dict[str, np.ndarray]:
    """Read ``--input``: an ``.npz`` (one array per input name) or an ``.npy`` (one array,
    for a network with one input; returned under the key ``""``).

    Values must be numeric (bool, integer or float), finite and at most
    :data:`MAX_INPUT_VALUE` in magnitude.

    Raises:
        UsageError: the file does not exist (exit 2).
        InputError: not an ``.npz``/``.npy`` of numeric arrays, or bad values (exit 1).
    """
    path = check_path(path, "input file")
    shown = str(path)
    hint = "write it with numpy.savez(path, input_name=array) or numpy.save(path, array)"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
            fh.seek(0)
            if head == b"\x93NUMPY":
                arrays = {"": np.load(fh, allow_pickle=False)}
            else:
                with np.load(fh, allow_pickle=False) as f:
                    if not isinstance(f, np.lib.npyio.NpzFile):  # pragma: no cover
                        raise ValueError("not an archive")
                    arrays = {k: np.asarray(f[k]) for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, TypeError,
            RuntimeError, MemoryError) as exc:
        why = "" if "pickle" in str(exc).lower() else f" ({str(exc)[:200]})"
        raise InputError(f"input file '{shown}' is not a .npz of arrays or a .npy array"
                         f"{why}", obj=str(path), rule=".npz/.npy",
                         hint=hint) from None
    for k, a in arrays.items():
        label = f"input file '{shown}'" + (f", array '{k}'" if k else "")
        if a.dtype.kind not in "biuf":
            raise InputError(f"{label} has dtype {a.dtype}; inputs are numbers",
                             obj=k or str(path), rule="numeric input", hint=hint)
        if a.size and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"{label} holds NaN or infinity", obj=k or str(path),
                             rule="finite input", hint="replace them with numbers")
        if a.size and a.dtype.kind in "iuf":
            big = float(np.max(np.abs(a.astype(np.float64))))
            if big > MAX_INPUT_VALUE:
                raise InputError(f"{label} holds a value of magnitude {big:g}",
                                 obj=k or str(path), rule="input range", need=big,
                                 limit=MAX_INPUT_VALUE,
                                 hint=f"inputs are spikes or payloads of at most "
                                      f"{MAX_INPUT_VALUE:,}")
    return arrays


def name_inputs(arrays: dict[str, np.ndarray], net: Any, path: Path) -> dict[str, np.ndarray]:
    """Give an ``.npy`` array (key ``""``) the name of the network's only input."""
    if "" not in arrays:
        return arrays
    names = list(net.inputs)
    if len(names) != 1:
        raise InputError(f"input file '{path}' is a single .npy array but the network "
                         f"has {len(names)} inputs", obj=str(path), rule="one array per input",
                         hint="write an .npz: numpy.savez(path, **{name: array})")
    return {names[0]: arrays[""]}


def input_steps(arrays: dict[str, np.ndarray], steps: int | None) -> int:
    """``steps``, else the shortest input's T."""
    if steps is not None:
        return steps
    return min((int(v.shape[0]) for v in arrays.values() if v.ndim), default=0)


def check_input_arrays(arrays: dict[str, np.ndarray], net: Any, path: Path
                       ) -> dict[str, np.ndarray]:
    """``--check-input``'s arrays (:func:`load_inputs`) checked against ``net``: one per
    input, ``(T, n)`` or ``(T, B, n)``, equal lengths, ``1 <= T <=`` :data:`MAX_STEPS`.

    Raises:
        InputError: a fault of the arrays, the message starting with the option and file.
        UsageError: more than :data:`MAX_STEPS` steps.
    """
    from .api import check_inputs_of

    where = f"--check-input '{path}'"
    try:
        given = check_inputs_of(net, name_inputs(arrays, net, path))
    except InputError as exc:
        raise InputError(exc.message if exc.message.startswith(where) else
                         f"{where}: {exc.message}", obj=exc.obj, rule=exc.rule,
                         hint=exc.hint) from None
    check_int("check-input steps", input_steps(given, None), 1, MAX_STEPS)
    return given


_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    r"""``text`` safe to print on a terminal through rich: control characters (escape codes)
    shown as ``\\xNN``, rich markup escaped."""
    from rich.markup import escape

    s = _CTRL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return escape(s)
