"""PyTorch mirrors of jgan's train steps, for benchmarks/run.py and tests/test_bench_torch_*.py.

Needs the optional ``bench`` extra (torch). jgan itself never imports torch: these modules live
here, outside the installed package, and tests/test_no_torch.py checks it.
"""
