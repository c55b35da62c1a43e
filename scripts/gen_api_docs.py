"""Writes docs/api.md, the API reference, from the code (signatures and docstrings, via inspect).

    python scripts/gen_api_docs.py          # regenerate docs/api.md
    python scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is out of date (tests/CI)

A module's public names are its ``__all__``, or else the functions and classes it defines
whose names do not start with an underscore.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, "docs", "api.md")
COMMAND = "python scripts/gen_api_docs.py"

# The modules a user composes experiments from, then the ones around the train loop.
MODULES = (
    "jgan.config",
    "jgan.losses",
    "jgan.penalties",
    "jgan.latent",
    "jgan.models",
    "jgan.steps",
    "jgan.state",
    "jgan.optim",
    "jgan.augment",
    "jgan.tasks",
    "jgan.tasks.base",
    "jgan.tasks.gan",
    "jgan.train",
    "jgan.data",
    "jgan.data.selection",
    "jgan.checkpoint",
    "jgan.sharding",
    "jgan.runs",
    "jgan.imaging",
)


class _Annotation:
  """Shows a string annotation (``from __future__ import annotations``) without quotes."""

  def __init__(self, text: str):
    self.text = text

  def __repr__(self) -> str:
    return self.text


def _unquote(annotation: Any) -> Any:
  return _Annotation(annotation) if isinstance(annotation, str) else annotation


def signature(obj: Any) -> str:
  """``(a: int, *, b: float = 1.0) -> float`` with string annotations shown as written."""
  try:
    sig = inspect.signature(obj)
  except (TypeError, ValueError):
    return "(...)"
  params = [p.replace(annotation=_unquote(p.annotation)) for p in sig.parameters.values()]
  sig = sig.replace(parameters=params, return_annotation=_unquote(sig.return_annotation))
  return re.sub(r" at 0x[0-9a-fA-F]+", "", str(sig))  # object reprs: no memory addresses


def first_line(obj: Any) -> str:
  doc = inspect.getdoc(obj) or ""
  return doc.strip().splitlines()[0] if doc.strip() else "(no docstring)"


def public_names(module: Any) -> list[str]:
  if hasattr(module, "__all__"):
    return sorted(module.__all__)
  return sorted(name for name, obj in vars(module).items()
                if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                and getattr(obj, "__module__", None) == module.__name__)


def describe(name: str, obj: Any) -> str:
  if inspect.isclass(obj):
    return f"- class `{name}{signature(obj)}`: {first_line(obj)}"
  if callable(obj):
    return f"- `{name}{signature(obj)}`: {first_line(obj)}"
  if isinstance(obj, dict):
    keys = ", ".join(f"`{k}`" for k in sorted(map(str, obj)))
    return f"- `{name}`: {type(obj).__name__} of {keys}"
  if isinstance(obj, (int, float, str, tuple)):
    return f"- `{name}` = `{obj!r}`"
  return f"- `{name}`: {type(obj).__name__}"


def render() -> str:
  lines = ["# API reference", "",
           f"Generated from the code by `{COMMAND}`; do not edit by hand "
           "(`tests/test_composing.py` fails when this file is out of date).", "",
           "Each public function and class: its signature and the first line of its docstring. "
           "[composing.md](composing.md) shows how they fit together.", ""]
  for module_name in MODULES:
    module = importlib.import_module(module_name)
    lines += [f"## `{module_name}`", "", first_line(module), ""]
    for name in public_names(module):
      lines.append(describe(name, getattr(module, name)))
    lines.append("")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="exit 1 if docs/api.md differs from the code")
  args = parser.parse_args(argv)
  text = render()
  if args.check:
    current = open(OUTPUT).read() if os.path.exists(OUTPUT) else ""
    if current != text:
      print(f"docs/api.md is out of date with the code; regenerate it with: {COMMAND}",
            file=sys.stderr)
      return 1
    print("docs/api.md is up to date.")
    return 0
  with open(OUTPUT, "w") as f:
    f.write(text)
  print(f"Wrote {os.path.relpath(OUTPUT, REPO)}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
