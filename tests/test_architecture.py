"""docs/architecture.md, enforced: the layers, the host boundary, and the hub's independence.

Read from the source (the AST of every module), not from running it, so a rule cannot be
dodged by an import that only runs sometimes: an import inside a function counts, one under
``if TYPE_CHECKING:`` does not (it never runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
CLI = SRC / "worldland_cli"
HUB = REPO / "hub_stub"

# Lowest first; a module may import its own layer and the layers below, never above.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "worldland_cli", "worldland_cli.errors", "worldland_cli.times", "worldland_cli.urls",
            "worldland_cli.deadline", "worldland_cli.host", "worldland_cli.templating",
            "worldland_cli.guides",
            "worldland_cli.output", "worldland_cli.config",
        ),
    ),
    ("clients and shared vocabularies", (
        "worldland_cli.hubclient", "worldland_cli.join.actions", "worldland_cli.join.units",
        "worldland_cli.auth.origin",
    )),
    ("rooms", (
        "worldland_cli.auth", "worldland_cli.requirements", "worldland_cli.transfer",
        "worldland_cli.daemon",
        # join's action kinds that call the hub or kubeadm use auth and the hub client; the
        # resume unit is planned by the driver's requirement before its reboot
        "worldland_cli.join.hubcall", "worldland_cli.join.register",
        "worldland_cli.join.wireguard", "worldland_cli.join.kubeadm", "worldland_cli.join.kinds",
        "worldland_cli.join.resume",
    )),
    ("rooms that drive rooms", ("worldland_cli.diag", "worldland_cli.join")),
    ("commands", ("worldland_cli.commands",)),
    ("entry point", ("worldland_cli.main",)),
)  # fmt: skip

# The only modules that may change the file system (host.py for the host, localfs.py for
# the renter's own data a transfer reads and writes).
FILE_WRITERS = {"worldland_cli.host", "worldland_cli.transfer.localfs"}
OS_WRITES = {
    "open", "fdopen", "write", "pwrite", "replace", "rename", "renames", "unlink", "remove",
    "mkdir", "makedirs", "rmdir", "removedirs", "chmod", "chown", "lchown", "symlink", "link",
    "utime", "truncate", "ftruncate", "umask", "mkfifo", "mknod",
}  # fmt: skip
OS_PROCESSES = {"system", "popen", "fork", "forkpty", "kill", "killpg"} | {
    f"{verb}{suffix}"
    for verb in ("exec", "spawn")
    for suffix in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")
}
PATH_WRITES = {"write_text", "write_bytes", "mkdir", "rmdir", "unlink", "symlink_to", "touch",
               "hardlink_to", "chmod"}  # fmt: skip
# What the hub may take from the CLI's package: the one definition of a hub URL both ends of
# a SIWE login compare.
HUB_MAY_IMPORT = {"worldland_cli.auth.origin"}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    def where(self, node: ast.AST) -> str:
        return f"{self.path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"


def modules(top: Path) -> Iterator[Module]:
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(top.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield Module(".".join(parts), path, ast.parse(path.read_text()))


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what sits under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",):
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def imports(module: Module) -> Iterator[tuple[str, ast.AST]]:
    """Absolute module names this module imports at run time."""
    for node in runtime_nodes(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            if all(known(m) for m in submodules):  # `from worldland_cli.join import kinds`
                yield from ((m, node) for m in submodules)
            else:
                yield node.module, node


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = name == prefix or name.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def known(name: str) -> bool:
    """Whether ``name`` is one of our modules (not a function imported from one)."""
    relative = Path(*name.split("."))
    return (SRC / relative).with_suffix(".py").exists() or (SRC / relative / "__init__.py").exists()


def test_every_module_has_a_layer() -> None:
    missing = [m.name for m in modules(CLI) if layer_of(m.name) is None]
    assert missing == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = []
    for module in modules(CLI):
        own = layer_of(module.name)
        assert own is not None
        for name, node in imports(module):
            other = layer_of(name) if name.startswith("worldland_cli") and known(name) else None
            if other is not None and other > own:
                wrong.append(
                    f"{module.where(node)}: {module.name} ({LAYERS[own][0]}) imports "
                    f"{name} ({LAYERS[other][0]})"
                )
    assert wrong == []


def test_there_are_no_import_cycles() -> None:
    graph = {
        m.name: {n for n, _ in imports(m) if n.startswith("worldland_cli") and known(n)}
        for m in modules(CLI)
    }
    for name in graph:  # a package's __init__ importing its own modules is not a cycle
        graph[name].discard(name)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_only_host_runs_processes_or_loads_nvml() -> None:
    found = []
    for module in modules(CLI):
        if module.name == "worldland_cli.host":
            continue
        for name, node in imports(module):
            if name.split(".")[0] in ("subprocess", "pynvml", "pty", "multiprocessing"):
                found.append(f"{module.where(node)}: imports {name}")
        for node in runtime_nodes(module.tree):
            call = _called(node)
            if call is not None and call[0] == "os" and call[1] in OS_PROCESSES:
                found.append(f"{module.where(node)}: os.{call[1]}()")
    assert found == []


def test_only_host_and_localfs_change_files() -> None:
    found = []
    for module in modules(CLI):
        if module.name in FILE_WRITERS:
            continue
        for node in runtime_nodes(module.tree):
            call = _called(node)
            if call is None:
                continue
            owner, name = call
            if owner is None and name == "open":
                found.append(f"{module.where(node)}: open()")
            elif owner == "os" and name in OS_WRITES:
                found.append(f"{module.where(node)}: os.{name}()")
            elif owner in ("shutil", "tempfile") or (
                owner not in (None, "os") and name in PATH_WRITES and "host" not in owner
            ):
                found.append(f"{module.where(node)}: {owner}.{name}()")
    assert found == []


def _path_write(owner: str | None, name: str) -> bool:
    """``something.write_text()`` and the like, on anything but a Host."""
    return owner not in (None, "os") and name in PATH_WRITES and "host" not in str(owner)


def _called(node: ast.AST) -> tuple[str | None, str] | None:
    """(receiver, name) of a call: (None, "open") for open(), ("os", "rename") for os.rename()."""
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Name):
        return None, node.func.id
    if isinstance(node.func, ast.Attribute):
        return ast.unparse(node.func.value), node.func.attr
    return None


def test_no_domain_module_imports_a_command() -> None:
    found = []
    for module in modules(CLI):
        if _is_front(module.name):
            continue
        for name, node in imports(module):
            if _is_front(name):
                found.append(f"{module.where(node)}: {module.name} imports {name}")
    assert found == []


def test_command_modules_import_nothing_heavy_at_start() -> None:
    """Module-level imports of the CLI's entry and commands: typer and the standard library
    (and each other); everything else is imported inside the command that needs it."""
    import sys

    allowed_top = {"typer", "worldland_cli", "__future__"} | set(sys.stdlib_module_names)
    found = []
    for module in modules(CLI):
        if not _is_front(module.name):
            continue
        for node in module.tree.body:
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            for name in names:
                if name.split(".")[0] not in allowed_top or _eager_domain_import(name):
                    found.append(f"{module.where(node)}: {name} at import time")
    assert found == []


def _is_front(name: str) -> bool:
    return name.startswith("worldland_cli.commands") or name == "worldland_cli.main"


def _eager_domain_import(name: str) -> bool:
    front = ("worldland_cli.commands", "worldland_cli.output", "worldland_cli.errors")
    return name.startswith("worldland_cli.") and not name.startswith(front)


def test_the_hub_imports_from_the_cli_only_the_shared_origin() -> None:
    found = []
    for module in modules(HUB):
        for name, node in imports(module):
            if name.startswith("worldland_cli") and name not in HUB_MAY_IMPORT:
                base = name.rsplit(".", 1)[0]
                if base not in HUB_MAY_IMPORT:
                    found.append(f"{module.where(node)}: {name}")
    assert found == []


def test_the_architecture_doc_names_every_layer_and_room() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    for title, prefixes in LAYERS:
        assert title in text, title
        for prefix in prefixes:
            short = prefix.removeprefix("worldland_cli.").replace(".", "/")
            assert short in text or prefix == "worldland_cli", prefix
