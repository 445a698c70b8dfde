"""Output directories: what ``-o`` may replace, and how a directory is written (docs/cli.md).

Every directory nmcompiler writes (a build, a run, a deploy) holds the marker file
:data:`MARKER`. The ``-o`` rule:

* a path that does not exist, an empty directory, or a directory holding the marker may
  be (re)placed;
* a non-empty directory without the marker is refused (exit 2) unless ``--force``;
* a non-directory (a file, a link, a device, a FIFO) is refused always, ``--force`` or not;
* the input (model file or build directory), a directory that contains the input, and the
  working directory (or one of its parents) are refused always;
* an ``-o`` inside the build being read is refused, except the default locations
  (``BUILD/run``, ``BUILD/deploy-NAME``);
* an unwritable location is refused before any work starts.

A directory is written by :func:`write_dir_atomically`: filled in a hidden temporary
sibling (``.NAME.tmp-PID-XXXX``), then swapped into place in one ``renameat2`` exchange
where the kernel offers it (else two renames), so the path always holds the previous
complete directory or the new one. A temporary sibling left by a killed run is removed
by the next run that writes the same path (its process id is no longer alive). Files and
directories follow the umask, as with any other tool.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from nmcompiler.ir.errors import UsageError

__all__ = [
    "MARKER",
    "check_output",
    "check_readable",
    "safe_name",
    "write_dir_atomically",
    "clean_stale",
]

#: the marker file in every directory nmcompiler writes (its content names the command)
MARKER = ".nmcompiler"

_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


def safe_name(name: object, *, default: str = "unnamed") -> str:
    """A single, harmless path component made from a name read from a file.

    Anything but letters, digits and ``._+-`` becomes ``_``; leading dots are dropped (no
    ``..``, no hidden files); the result is at most 64 characters.
    """
    s = _SAFE.sub("_", str(name)).lstrip(".")[:64]
    return s or default


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def _follow_umask(path: Path, *, directory: bool) -> None:
    """Give ``path`` the mode a plain ``mkdir``/``open`` would have (mkdtemp uses 0700)."""
    mode = (0o777 if directory else 0o666) & ~_umask()
    with contextlib.suppress(OSError):
        os.chmod(path, mode)


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
    except ValueError:
        return False
    return True


def _abs(p: Path) -> Path:
    """Absolute, symlinks of existing parts resolved, the path itself not followed."""
    p = Path(os.path.abspath(p))
    return p.parent.resolve() / p.name if p.name else p.resolve()


def check_readable(path: Path, what: str = "file") -> Path:
    """Refuse (exit 2) a path that does not exist."""
    if not Path(path).exists():
        raise UsageError(f"{what} '{path}' does not exist", obj=str(path), rule="file exists",
                         hint="check the path")
    return Path(path)


def _check_existing(path: Path, refuse: Callable[[str, str], UsageError], force: bool
                    ) -> None:
    """The ``-o`` rule for a path that exists: only a directory, empty or marked (or
    ``force``)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise refuse(f"cannot be examined ({exc.strerror})", "name another directory") from None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else
                    "a file" if stat.S_ISREG(st.st_mode) else "a device or special file")
            raise refuse(f"exists and is {kind}; nmcompiler only replaces directories it "
                         "wrote", "name a new directory (--force never replaces a non-directory)")
        try:
            entries = os.listdir(path)
        except OSError as exc:
            raise refuse(f"cannot be read ({exc.strerror})", "name another directory") from None
        if entries and MARKER not in entries and not force:
            raise refuse("is a non-empty directory that nmcompiler did not write",
                         "name a new directory, or pass --force to replace it")


def check_output(
    out: Path,
    *,
    inputs: Iterable[Path] = (),
    allowed_inside: Iterable[Path] = (),
    force: bool = False,
) -> Path:
    """Check the ``-o`` rule (module docstring) before any work; return the absolute path.

    Args:
        out: the output directory the user named (or the default).
        inputs: paths the command reads (model file, build directory, input file).
        allowed_inside: default output locations inside an input (``BUILD/run``).
        force: ``--force``: replace a non-empty directory nmcompiler did not write.

    Raises:
        UsageError: the path may not be replaced, or cannot be written (exit 2).
    """
    path = _abs(Path(out))
    shown = str(out)

    def refuse(why: str, hint: str) -> UsageError:
        return UsageError(f"output '{shown}' {why}", obj=shown, rule="-o rule (docs/cli.md)",
                          hint=hint)

    if path.parent == path:
        raise refuse("is the file system root", "name a new directory")
    cwd = Path.cwd().resolve()
    if _is_within(cwd, path):
        raise refuse("is the working directory or one of its parents",
                     "name a new directory, e.g. -o build/")
    allowed = [_abs(Path(a)) for a in allowed_inside]
    for inp in inputs:
        ip = _abs(Path(inp))
        if _is_within(ip, path):
            raise refuse(f"is the input '{inp}' or a directory that contains it",
                         "name a different output directory")
        if _is_within(path, ip) and path not in allowed:
            raise refuse(f"lies inside the input '{inp}'",
                         "name an output directory outside what the command reads")
    _check_existing(path, refuse, force)
    # writability: the nearest existing ancestor must be a writable directory
    anc = path.parent
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise refuse(f"cannot be created: '{anc}' is not a directory", "name another directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise refuse(f"cannot be written: no write permission in '{anc}'",
                     "name a directory you can write to")
    return path


# ---------------------------------------------------------------------------- writing
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove temporary siblings of ``out`` left by killed runs; return what was removed.

    If ``out`` itself is missing and a stale ``.old`` sibling holds the previous complete
    directory (a run killed between the two renames), it is put back first.
    """
    out = Path(out)
    parent = out.parent
    removed: list[Path] = []
    try:
        entries = os.listdir(parent)
    except OSError:
        return removed
    for e in sorted(entries):
        m = _TMP_RE.match(e)
        if not m or _pid_alive(int(m["pid"])):
            continue
        base = m["name"]
        while base != out.name and (inner := _TMP_RE.match(base)) is not None:
            base = inner["name"]  # a temporary of a temporary (a backend writing into one)
        if base != out.name:
            continue
        p = parent / e
        if m["kind"] == "old" and not os.path.lexists(out) and (p / "x").is_dir():
            with contextlib.suppress(OSError):
                os.replace(p / "x", out)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if not offered."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    r = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if r == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def write_dir_atomically(out_dir: str | os.PathLike, fill: Callable[[Path], None], *,
                         kind: str = "output") -> Path:
    """Create ``out_dir`` by filling a temporary sibling and swapping it into place.

    If ``fill`` raises (or the process dies), ``out_dir`` keeps its previous content, or
    stays absent, and the temporary sibling is removed (by the next run after a kill).
    The caller checks the ``-o`` rule first (:func:`check_output`); this function never
    replaces a non-directory.
    """
    out = Path(out_dir)
    out = Path(os.path.abspath(out))
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    if os.path.lexists(out) and not out.is_dir() or out.is_symlink():
        raise UsageError(f"output '{out}' exists and is not a directory", obj=str(out),
                         rule="-o rule (docs/cli.md)", hint="name a new directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
    _follow_umask(tmp, directory=True)
    try:
        (tmp / MARKER).write_text(f"written by nmcompiler ({kind}); nmc may replace this "
                                  "directory\n")
        fill(tmp)
        if out.exists():
            if not _exchange(tmp, out):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-",
                                            dir=parent))
                os.replace(out, old / "x")
                os.replace(tmp, out)
                tmp = old
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
