"""Benchmark helpers: timing, workloads, the train loop's overhead, jgan's step profile.

Torch-free; the PyTorch references the benchmarks compare against live in benchmarks/torch_ref/.
"""
