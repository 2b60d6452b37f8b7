"""Dynamic batching (length-bucketed and across threads) and ensembles exported as one graph."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.bert import EncoderClassifier, EncoderConfig
from reference_models.export import export_onnx
from reference_models.inference import DynamicBatcher, Ensemble, batched_predict

RNG = np.random.default_rng(0)


def classifier(seed: int) -> EncoderClassifier:
    rm.manual_seed(seed)
    return EncoderClassifier(EncoderConfig(vocab_size=20, num_classes=3, max_length=12,
                                           d_model=16, nhead=2, num_layers=1,
                                           dim_feedforward=32)).eval()


def test_batched_predict_matches_one_at_a_time_in_the_input_order() -> None:
    model = classifier(0)
    sequences = [RNG.integers(1, 20, n) for n in (3, 9, 5, 12, 1, 7, 4)]
    got = batched_predict(model, sequences, max_batch_size=3, max_tokens=20)
    for seq, row in zip(sequences, got, strict=True):
        with rm.no_grad():
            alone = model(seq[None]).data[0]
        np.testing.assert_allclose(row, alone, rtol=1e-5, atol=1e-5)
    calls = []
    batched_predict(lambda b: calls.append(b.shape) or np.zeros((len(b), b.shape[1], 2)),
                    sequences, max_batch_size=3, max_tokens=20)
    assert all(n <= 3 and n * t <= 20 or n == 1 for n, t in calls)
    assert sorted(t for _, t in calls) == [t for _, t in calls]  # similar lengths together
    tokens = batched_predict(lambda b: b[..., None] * 1.0, sequences)  # per-token outputs
    assert [len(t) for t in tokens] == [len(s) for s in sequences]


def test_the_dynamic_batcher_serves_concurrent_requests_in_batches() -> None:
    rm.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    inputs = RNG.standard_normal((24, 4)).astype(np.float32)
    results: dict[int, np.ndarray] = {}
    with DynamicBatcher(model, max_batch_size=8, max_wait_ms=50) as batcher:
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher(inputs[i])))
                   for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with rm.no_grad():
        expected = model(rm.Tensor(inputs)).data
    for i in range(24):
        np.testing.assert_allclose(results[i], expected[i], rtol=1e-5, atol=1e-6)
    assert sum(batcher.batch_sizes) == 24 and max(batcher.batch_sizes) > 1
    assert max(batcher.batch_sizes) <= 8
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(inputs[0])


def test_a_failing_batch_reports_its_error_to_every_caller() -> None:
    def broken(batch):
        raise ValueError("bad batch")

    with DynamicBatcher(broken, max_wait_ms=1) as batcher:
        with pytest.raises(ValueError, match="bad batch"):
            batcher(np.zeros(3))


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_an_ensemble_averages_its_members_and_exports_as_one_graph(mode: str, tmp_path) -> None:
    import onnx
    import onnxruntime as ort

    members = [classifier(seed) for seed in (1, 2, 3)]
    ensemble = Ensemble(members, mode=mode)
    ids = np.array([[2, 5, 7, 0, 0], [3, 4, 5, 6, 7]], dtype=np.int64)
    with rm.no_grad():
        outs = [m(ids).data for m in members]
        got = ensemble(ids).data
    if mode == "logits":
        expected = np.mean(outs, axis=0)
    else:
        probs = [np.exp(o - o.max(-1, keepdims=True)) for o in outs]
        expected = np.log(np.mean([p / p.sum(-1, keepdims=True) for p in probs], axis=0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    export_onnx(ensemble, ids, tmp_path / "ensemble.onnx")  # ORT checked to 1e-4
    proto = onnx.load(tmp_path / "ensemble.onnx")
    names = {i.name for i in proto.graph.initializer}
    assert {f"members.{k}.head.weight" for k in range(3)} <= names  # every member inside
    session = ort.InferenceSession(str(tmp_path / "ensemble.onnx"),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": ids})[0], got, rtol=1e-4, atol=1e-4)


def test_ensemble_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="sum to 1"):
        Ensemble([nn.Linear(2, 2)] * 2, weights=[0.5, 0.6])
