from django.apps import AppConfig


class IntegrityConfig(AppConfig):
    name = "integrity"
    verbose_name = "Integrity flags (test-set training, copies)"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the receiver on Score
