"""Benchmark helpers; torch_gan needs the optional `bench` extra (torch)."""
