"""Benchmarks: each module measures one thing side by side and saves JSON under bench/results/."""
