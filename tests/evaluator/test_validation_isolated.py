"""The validation gate in a locked-down child: same verdicts as in-process, and the caller survives
a child that runs out of time. Each test starts real child processes (~0.5 s each)."""

from __future__ import annotations

import pytest

from evaluator.validation import validate
from evaluator.validation.isolated import validate_isolated, validation_limits
from tests.evaluator import model_zoo as zoo


@pytest.mark.parametrize("name", ["mnist_qgemm_int8", "tinygpt_dynamic_context"])
def test_a_good_model_gets_the_same_report_and_bytes_as_in_process(name):
    data = zoo.GOOD_MODELS[name]()
    task = zoo.GOOD_MODEL_TASKS[name]
    isolated, direct = validate_isolated(data, task), validate(data, task)
    assert isolated.ok and direct.ok
    assert isolated.to_dict() == direct.to_dict()
    assert isolated.model_bytes == direct.model_bytes


@pytest.mark.parametrize("name", ["external_data_in_subgraph", "giant_expand", "garbage_bytes"])
def test_a_bad_model_gets_the_same_problems_as_in_process(name):
    data = zoo.BAD_MODELS[name]()
    isolated = validate_isolated(data, "mnist")
    assert not isolated.ok and isolated.model_bytes is None
    assert isolated.to_dict() == validate(data, "mnist").to_dict()


def test_a_child_that_runs_out_of_time_is_killed_and_the_model_refused():
    report = validate_isolated(zoo.mnist_cnn(), "mnist",
                               limits=validation_limits(timeout_s=0.05))
    assert [p.rule for p in report.problems] == ["crash"]
    assert "longer than 0.05 seconds" in report.problems[0].message


def test_the_size_cap_applies_to_isolated_validation(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(zoo.mnist_cnn())
    report = validate_isolated(path, "mnist", max_bytes=100)
    assert [p.rule for p in report.problems] == ["size"]
