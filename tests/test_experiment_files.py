"""Experiment files stay short configs: a command, a result, values; the reasoning is linked.

Read as text and parsed with ast (nothing is imported, no jax): every experiments/<name>.py is
at most MAX_LINES lines, its docstring gives a `python launch.py` command, and every
docs/experiments/*.md it names exists, as does every relative link of those pages.
"""

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS_DIR = os.path.join(REPO, "experiments")
DOCS_DIR = os.path.join(REPO, "docs", "experiments")
MAX_LINES = 60
DOC_PATH = re.compile(r"docs/experiments/[\w.-]+\.md")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")

FILES = sorted(f for f in os.listdir(EXPERIMENTS_DIR)
               if f.endswith(".py") and f != "__init__.py")
PAGES = sorted(f for f in os.listdir(DOCS_DIR) if f.endswith(".md"))


def _read(path: str) -> str:
  with open(path, encoding="utf-8") as f:
    return f.read()


def test_there_are_experiment_files():
  assert len(FILES) >= 10, FILES


@pytest.mark.parametrize("name", FILES)
def test_experiment_file_is_short(name):
  n = len(_read(os.path.join(EXPERIMENTS_DIR, name)).splitlines())
  assert n <= MAX_LINES, (f"experiments/{name} has {n} lines (at most {MAX_LINES}): move the "
                          f"reasoning and measurements to docs/experiments/{name[:-3]}.md")


@pytest.mark.parametrize("name", FILES)
def test_docstring_gives_the_command_and_a_description(name):
  tree = ast.parse(_read(os.path.join(EXPERIMENTS_DIR, name)))
  doc = ast.get_docstring(tree)
  assert doc, f"experiments/{name} has no module docstring"
  assert doc.splitlines()[0].strip(), "the first line is the --list description"
  assert f"python launch.py --experiment {name[:-3]}" in doc
  assert any(isinstance(node, ast.FunctionDef) and node.name == "get_config"
             for node in tree.body)


@pytest.mark.parametrize("name", FILES)
def test_linked_docs_exist(name):
  for path in DOC_PATH.findall(_read(os.path.join(EXPERIMENTS_DIR, name))):
    assert os.path.isfile(os.path.join(REPO, path)), f"experiments/{name} names missing {path}"


@pytest.mark.parametrize("page", PAGES)
def test_doc_page_is_linked_and_its_links_resolve(page):
  linked_from = [f for f in FILES
                 if f"docs/experiments/{page}" in _read(os.path.join(EXPERIMENTS_DIR, f))]
  assert linked_from, f"docs/experiments/{page} is linked from no experiment file"
  for target in MD_LINK.findall(_read(os.path.join(DOCS_DIR, page))):
    if "://" in target:
      continue
    assert os.path.exists(os.path.normpath(os.path.join(DOCS_DIR, target))), (page, target)
