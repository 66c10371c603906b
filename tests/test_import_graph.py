"""The package's architecture, checked: imports point one way and never in a cycle.

Every import in every module counts, also those inside functions (heavy imports live there).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT

# What each layer may import from the project (besides itself). Lower layers know nothing of
# the ones above (docs/ARCHITECTURE.md draws the map):
#   jobs -> job (the frame) -> embedding, index, training, evaluation, serving -> registry,
#   inputs -> spark, files, inference -> model -> settings -> the shared bottom (errors,
#   atomic files, days, logging).
BOTTOM = {"notellm2_udf.errors", "notellm2_udf.atomic_files", "notellm2_udf.days",
          "notellm2_udf.log_setup"}
# Settings declare their flags where they are defined (settings/ imports only the bottom).
SETTINGS = "notellm2_udf.settings"
ALLOWED = {
    **{module: set() for module in BOTTOM},
    SETTINGS: BOTTOM,
    "notellm2_udf.model": BOTTOM,
    "notellm2_udf.inference": BOTTOM | {SETTINGS, "notellm2_udf.model"},
    "notellm2_udf.files": BOTTOM,
    "notellm2_udf.spark": BOTTOM | {"schemas"},
    # The job frame: the one main, exit codes, the summary.
    "notellm2_udf.job": BOTTOM | {SETTINGS, "notellm2_udf.spark"},
    "notellm2_udf.registry": BOTTOM | {"notellm2_udf.files", "notellm2_udf.model"},
    "notellm2_udf.inputs": BOTTOM | {"notellm2_udf.spark", "schemas"},
    "notellm2_udf.serving": BOTTOM | {"notellm2_udf.spark", "schemas"},
    "notellm2_udf.embedding": BOTTOM | {SETTINGS, "notellm2_udf.files",
                                        "notellm2_udf.inference", "notellm2_udf.inputs",
                                        "notellm2_udf.model", "notellm2_udf.registry",
                                        "notellm2_udf.spark", "schemas"},
    "notellm2_udf.index": BOTTOM | {SETTINGS, "notellm2_udf.files", "notellm2_udf.spark",
                                    "schemas"},
    # Training's Spark side (pair rows) keeps DataFrames the way the other jobs do.
    "notellm2_udf.training": BOTTOM | {SETTINGS, "notellm2_udf.model", "notellm2_udf.spark"},
    "notellm2_udf.evaluation": BOTTOM | {SETTINGS},
    "notellm2_udf.report": BOTTOM | {"notellm2_udf.model"},
    "notellm2_udf.sample": BOTTOM | {"notellm2_udf.spark", "schemas"},
    "notellm2_udf.services": set(),
    "notellm2_udf.cli": BOTTOM | {"notellm2_udf.spark", "notellm2_udf.model",
                                  "notellm2_udf.registry", "notellm2_udf.report",
                                  "notellm2_udf.sample", "notellm2_udf.services"},
    "schemas": set(),
}
PACKAGES = ("notellm2_udf", "schemas", "jobs")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Modules of this project that `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in PACKAGES}
    return found


def sources() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            graph[module_name(path)] = project_imports(path)
    return graph


def layer_of(module: str) -> str | None:
    matches = [layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def test_every_library_module_belongs_to_a_layer():
    orphans = [m for m in sources() if m.startswith("notellm2_udf.") and layer_of(m) is None]
    assert orphans == []


@pytest.mark.parametrize("module", sorted(m for m in sources() if layer_of(m)))
def test_library_imports_point_down(module):
    layer = layer_of(module)
    allowed = ALLOWED[layer] | {layer}
    wrong = sorted(name for name in sources()[module]
                   if not any(name == ok or name.startswith(ok + ".") for ok in allowed)
                   and name != "notellm2_udf")
    assert wrong == [], f"{module} ({layer}) may not import {wrong}"


def test_jobs_never_import_each_other():
    offending = {module: sorted(name for name in imports if name.startswith("jobs"))
                 for module, imports in sources().items() if module.startswith("jobs")}
    assert {module: names for module, names in offending.items() if names} == {}


def test_the_module_graph_has_no_cycle():
    graph = sources()
    modules = set(graph)

    def targets(module: str) -> set[str]:
        # `from a.b import c` names a.b.c, which is a module only sometimes.
        return {name if name in modules else name.rpartition(".")[0] for name in graph[module]
                } & modules - {module}

    state: dict[str, str] = {}
    cycle: list[str] = []

    def visit(module: str, path: list[str]) -> bool:
        state[module] = "open"
        for target in sorted(targets(module)):
            if state.get(target) == "open":
                cycle.extend(path[path.index(target):] + [module, target]
                             if target in path else [module, target])
                return True
            if target not in state and visit(target, path + [module]):
                return True
        state[module] = "done"
        return False

    for module in sorted(modules):
        if module not in state and visit(module, []):
            break
    assert cycle == []
