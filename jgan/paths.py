"""Where jgan keeps its files on disk: :func:`data_root`.

A leaf module (it imports nothing from jgan), so any module can use it without importing a
package such as :mod:`jgan.data`; :mod:`jgan.data.offline` re-exports :func:`data_root`.
"""

from __future__ import annotations

import os


def data_root() -> str:
  """``$JGAN_DATA_DIR``, default ``~/.cache/jgan``, with ``~`` expanded."""
  return os.path.expanduser(os.environ.get("JGAN_DATA_DIR") or "~/.cache/jgan")
