"""The fuzz harness (docs/reliability.md): run ``nmc`` in-process on one generated input and
check the contract of docs/cli.md.

Properties checked for every case:

* the exit code is 0, 1, 2 or 3 (never 70, never anything else);
* no Python traceback on stdout or stderr;
* the command ends within :data:`TIME_LIMIT_S` (a SIGALRM counts it as a hang);
* no file outside the output directory changes;
* a failed command (code != 0; 3 may keep a lowered artifact) leaves no output directory,
  and no command leaves a temporary directory behind.

Counts go to :data:`FIGURES` and, with ``NMC_FUZZ_FIGURES=path``, to that JSON file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from pathlib import Path

TIME_LIMIT_S = float(os.environ.get("NMC_FUZZ_TIME_LIMIT", "120"))
OK_CODES = {0, 1, 2, 3}
FIGURES = {"cases": 0, "internal_errors": 0, "bad_exit_codes": 0, "hangs": 0,
           "tracebacks": 0, "files_changed_outside": 0, "leftovers": 0}
FIGURES_BY_TEST: dict[str, int] = {}


class Hang(BaseException):
    """Raised by the alarm when a command runs past the time limit."""


def _alarm(signum, frame):  # noqa: ARG001
    raise Hang()


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``root`` (not under ``skip``) with its mode, size and small content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if skip is not None and (d == skip or skip in d.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = d / name
            if skip is not None and p == skip:
                continue
            st = p.lstat()
            data = p.read_bytes() if p.is_file() and st.st_size < 1 << 20 else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, data)
    return out


def nmc(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``nmc ARGS`` in-process in ``cwd``; return (code, stdout, stderr)."""
    from nmcompiler.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    old_argv = sys.argv
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    code = 0
    try:
        os.chdir(cwd)
        sys.argv = ["nmc", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Hang:
        code = -1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(old_cwd)
        sys.argv = old_argv
    return code, out.getvalue(), err.getvalue()


def check_command(args: list[str], cwd: Path, out_dir: str | None, test: str) -> int:
    """Run one case and assert every property; return the exit code."""
    before = snapshot(cwd, skip=cwd / out_dir if out_dir else None)
    out_existed = out_dir is not None and (cwd / out_dir).exists()
    code, stdout, stderr = nmc(args, cwd)
    FIGURES["cases"] += 1
    FIGURES_BY_TEST[test] = FIGURES_BY_TEST.get(test, 0) + 1
    problems = []
    if code == -1:
        FIGURES["hangs"] += 1
        problems.append(f"hang (> {TIME_LIMIT_S} s)")
    elif code == 70:
        FIGURES["internal_errors"] += 1
        problems.append("internal error (exit 70)")
    elif code not in OK_CODES:
        FIGURES["bad_exit_codes"] += 1
        problems.append(f"exit code {code}")
    if "Traceback" in stdout or "Traceback" in stderr:
        FIGURES["tracebacks"] += 1
        problems.append("traceback printed")
    after = snapshot(cwd, skip=cwd / out_dir if out_dir else None)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        FIGURES["files_changed_outside"] += 1
        problems.append(f"changed outside the output: {changed[:5]}")
    left = [k for k in after if ".tmp-" in k or ".old-" in k]
    if out_dir and code not in (0, 3) and not out_existed and (cwd / out_dir).exists():
        left.append(out_dir)
    if left:
        FIGURES["leftovers"] += 1
        problems.append(f"left behind: {left[:5]}")
    write_figures()
    assert not problems, (f"nmc {' '.join(args)}: {'; '.join(problems)}\n"
                          f"stdout: {stdout[-1500:]}\nstderr: {stderr[-1500:]}")
    return code


def write_figures() -> None:
    path = os.environ.get("NMC_FUZZ_FIGURES")
    if path:
        Path(path).write_text(json.dumps({**FIGURES, "by_test": FIGURES_BY_TEST}, indent=2))
