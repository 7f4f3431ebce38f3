"""Benchmark adapters: LiveCodeBench and Codeforces loaders, prompts, metrics."""
