"""jgan's imports run one way: no module imports, directly or through others, one that imports
it back.

Every import statement counts, those inside functions too (a lazy import that closes a cycle is
the cycle, still there). ``from jgan.data import x`` and ``import jgan.data.offline`` count as
importing the package ``jgan.data`` (they run its ``__init__.py``), except from inside that
package: a module's own ancestor packages are always initialised before it.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jgan")


def _module_files(root: str) -> dict[str, str]:
  """{dotted module name: path} of every .py file under ``root`` (packages by their name)."""
  base = os.path.dirname(root)
  out = {}
  for directory, _, files in os.walk(root):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        dotted = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
        out[dotted.removesuffix(".__init__")] = path
  return out


def import_graph(root: str = ROOT) -> dict[str, set[str]]:
  """{module: the jgan modules and packages it imports}, read from the source with ast."""
  modules = _module_files(root)

  def known(name: str) -> str | None:  # the module, or its nearest package that exists
    while name and name not in modules:
      name = name.rpartition(".")[0]
    return name or None

  graph = {}
  for module, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets.update(alias.name for alias in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          parent = package
          for _ in range(node.level - 1):
            parent = parent.rpartition(".")[0]
          base = f"{parent}.{base}" if base else parent
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names
                       if f"{base}.{alias.name}" in modules)
    own_ancestors = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    deps = set()
    for target in targets:
      found = known(target)
      if found is None:
        continue
      parts = found.split(".")
      deps.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    graph[module] = {d for d in deps if d in modules and d != module and d not in own_ancestors}
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan), sorted."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v: str) -> None:
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return sorted(out)


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
  """A concrete loop a -> b -> ... -> a inside ``component`` (for the error message)."""
  members = set(component)
  start = component[0]
  paths = {start: [start]}
  queue = [start]
  while queue:
    v = queue.pop(0)
    for w in sorted(graph[v] & members):
      if w == start:
        return paths[v] + [start]
      if w not in paths:
        paths[w] = paths[v] + [w]
        queue.append(w)
  return component


def test_jgan_has_no_import_cycle():
  graph = import_graph()
  found = cycles(graph)
  assert not found, "Import cycles in jgan:\n" + "\n".join(
      f"  {len(c)} modules: {' -> '.join(_one_cycle(graph, c))}" for c in found)


def test_the_layers_run_one_way():
  """The layer order: the CLIs (and the benchmark tools) -> runs -> train -> tasks -> the rest;
  the experiment registry (jgan.catalog) is read by the top layers only."""
  graph = import_graph()
  top = {"jgan.evaluate", "jgan.sample", "jgan.translate", "jgan.demo"}
  top |= {m for m in graph if m.startswith("jgan.bench")}
  layers = [top, {"jgan.runs"}, {"jgan.train"}, {m for m in graph if m.startswith("jgan.tasks")}]
  for i, upper in enumerate(layers):
    above = set().union(*layers[:i + 1])
    for module in graph:
      if module in above:
        continue
      bad = graph[module] & upper
      assert not bad, f"{module} (below) imports {sorted(bad)} (above it)"
  readers = {m for m in graph if "jgan.catalog" in graph[m]}
  assert readers <= top | {"jgan.runs"}, sorted(readers - top - {"jgan.runs"})
  below_config = graph["jgan.config"]
  assert not {m for m in below_config if m.startswith(("jgan.tasks", "jgan.train"))}


@pytest.mark.parametrize("source,expected", [
    ("import jgan.b\n", [["jgan.a", "jgan.b"]]),
    ("def f():\n  from jgan import b\n", [["jgan.a", "jgan.b"]]),  # function-local counts
    ("x = 1\n", []),
])
def test_the_checker_finds_a_cycle(tmp_path, source, expected):
  pkg = tmp_path / "jgan"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  (pkg / "a.py").write_text(source)
  (pkg / "b.py").write_text("from jgan.a import thing\n")
  assert cycles(import_graph(str(pkg))) == expected


def test_a_package_import_counts_as_the_package(tmp_path):
  """``from jgan.p import m`` runs jgan/p/__init__.py, which may import back."""
  pkg = tmp_path / "jgan"
  (pkg / "p").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "p" / "__init__.py").write_text("def f():\n  from jgan import c\n")
  (pkg / "p" / "m.py").write_text("from jgan.p import n\n")  # its own package: not counted
  (pkg / "p" / "n.py").write_text("")
  (pkg / "c.py").write_text("from jgan.p.n import x\n")
  assert cycles(import_graph(str(pkg))) == [["jgan.c", "jgan.p"]]
