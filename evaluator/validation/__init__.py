"""The validation gate: is an uploaded ONNX file safe to open and does it fit its task?

What is checked, in this order, before onnxruntime ever sees the bytes. Every refusal names its
rule, the offending node or tensor, and a fix.

1. ``file`` / ``size``: the file is read at most up to the size cap (100 MiB by default); a bigger
   file is refused without being parsed. Only raw ``.onnx`` bytes are accepted (no zip archives,
   no onnxruntime ``.ort`` files).
2. ``parse``: the bytes must decode as an ONNX ``ModelProto`` with a graph. Truncated or garbage
   files stop here.
3. ``external-data``: every tensor everywhere (initializers, sparse initializers, tensors in node
   attributes such as ``Constant``, If/Loop/Scan bodies, function bodies, training graphs) must keep
   its bytes inside the file. A model pointing at another file (``../labels.bin``, ``/etc/passwd``
   or a file beside it) is refused: onnxruntime would read that file.
4. ``model-local-function``: the model may not define its own functions (inline them first).
5. ``ir-version`` / ``opset``: IR version 7 to 13 and ai.onnx opset 13 to 26 (onnxruntime 1.31 loads
   nothing newer; see ``evaluator.onnx_facts``). The fix is to export with opset 17. A model using
   ``com.microsoft`` operators must import that domain at version 1.
6. ``custom-domain``: every node actually used (including inside subgraphs) must be a standard ONNX
   operator (domain ``""`` / ``ai.onnx``), or one of onnxruntime's ``com.microsoft`` quantization
   operators listed in ``evaluator.onnx_facts.ALLOWED_MICROSOFT_OPS`` (QGemm, QLinearAdd,
   MatMulNBits, ...), which onnxruntime's own quantization tools emit. Opset imports that no node
   uses are ignored, since those tools add them. ``ai.onnx.ml`` and every other domain are refused.
7. ``memory`` (stored): no stored tensor (sparse ones at their dense size, since onnxruntime
   densifies them) and no ConstantOfShape/Expand/Tile driven by a stored constant may exceed the
   memory cap (1 GiB per tensor by default).
8. ``checker`` / ``shape-inference``: ``onnx.checker.check_model(full_check=True)``, then strict
   shape inference with constant propagation. The same errors appear when you run the checker
   yourself.
9. ``signature``: exactly one input and one output (initializers listed as inputs do not count)
   with the task's dtype and rank (SPEC §2); dims the task fixes may not be declared as another
   number (a symbolic name is accepted); the batch dim (0) must be dynamic in the input and the
   output; for ``tinygpt`` the context T is fixed between 1 and 256 or dynamic, and the logits have
   the input's T positions and 65 entries.
10. ``memory`` (inferred): no value whose shape inference can work out (e.g. a Resize, Pad, Range,
    OneHot or ConvTranspose with constant arguments) may exceed the cap. Unknown and symbolic dims
    count as 1, so this is a lower bound.

Rules 3 to 7 are all reported together; later stages run only when earlier ones pass. Reports are
bounded (at most 10 problems per rule, names clipped and made printable), since every name in them
comes from the uploaded file.

What is NOT checked here and is left to the locked-down scoring child (``evaluator.sandbox``):
anything only visible at run time -- a Loop that never ends, NaN outputs, an output whose shape is
wrong only for some batch sizes, memory that depends on the batch or on input values.

``validate`` runs onnx's C++ checker in the calling process. A caller that must survive any file
(a web worker) can use ``evaluator.validation.isolated.validate_isolated``: the same checks in a
child process under the scoring sandbox's limits, a crash or timeout becoming a ``crash`` refusal.

A valid report carries ``model_bytes``: the parsed model re-serialized (unknown protobuf fields
dropped). Give onnxruntime those bytes, never the uploaded file or a path.
"""

from __future__ import annotations

import math
import os
import stat

import onnx
from google.protobuf.message import DecodeError

from evaluator.fingerprint import weights_fingerprint
from evaluator.onnx_facts import MAX_MODEL_BYTES, MEMORY_CAP_BYTES
from evaluator.tasks import get_task
from evaluator.validation import checker, memory, signature, structure
from evaluator.validation.report import Problem, ValidationReport, clip_name, tidy
from evaluator.validation.walk import iter_nodes

__all__ = ["MAX_MODEL_BYTES", "MEMORY_CAP_BYTES", "Problem", "ValidationReport", "validate"]

# Lists in ``info`` are the model's own strings; a hostile model could make them huge.
_MAX_LISTED = 32

ModelSource = bytes | bytearray | memoryview | str | os.PathLike


def validate(
    model: ModelSource,
    task: str,
    *,
    max_bytes: int = MAX_MODEL_BYTES,
    memory_cap_bytes: int = MEMORY_CAP_BYTES,
) -> ValidationReport:
    """Check ``model`` (bytes or a file path) for ``task``; never runs the model.

    Raises ``ValueError`` only for an unknown task name; every problem with the model itself is a
    ``Problem`` in the returned report.
    """
    spec = get_task(task)
    data, problem = read_model(model, max_bytes)
    if problem:
        return _rejected(task, [problem], {})
    info = {"raw_bytes": len(data)}
    proto, problem = _parse(data)
    if problem:
        return _rejected(task, [problem], info)
    info.update(_facts(proto))
    problems = (
        structure.external_data(proto)
        + structure.local_functions(proto)
        + structure.versions(proto)
        + structure.domains(proto)
        + structure.stored_tensor_sizes(proto, memory_cap_bytes)
        + memory.constant_shapes(proto, memory_cap_bytes)
    )
    if problems:
        return _rejected(task, problems, info)
    # From here on everything looks at exactly the bytes onnxruntime will be given.
    proto.DiscardUnknownFields()
    checked = proto.SerializeToString()
    problems = checker.check(checked)
    inferred, inference_problems = (None, []) if problems else checker.infer(proto)
    if problems or inference_problems:
        return _rejected(task, problems + inference_problems, info)
    problems, signature_info = signature.check(inferred.graph, spec)
    info.update(signature_info)
    problems += memory.declared(inferred, memory_cap_bytes)
    if problems:
        return _rejected(task, problems, info)
    # For the copy flag (platform/integrity): the weights' hash, names and order aside.
    info["weights_sha256"] = weights_fingerprint(proto)
    return ValidationReport(True, task, [], info, checked)


def _rejected(task: str, problems: list[Problem], info: dict) -> ValidationReport:
    return ValidationReport(False, task, tidy(problems), info, None)


def read_model(model: ModelSource, max_bytes: int) -> tuple[bytes, Problem | None]:
    """The bytes, or a ``file``/``size`` problem; a file is read no further than the cap (one that
    grows or never ends stays bounded)."""
    too_big = Problem(
        "size", f"the model is larger than the {max_bytes / 2**20:g} MiB the evaluator reads",
        None, "make the model smaller (quantize, prune) or store weights at lower precision",
    )
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        return (b"", too_big) if len(data) > max_bytes else (data, None)
    path = os.fspath(model)
    try:
        # stat before open: opening a FIFO would block; fstat after open: the path may be swapped.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b"", Problem("file", f"'{path}' is not a regular file", path,
                                "give the path of the .onnx file itself")
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return b"", Problem("file", f"'{path}' is not a regular file", path,
                                    "give the path of the .onnx file itself")
            data = handle.read(max_bytes + 1)
    except OSError as error:
        return b"", Problem("file", f"could not read the model file: {error.strerror}", path,
                            "check the path")
    return (b"", too_big) if len(data) > max_bytes else (data, None)


def _parse(data: bytes) -> tuple[onnx.ModelProto | None, Problem | None]:
    fix = "upload the .onnx file exactly as your exporter wrote it (not zipped, not truncated)"
    if not data:
        return None, Problem("parse", "the file is empty", None, fix)
    if data[4:8] == b"ORTM":
        return None, Problem("parse", "this is an onnxruntime .ort file, not an ONNX model", None,
                             "upload the .onnx file you exported, not onnxruntime's format")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        return None, Problem("parse", f"the file is not a readable ONNX model ({error})", None, fix)
    if not proto.HasField("graph"):
        return None, Problem("parse", "the file is not an ONNX model: it holds no graph", None, fix)
    return proto, None


def _facts(proto: onnx.ModelProto) -> dict:
    nodes = list(iter_nodes(proto))
    graph = proto.graph
    parameters = sum(math.prod(t.dims) for t in graph.initializer) + sum(
        math.prod(s.dims) for s in graph.sparse_initializer
    )
    return {
        "ir_version": proto.ir_version,
        "opsets": {clip_name(e.domain): e.version for e in proto.opset_import[:_MAX_LISTED]},
        "domains_used": sorted({clip_name(node.domain or "ai.onnx") for node, _ in nodes})[
            :_MAX_LISTED
        ],
        "node_count": len(nodes),
        "parameters": parameters,
        "producer": clip_name(f"{proto.producer_name} {proto.producer_version}".strip()),
    }
