"""jgan's benchmarks: scripts (``python -m benchmarks.run``) and the PyTorch references they use.

A package so that tests import the references as ``benchmarks.torch_ref``; it is not part of
the installed ``jgan`` distribution.
"""
