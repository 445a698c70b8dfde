"""Layout and import rules of docs/architecture.md (one import root, layered rooms)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = ("lava", "pyNN", "sinabs", "samna", "nest", "nir", "torch", "snntorch", "norse",
          "brian2", "sanafe", "h5py")


ROOT = REPO / "nmcompiler"
#: the rooms inside the one import root; the compiler is everything else in nmcompiler/
ROOMS = ("ir", "backends", "hw_configs")


def _room_of(module: str) -> str:
    """'ir', 'backends', 'hw_configs', 'compiler' or 'other' for an absolute module name."""
    parts = module.split(".")
    if parts[0] != "nmcompiler":
        return "other"
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return "compiler"


def _files(room: str) -> list[Path]:
    if room == "compiler":
        return sorted(p for p in ROOT.rglob("*.py")
                      if p.relative_to(ROOT).parts[0] not in ROOMS)
    return sorted((ROOT / room).rglob("*.py"))


def imported_modules(room: str) -> set[tuple[str, str]]:
    """(file, imported room or top-level module) for every import statement in a room."""
    out = set()
    for path in _files(room):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "nmcompiler":
                    names = [f"nmcompiler.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                rel = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                names = [".".join(rel + ((node.module,) if node.module else ()))]
            for m in names:
                room = _room_of(m)
                out.add((path.name, m.split(".")[0] if room == "other" else room))
    return out


def test_ir_imports_only_numpy_and_the_standard_library():
    ours = {"compiler", "backends", "hw_configs"} | set(VENDOR) | {"scipy", "networkx"}
    bad = {(f, m) for f, m in imported_modules("ir") if m in ours}
    assert not bad, f"ir must import nothing of ours and no toolchain: {sorted(bad)}"


def test_nmcompiler_never_imports_a_backend_by_name():
    bad = {(f, m) for f, m in imported_modules("compiler") if m == "backends"}
    assert not bad, f"nmcompiler finds backends through entry points only: {sorted(bad)}"


def test_import_core_loads_no_vendor_toolchain():
    code = (
        "import sys, nmcompiler, nmcompiler.ir, nmcompiler.backends, nmcompiler.hw_configs\n"
        "import nmcompiler.targets, nmcompiler.backend, nmcompiler.compiled\n"
        f"bad = [m for m in {VENDOR!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"


def test_layout_exists():
    for path in ("pyproject.toml", "nmcompiler/ir", "nmcompiler", "nmcompiler/backends",
                 "nmcompiler/hw_configs", "tests",
                 "docs", "bench", "README.md", "Makefile", ".ci/run"):
        assert (REPO / path).exists(), path
    readme = (REPO / "README.md").read_text().splitlines()
    block = "\n".join(readme[:12])
    assert "make demo" in block and "make test" in block
    assert "make test" in (REPO / ".ci/run").read_text()


def test_ir_import_loads_only_the_ir():
    code = ("import sys, nmcompiler.ir\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith('nmcompiler.')"
            " and not m.startswith('nmcompiler.ir'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"importing nmcompiler.ir loaded: {out.stdout.strip()}"


#: what a backend may import of the compiler: the public artifact types (docs/architecture.md)
BACKEND_MAY_IMPORT = ("nmcompiler.backend", "nmcompiler.compiled", "nmcompiler.mapping",
                      "nmcompiler.quantization", "nmcompiler.targets", "nmcompiler.ir",
                      "nmcompiler.parallel")

#: files allowed over MAX_LINES (none: one idea per file)
LONG_FILES_ALLOWED: set[str] = set()
MAX_LINES = 800

#: files allowed to import private names of another module (none)
PRIVATE_IMPORTS_ALLOWED: set[str] = set()


def _absolute_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement of a file, made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = path.relative_to(REPO).with_suffix("").parts
                if path.name == "__init__.py":
                    parts = parts[:-1] + ("__init__",)
                base = parts[: len(parts) - node.level]
                mod = ".".join(base + ((node.module,) if node.module else ()))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
    return out


def test_backends_import_only_the_public_artifact_types():
    bad = []
    for path in _files("backends"):
        for mod, names in _absolute_imports(path):
            mods = [f"{mod}.{n}" for n in names] if mod == "nmcompiler" else [mod]
            for m in mods:
                if _room_of(m) != "compiler" or m.startswith("nmcompiler.backends"):
                    continue
                if not any(m == ok or m.startswith(ok + ".") for ok in BACKEND_MAY_IMPORT):
                    bad.append(f"{path.relative_to(REPO)}: {m}")
    assert not bad, f"backends import only {BACKEND_MAY_IMPORT}: {sorted(bad)}"


def test_no_backend_imports_another_backend():
    bad = []
    for path in _files("backends"):
        own = path.relative_to(ROOT / "backends").parts[0]
        for mod, _ in _absolute_imports(path):
            parts = mod.split(".")
            if parts[:2] == ["nmcompiler", "backends"] and len(parts) > 2 and parts[2] != own:
                bad.append(f"{path.relative_to(REPO)}: {mod}")
    assert not bad, f"a backend imports another backend: {sorted(bad)}"


def test_no_cross_module_import_of_private_names():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        for mod, names in _absolute_imports(path):
            if not mod.startswith("nmcompiler"):
                continue
            last = mod.split(".")[-1]
            private_mod = last.startswith("_") and last != "__init__"
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            if (private or private_mod) and \
                    str(path.relative_to(REPO)) not in PRIVATE_IMPORTS_ALLOWED:
                bad.append(f"{path.relative_to(REPO)}: from {mod} import {names}")
    assert not bad, f"private names imported across modules: {sorted(bad)}"


def test_no_file_over_800_lines():
    long = {str(p.relative_to(REPO)): n for p in sorted(ROOT.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    extra = sorted(set(long) - LONG_FILES_ALLOWED)
    assert not extra, f"files over {MAX_LINES} lines (one idea per file): " \
        f"{[(f, long[f]) for f in extra]}"


def _family_switches(path: Path) -> list[int]:
    """Lines that compare a target's family (``.backend``) or topology kind
    (``topology.kind``) with something: the chip-family switches."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def is_family(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and node.args:  # str(target.backend)
            return is_family(node.args[0])
        if not isinstance(node, ast.Attribute):
            return False
        if node.attr == "backend":
            return True
        return node.attr == "kind" and isinstance(node.value, ast.Attribute) and \
            node.value.attr == "topology"

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
                is_family(x) for x in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "get" and node.args and is_family(node.args[0]):
            lines.append(node.lineno)  # {"loihi": ...}.get(target.backend)
    return lines


def test_no_switch_on_chip_family_outside_the_targets_package():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("targets", "ir", "frontends"):
            continue  # the targets package is the one home of chip knowledge
        bad += [f"{rel}:{n}" for n in _family_switches(path)]
    assert not bad, f"ask target.family / target.noc instead of comparing names: {bad}"


#: what code, tests, TOMLs and docs may not cite: documents and numbers a reader of the
#: repository does not have (the design lives in docs/architecture.md, the chip numbers in
#: docs/hw_reference.md). Spelled in pieces so that this file does not match itself.
_NO_CITE = re.compile("|".join((
    "DESIGN" + r"\.md", r"\.\./" + "shared", "shared/" + "hw_reference", "TOOLCHAINS" + r"\.md",
    "seed " + r"00\d", r"\bissue " + r"#?\d", "tracker " + r"#?\d", "reviews/" + "architecture",
)))
_TEXT_SUFFIXES = {".py", ".toml", ".md", ".txt", ".cfg", ".json", ".ini"}


def test_code_tests_and_docs_cite_only_docs_pages():
    files = [p for d in ("nmcompiler", "tests", "docs") for p in sorted((REPO / d).rglob("*"))
             if p.is_file() and p.suffix in _TEXT_SUFFIXES and "data" not in p.parts]
    files += [REPO / n for n in ("README.md", "Makefile", "pyproject.toml")]
    files += sorted(REPO.glob("constraints*.txt"))
    bad = []
    for path in files:
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _NO_CITE.search(line):
                bad.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:80]}")
    assert not bad, f"cite docs/<page>.md instead: {bad}"
