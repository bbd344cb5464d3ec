"""Benchmark suites: declared pretrain × fine-tune matrices, their runner and analysis."""
