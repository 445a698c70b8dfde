"""Output directories (docs/cli.md): the -o rule, names from files, atomic writes, leftovers
of killed runs, and permissions that follow the umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.outputs import MARKER, clean_stale, safe_name, write_dir_atomically

REPO = Path(__file__).resolve().parents[2]


def nmc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def small_network(path: Path, n: int = 20) -> Path:
    rng = np.random.default_rng(0)
    net = Network("small")
    net.input("in", 8)
    net.population("h", n, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 4, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(n, 8))), delay=1)
    net.connect("h", "o", Dense(weight=rng.normal(size=(4, n)) * 0.2), delay=1)
    net.output("o")
    return ir.save(net, path)


def snapshot(root: Path) -> dict[str, bytes | None]:
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else None
    return out


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    small_network(tmp_path / "small.nmir")
    return tmp_path


# ---------------------------------------------------------------- item: -o rule
def test_o_refuses_a_users_file_even_with_force(work):
    (work / "notes.txt").write_text("mine")
    for extra in ((), ("--force",)):
        out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "notes.txt", *extra, cwd=work)
        assert out.returncode == 2, out.stderr
        assert "notes.txt" in out.stderr and "is a file" in out.stderr
    assert (work / "notes.txt").read_text() == "mine"


def test_o_refuses_the_model_itself_and_its_parent(work):
    before = (work / "small.nmir").read_bytes()
    out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "small.nmir", "--force", cwd=work)
    assert out.returncode == 2 and "small.nmir" in out.stderr
    sub = work / "models"
    sub.mkdir()
    shutil.copy(work / "small.nmir", sub / "m.nmir")
    (sub / MARKER).write_text("looks like ours")
    out = nmc("compile", "models/m.nmir", "-t", "loihi2", "-o", "models", "--force", cwd=work)
    assert out.returncode == 2 and "contains it" in out.stderr
    assert (sub / "m.nmir").read_bytes() == before


def test_o_refuses_a_foreign_non_empty_directory_unless_force(work):
    foreign = work / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "photos", cwd=work)
    assert out.returncode == 2 and "photos" in out.stderr and "--force" in out.stderr
    assert (foreign / "cat.jpg").exists()
    out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "photos", "--force", cwd=work)
    assert out.returncode == 0, out.stderr
    assert (foreign / "compiled.nmc").exists() and not (foreign / "cat.jpg").exists()


def test_o_refuses_a_device_and_the_working_directory(work):
    out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "/dev/null", "--force", cwd=work)
    assert out.returncode == 2 and "/dev/null" in out.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    for o in (".", ".."):
        out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", o, "--force", cwd=work)
        assert out.returncode == 2 and "working directory" in out.stderr


def test_o_replaces_its_own_build_and_an_empty_directory(work):
    (work / "empty").mkdir()
    assert nmc("compile", "small.nmir", "-t", "loihi2", "-o", "empty", cwd=work).returncode == 0
    assert nmc("compile", "small.nmir", "-t", "loihi", "-o", "empty", cwd=work).returncode == 0
    assert (work / "empty" / MARKER).is_file()


def test_run_never_writes_into_or_replaces_the_build_it_reads(work):
    assert nmc("compile", "small.nmir", "-t", "loihi2", "-o", "b", cwd=work).returncode == 0
    before = snapshot(work / "b")
    for o in ("b", "b/sub", "."):
        out = nmc("run", "b", "--steps", "5", "-o", o, "--force", cwd=work)
        assert out.returncode == 2, (o, out.stderr)
    assert snapshot(work / "b") == before
    # the documented default, BUILD/run, is allowed
    assert nmc("run", "b", "--steps", "5", cwd=work).returncode == 0
    assert (work / "b" / "run" / "run_report.json").is_file()


def test_unwritable_output_is_refused_before_the_compile(work):
    if os.geteuid() == 0:
        pytest.skip("root writes everywhere")
    locked = work / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "locked/b", cwd=work)
        assert out.returncode == 2 and "cannot be written" in out.stderr
    finally:
        locked.chmod(0o700)


def test_output_under_a_file_is_refused_before_the_compile(work):
    (work / "f").write_text("x")
    out = nmc("compile", "small.nmir", "-t", "loihi2", "-o", "f/b", cwd=work)
    assert out.returncode == 2 and "not a directory" in out.stderr.lower()
    assert "internal error" not in out.stderr


# ---------------------------------------------------------------- item: names from files
def test_a_chip_name_cannot_move_the_output_outside_the_working_directory(work):
    text = (REPO / "nmcompiler" / "hw_configs" / "loihi2.toml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("name =")]
    (work / "chip.toml").write_text('name = "x/../../../escaped"\n' + "\n".join(lines) + "\n")
    cwd = work / "deep" / "er"
    cwd.mkdir(parents=True)
    shutil.copy(work / "small.nmir", cwd / "small.nmir")
    shutil.copy(work / "chip.toml", cwd / "chip.toml")
    outside = snapshot(work)
    out = nmc("run", "small.nmir", "-t", "chip.toml", "--steps", "5", cwd=cwd)
    assert out.returncode == 0, out.stderr
    after = snapshot(work)
    new = [k for k in after if k not in outside]
    assert new and all(k.startswith("deep/er/") for k in new), new
    assert not (work.parent / "escaped").exists()


def test_safe_name_is_one_harmless_component():
    for raw in ("x/../../../escaped", "..", ".", "", "a\\b", "\x1b[31mred", "/etc/passwd"):
        s = safe_name(raw)
        assert s and "/" not in s and "\\" not in s and not s.startswith(".")
        assert Path(s).name == s
    assert safe_name("loihi2") == "loihi2"


# ---------------------------------------------------------------- item: temp and partial output
def test_a_failed_fill_leaves_nothing_and_keeps_the_previous_directory(tmp_path):
    def good(d: Path) -> None:
        (d / "a").write_text("1")

    def bad(d: Path) -> None:
        (d / "a").write_text("2")
        raise RuntimeError("boom")

    write_dir_atomically(tmp_path / "out", good)
    with pytest.raises(RuntimeError):
        write_dir_atomically(tmp_path / "out", bad)
    assert (tmp_path / "out" / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        write_dir_atomically(tmp_path / "new", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_next_run_cleans_temp_leftovers_of_a_killed_run(tmp_path):
    pid = _dead_pid()
    stale = tmp_path / f".out.tmp-{pid}-abc123"
    stale.mkdir()
    (stale / "big").write_bytes(b"0" * 1000)
    old = tmp_path / f".out.old-{pid}-def456"
    (old / "x").mkdir(parents=True)
    (old / "x" / "a").write_text("previous")
    mine = tmp_path / f".out.tmp-{os.getpid()}-live"  # a live run's: kept
    mine.mkdir()
    removed = clean_stale(tmp_path / "out")
    assert sorted(p.name for p in removed) == sorted([stale.name, old.name])
    # killed between the two renames: the previous complete directory is put back
    assert (tmp_path / "out" / "a").read_text() == "previous"
    assert mine.exists()


def test_deploy_failure_leaves_no_output_directory(work):
    assert nmc("compile", "small.nmir", "-t", "loihi2", "-o", "b", cwd=work).returncode == 0
    np.savez(work / "bad.npz", nope=np.zeros((5, 8)))
    before = snapshot(work)
    out = nmc("deploy", "b", "--backend", "lava", "--input", "bad.npz", "-o", "d", cwd=work)
    assert out.returncode == 1, out.stderr
    assert snapshot(work) == before


# ---------------------------------------------------------------- item: permissions
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_artifacts_follow_the_umask(work, umask):
    code = (f"import os, sys; os.umask({umask}); sys.argv = ['nmc', 'compile', 'small.nmir', "
            "'-t', 'loihi2', '-o', 'b']; from nmcompiler.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    b = work / "b"
    assert stat.S_IMODE(b.stat().st_mode) == 0o777 & ~umask
    for f in b.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name


# ---------------------------------------------------------------- item: README's commands
@pytest.mark.lava
def test_readme_commands_verbatim_with_relative_paths(tmp_path):
    """The README's lines from a project root: ``.venv/bin/nmc`` and relative paths (the
    Lava runner starts in a temporary directory, so every path it gets must be absolute)."""
    pytest.importorskip("nir")
    from nmcompiler.backends.loihi.harness import lava_available
    from nmcompiler.exporters.nir import write_nir

    reason = lava_available()
    if reason is not None:
        pytest.skip(reason)
    rng = np.random.default_rng(0)
    net = Network("readme")
    net.input("in", 8)
    net.population("h", 6, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(6, 8))), delay=1)
    net.output("h")
    write_nir(net, tmp_path / "net.nir")
    np.savez(tmp_path / "spikes.npz", **{"in": (rng.random((30, 8)) < 0.3).astype(np.uint8)})
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "nmc").symlink_to(Path(sys.executable).parent / "nmc")
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    for line in (".venv/bin/nmc compile net.nir -t loihi2 -o build/",
                 ".venv/bin/nmc run build/ --input spikes.npz",
                 ".venv/bin/nmc deploy build/ --backend lava"):
        r = subprocess.run(line.split(), cwd=tmp_path, capture_output=True, text=True, env=env)
        assert r.returncode == 0, (line, r.stderr)
    assert (tmp_path / "build" / "deploy-lava" / "run_lava.npz").is_file()
    assert (tmp_path / "build" / "run" / "run_report.json").is_file()


def test_a_nested_temp_of_a_killed_run_is_cleaned_too(tmp_path):
    """A backend that writes atomically into the deploy's temporary directory makes a
    temporary of a temporary; the next run removes it as well."""
    pid = _dead_pid()
    nested = tmp_path / f"..dep.tmp-{pid}-abc.tmp-{pid}-def"
    nested.mkdir()
    other = tmp_path / f"..other.tmp-{pid}-abc.tmp-{pid}-def"
    other.mkdir()
    clean_stale(tmp_path / "dep")
    assert not nested.exists() and other.exists()
