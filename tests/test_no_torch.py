"""jgan never imports torch: only the benchmarks' references (benchmarks/torch_ref/) do."""

import importlib.util
import subprocess
import sys

from tests.conftest import REPO

# In a fresh interpreter (this one may have imported torch for other tests). Each module found by
# walk_packages is imported as soon as it is listed, before the walk imports it to look inside,
# so the first module that pulls torch in is the one named.
_CHECK = """
import importlib, pkgutil, sys
import jgan
import jgan.train, jgan.tasks, jgan.evaluation
import jgan.bench.timing, jgan.bench.workloads, jgan.bench.loop, jgan.bench.profile
assert "torch" not in sys.modules, "jgan's main modules import torch"
names = []
for info in pkgutil.walk_packages(jgan.__path__, "jgan."):
  importlib.import_module(info.name)
  assert "torch" not in sys.modules, f"importing {info.name} imports torch"
  names.append(info.name)
print(" ".join(names))
"""


def test_no_jgan_module_imports_torch():
  # torch is installed (the bench extra), so an import of it would succeed and be seen.
  assert importlib.util.find_spec("torch") is not None, "install the bench extra: torch"
  proc = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                        cwd=REPO, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  names = proc.stdout.split()
  assert {"jgan.train", "jgan.bench.profile", "jgan.models.torch_checkpoint"} <= set(names), names
  assert not [n for n in names if n.startswith("jgan.bench.torch")], names
