"""Hardware classes: the kinds of worker machine that score tracks (one Celery queue each).

A worker names its class when it starts (``evaluator.hardware.hardware_class()``), creates or
updates the class's row and measures the reference latency of every task the class lacks
(``calibration``): normalized latency = calibration[task] / speed index, so scores of one class are
comparable across its workers and across busy and quiet hours.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class HardwareClass(models.Model):
    name = models.CharField(max_length=64, unique=True,
                            help_text="Only [a-z0-9_-]: it names the class's Celery queue.")
    cpu_features = models.JSONField(default=list, blank=True)
    cpu_model = models.CharField(max_length=200, blank=True)
    cpu_count = models.PositiveIntegerField(null=True, blank=True)
    # {task: reference_latency_ms}, measured by evaluator.calibration.calibrate_reference on the
    # class's first worker; the full calibration records are kept in calibration_details.
    calibration = models.JSONField(default=dict, blank=True)
    calibration_details = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["first_seen", "id"]
        verbose_name_plural = "hardware classes"

    def __str__(self) -> str:
        return self.name

    def reference_latency_ms(self, task: str) -> float | None:
        value = (self.calibration or {}).get(task)
        return float(value) if value is not None else None
