"""Stopping at a step boundary on SIGTERM (preemption) or SIGINT (Ctrl-C), so the loop can save.

    with StopSignals() as stop:
      for step in ...:
        state = step_fn(state, batch)
        if stop.requested(step + 1):
          save(step + 1); break

One process: SIGTERM and the first SIGINT only set a flag that the loop reads between steps (a
Python attribute: no device sync); a second SIGINT interrupts at once (KeyboardInterrupt), for a
user who does not want to wait for the save. Several processes (``jax.distributed``): every
process must stop at the same step, so jgan asks JAX's preemption service, which catches
SIGTERM on any process and makes all agree on the step to save at
(``multihost_utils.reached_preemption_sync_point``); SIGINT keeps its default there.
"""

from __future__ import annotations

import signal
import threading
import types
from typing import Any

import jax

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(Exception):
  """The run stopped early on a signal, after saving a checkpoint at ``step``."""

  def __init__(self, message: str, *, step: int, signal_name: str, signum: int):
    super().__init__(message)
    self.step, self.signal_name, self.signum = step, signal_name, signum


class StopSignals:
  """Context manager: catches SIGTERM/SIGINT while the loop runs (see the module docstring).

  Handlers can only be installed from the main thread; elsewhere (a run started from a worker
  thread) nothing is installed and ``requested`` stays False unless :meth:`request` is called.
  """

  def __init__(self):
    self.signum: int | None = None
    self._previous: dict[int, Any] = {}
    self._multiprocess = False

  @property
  def signal_name(self) -> str:
    return signal.Signals(self.signum).name if self.signum else ""

  def request(self, signum: int = signal.SIGTERM) -> None:
    """Asks the loop to stop at the next step boundary (what the handlers do)."""
    self.signum = signum

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    if signum == signal.SIGINT and self.signum == signal.SIGINT:
      raise KeyboardInterrupt  # the second Ctrl-C: stop now, without the save
    self.request(signum)

  def requested(self, step: int) -> bool:
    """Whether to save and stop after ``step`` (called once per step, by every process)."""
    if self._multiprocess:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = signal.SIGTERM
    return self.signum is not None

  def install(self) -> "StopSignals":
    """Starts catching the signals (the previous handlers are kept for :meth:`uninstall`)."""
    self._multiprocess = jax.process_count() > 1
    if not self._multiprocess and threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def uninstall(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    self._previous.clear()

  def __enter__(self) -> "StopSignals":
    return self.install()

  def __exit__(self, *exc_info) -> None:
    self.uninstall()
