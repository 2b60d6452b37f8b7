from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "leaderboards"
    verbose_name = "Leaderboards"

    def ready(self) -> None:
        # One way: submissions sends, leaderboards listens (submissions never imports us).
        from submissions.signals import scores_changed

        from .receivers import on_scores_changed

        scores_changed.connect(on_scores_changed, dispatch_uid="leaderboards.scores_changed")
