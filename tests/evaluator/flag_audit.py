"""A pytest plugin that records the train-gap verdict of every model the tests score in-process:

    ARENA_FLAG_AUDIT=/tmp/audit.jsonl pytest -p tests.evaluator.flag_audit tests/...

Each ``evaluator.train_gap.summarize`` call appends one JSON line (the test, whether the set was
public, flagged or not, the rule and the figures), so the flag's false-positive rate over the
models the suite trains can be read off (docs/evaluator.md, "The train gap"). Scorings in other
processes (Celery workers, command-line subprocesses) are not seen.
"""

from __future__ import annotations

import json
import os

import pytest

from evaluator import train_gap

_current = {"test": None}


def pytest_configure(config) -> None:
    path = os.environ.get("ARENA_FLAG_AUDIT")
    if not path:
        return
    original = train_gap.summarize

    def recorded(train, hidden, kind, public_set):
        result = original(train, hidden, kind, public_set)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": _current["test"], "kind": kind,
                                     "public_set": public_set, **result}) + "\n")
        return result

    train_gap.summarize = recorded


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _current["test"] = item.nodeid
    yield
