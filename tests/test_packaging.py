"""nmcompiler installed the way a Python user installs it (README.md, "Install").

Builds the sdist and, from it, the wheel (``python -m build``), installs the wheel (not
editable) into a fresh virtual environment with only the core dependencies, and runs the
``nmc`` command there, outside the repository: targets, version, a compile of the bundled
example for every bundled target and a run. All tests carry the ``packaging`` marker
(``pytest -m packaging``); the module takes about a minute, most of it the compiles.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from nmcompiler import ir, models

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "nmcompiler"
TARGETS = sorted(p.stem for p in (PKG / "hw_configs").glob("*.toml"))
#: vendor toolchains: none of them may come with the core install
VENDOR = ("lava", "nir", "torch", "sinabs", "pyNN", "nest", "brian2", "distributed", "samna")


def source_version() -> str:
    """The ``__version__`` literal of nmcompiler/__init__.py (the one source of the version)."""
    tree = ast.parse((PKG / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("nmcompiler/__init__.py has no __version__ literal")


def package_data_files() -> set[str]:
    """Every file under nmcompiler/ that is not Python source: what runs needs at run time."""
    return {p.relative_to(REPO).as_posix() for p in PKG.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n" \
        f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
    """sdist and wheel built from this checkout (no build isolation: the dev extra has
    ``build`` and ``setuptools``; the source tree gets no build/ folder)."""
    out = tmp_path_factory.mktemp("dist")
    log = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
              cwd=out)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "log": log.stdout + log.stderr}


@pytest.fixture(scope="module")
def venv(dist) -> dict:
    """A fresh venv holding the wheel and the core dependencies only (about 400 MB, removed
    after the module).

    pip runs from the test's own environment (``pip --python``), so the new venv needs no
    pip of its own; constraints.txt makes pip pick the versions the suite ran with, from
    its cache when it has them (then the install takes about 20 s).
    """
    root = Path(tempfile.mkdtemp(prefix="nmc-wheel-"))
    try:
        run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], cwd=root)
        python = root / "venv" / "bin" / "python"
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
             "--no-compile", "-c", str(REPO / "constraints.txt"), str(dist["wheel"])],
            cwd=root, timeout=600)
        work = root / "work"  # outside the repository: nothing of the checkout is importable
        work.mkdir()
        env = {"PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin", "MPLBACKEND": "Agg",
               "HOME": str(root), "COLUMNS": "200", "MPLCONFIGDIR": str(root / "mpl")}
        yield {"python": python, "nmc": python.parent / "nmc", "work": work, "env": env}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def nmc(venv: dict, *args: str) -> subprocess.CompletedProcess:
    return run([str(venv["nmc"]), *args], cwd=venv["work"], env=venv["env"])


def py(venv: dict, code: str) -> str:
    return run([str(venv["python"]), "-c", code], cwd=venv["work"], env=venv["env"]).stdout


def test_build_emits_no_deprecation_warning(dist):
    log = dist["log"].lower()
    assert "deprecat" not in log, [ln for ln in dist["log"].splitlines() if "eprecat" in ln]


def test_wheel_has_one_top_level_name_and_every_data_file(dist):
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = set(zf.namelist())
        info = f"nmcompiler-{source_version()}.dist-info"
        assert {n.split("/")[0] for n in names} == {"nmcompiler", info}
        assert zf.read(f"{info}/top_level.txt").decode().split() == ["nmcompiler"]
        meta = zf.read(f"{info}/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in meta
    assert f"{info}/licenses/LICENSE" in names
    for toml in TARGETS:
        assert f"nmcompiler/hw_configs/{toml}.toml" in names, toml
    missing = package_data_files() - names
    assert not missing, f"files under nmcompiler/ the wheel leaves out: {sorted(missing)}"
    source = {p.relative_to(REPO).as_posix() for p in PKG.rglob("*.py")}
    assert not source - names, f"modules missing from the wheel: {sorted(source - names)}"


def test_sdist_has_the_sources_license_and_data(dist):
    with tarfile.open(dist["sdist"]) as tf:
        top = f"nmcompiler-{source_version()}/"
        names = {n.removeprefix(top) for n in tf.getnames()}
    for need in ("pyproject.toml", "README.md", "LICENSE", *package_data_files()):
        assert need in names, f"sdist lacks {need}"


def test_installed_wheel_is_only_nmcompiler_and_core_dependencies(venv):
    out = json.loads(py(venv, (
        "import importlib.metadata as md, importlib.util as u, json, nmcompiler\n"
        "d = md.distribution('nmcompiler')\n"
        "tops = sorted({str(f).split('/')[0] for f in d.files if not str(f).startswith('..')})\n"
        f"vendor = [m for m in {VENDOR!r} if u.find_spec(m) is not None]\n"
        "print(json.dumps({'tops': tops, 'file': nmcompiler.__file__, 'vendor': vendor,\n"
        "                  'version': d.version, 'attr': nmcompiler.__version__}))\n")))
    assert out["tops"] == ["nmcompiler", f"nmcompiler-{source_version()}.dist-info"]
    assert Path(out["file"]).is_relative_to(venv["python"].parents[1]), out["file"]
    assert out["vendor"] == [], f"the core install brought toolchains: {out['vendor']}"
    assert out["version"] == out["attr"] == source_version()


def test_version_from_nmc_and_python_m(venv):
    want = f"nmc (nmcompiler) {source_version()}"
    assert nmc(venv, "--version").stdout.strip() == want
    out = run([str(venv["python"]), "-m", "nmcompiler", "--version"], cwd=venv["work"],
              env=venv["env"])
    assert out.stdout.strip() == want


def test_targets_lists_every_bundled_chip(venv):
    out = nmc(venv, "targets").stdout
    for name in TARGETS:
        assert name in out, name


def test_bundled_example_compiles_for_every_target_and_runs(venv):
    listing = run([str(venv["python"]), "-m", "nmcompiler.models"], cwd=venv["work"],
                  env=venv["env"]).stdout
    assert "tiny_if" in listing
    model = run([str(venv["python"]), "-m", "nmcompiler.models", "tiny_if"], cwd=venv["work"],
                env=venv["env"]).stdout.strip()
    assert Path(model).is_relative_to(venv["python"].parents[1]) and Path(model).is_file()
    for target in TARGETS:
        out = venv["work"] / f"build-{target}"
        nmc(venv, "compile", model, "--target", target, "-o", str(out))
        rep = json.loads((out / "report.json").read_text())
        assert rep["target"]["name"] == target and rep["summary"]["cores_used"] >= 1, target
        assert (out / "compiled.nmc").stat().st_size > 0
    built = venv["work"] / "build-loihi2"
    nmc(venv, "run", str(built), "--steps", "20", "-o", str(venv["work"] / "run"))
    rep = json.loads((venv["work"] / "run" / "run_report.json").read_text())
    assert rep, "empty run report"


def test_bundled_model_files_are_what_their_builders_write(tmp_path):
    """The shipped .nmir bytes come from the code beside them (same code, same bytes)."""
    for name in models.NAMES:
        fresh = ir.save(models.build(name), tmp_path / f"{name}.nmir")
        assert fresh.read_bytes() == models.path(name).read_bytes(), \
            f"{name}: rebuild it with ir.save(models.build({name!r}), models.path({name!r}))"
    assert sorted(p.stem for p in (PKG / "models").glob("*.nmir")) == sorted(models.NAMES)
