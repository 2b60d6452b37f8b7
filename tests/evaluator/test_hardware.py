"""Hardware provenance: the CPU features that change results or speed, and the class they name."""

from __future__ import annotations

import re

import pytest

from evaluator import hardware

SAPPHIRE_RAPIDS = "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx_vnni avx512_vnni amx_int8 amx_bf16\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
ICELAKE = "flags\t\t: avx2 avx512f avx512_vnni\n"
SKYLAKE_X = "flags\t\t: avx2 avx512f avx512bw\n"
ALDER_LAKE = "flags\t\t: avx2 avx_vnni\n"
GRAVITON = "Features\t: fp asimd evtstrm aes asimddp i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "features", "klass"),
    [
        (SAPPHIRE_RAPIDS, "x86_64", ["amx_bf16", "amx_int8", "avx2", "avx512_vnni", "avx512f",
                                     "avx_vnni"], "x86_64-avx512-vnni"),
        (ZEN3, "x86_64", ["avx2"], "x86_64-avx2"),
        (ICELAKE, "x86_64", ["avx2", "avx512_vnni", "avx512f"], "x86_64-avx512-vnni"),
        (SKYLAKE_X, "x86_64", ["avx2", "avx512f"], "x86_64-avx512"),
        (ALDER_LAKE, "x86_64", ["avx2", "avx_vnni"], "x86_64-avx2-vnni"),
        ("flags\t: sse2\n", "x86_64", [], "x86_64"),
        (GRAVITON, "aarch64", ["asimd", "asimddp", "i8mm"], "aarch64-dotprod"),
        ("Features\t: fp asimd\n", "aarch64", ["asimd"], "aarch64"),
    ],
)
def test_features_and_class_from_cpuinfo(cpuinfo, machine, features, klass):
    found = hardware.features_from_cpuinfo(cpuinfo, machine)
    assert found == features
    assert hardware.class_from_features(found, machine) == klass


def test_this_machine_is_described():
    features = hardware.cpu_features()
    assert features == sorted(features)
    assert set(features) <= set(hardware.X86_FEATURES) | set(hardware.ARM_FEATURES)
    assert hardware.cpu_count() >= 1
    assert re.fullmatch(r"[a-z0-9_-]+", hardware.hardware_class())
    provenance = hardware.hardware_provenance()
    assert provenance["cpu_features"] == features
    assert provenance["hardware_class"] == hardware.hardware_class()


def test_configured_class_wins_and_is_made_queue_safe(monkeypatch):
    monkeypatch.setenv("ARENA_HARDWARE_CLASS", "Lab Room 2 / EPYC")
    assert hardware.hardware_class() == "lab-room-2-epyc"
    monkeypatch.setenv("ARENA_HARDWARE_CLASS", "  ")
    assert hardware.hardware_class() == hardware.class_from_features(hardware.cpu_features())
