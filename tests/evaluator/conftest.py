"""Fixtures of the evaluator tests: ``tiny_data_dir`` (small synthetic datasets of all three tasks,
prepared once per session; see ``scoring_helpers``)."""

from tests.evaluator.scoring_helpers import tiny_data_dir  # noqa: F401  (a fixture)
