"""Evaluation: metrics over arrays (no model), baselines, evaluate(model_dir, items, pairs) -> report, and the
report's files (JSON, markdown, plots)."""
