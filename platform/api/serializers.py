"""What the API shows. Private-split scores are left out unless the caller may see them."""

from __future__ import annotations

from competitions.models import Competition, Track
from rest_framework import serializers

from evaluator.tasks import get_task
from submissions.models import Submission
from submissions.queue import queue_position


class TrackSerializer(serializers.ModelSerializer):
    task_title = serializers.SerializerMethodField()
    opens_at = serializers.DateTimeField(read_only=True)
    closes_at = serializers.DateTimeField(read_only=True)
    is_open = serializers.SerializerMethodField()

    class Meta:
        model = Track
        fields = ["slug", "task", "task_title", "max_size_bytes", "max_latency_ms",
                  "accuracy_floor", "daily_limit", "total_limit", "rejected_daily_limit",
                  "hardware_class", "opens_at", "closes_at", "is_open"]

    def get_task_title(self, track: Track) -> str:
        return get_task(track.task).title

    def get_is_open(self, track: Track) -> bool:
        return track.is_open()


class CompetitionSerializer(serializers.ModelSerializer):
    tracks = TrackSerializer(many=True, read_only=True)
    is_open = serializers.SerializerMethodField()
    private_revealed = serializers.SerializerMethodField()

    class Meta:
        model = Competition
        fields = ["slug", "title", "description", "start", "deadline", "visibility", "is_open",
                  "private_revealed", "tracks"]

    def get_is_open(self, competition: Competition) -> bool:
        return competition.is_open()

    def get_private_revealed(self, competition: Competition) -> bool:
        return competition.private_revealed()


class SubmissionSerializer(serializers.ModelSerializer):
    competition = serializers.CharField(source="track.competition.slug", read_only=True)
    track = serializers.CharField(source="track.slug", read_only=True)
    task = serializers.CharField(source="track.task", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    scores = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="While queued: 1 = scored next (the fair order of its hardware class).")
    estimated_wait_seconds = serializers.SerializerMethodField(
        help_text="While queued: position x the recent mean scoring time of its class.")
    final = serializers.SerializerMethodField(
        help_text="Marked final by its student: the private leaderboard ranks the best of these.")
    late = serializers.SerializerMethodField(
        help_text="Uploaded after the deadline without an extension: scored, never ranked.")
    hidden_reason = serializers.SerializerMethodField(
        help_text="Why the organizers hid it from the leaderboard (null: not hidden).")
    team = serializers.SerializerMethodField(
        help_text="The name of the team its student is in (null: on their own); the team's "
                  "members share one leaderboard row and the quota.")

    class Meta:
        model = Submission
        fields = ["id", "competition", "track", "task", "username", "label", "is_baseline",
                  "status", "error", "failure_kind", "sha256", "size_bytes", "created_at",
                  "validated_at", "queued_at", "scoring_started_at", "finished_at",
                  "queue_position", "estimated_wait_seconds", "final", "late", "hidden_reason",
                  "team", "validation_report", "scores"]

    def _marks(self, submission: Submission) -> dict:
        # Given by the view for a whole page at once (coursework.services.marks).
        return self.context.get("marks") or {}

    def get_final(self, submission: Submission) -> bool:
        return bool(self._marks(submission).get("final"))

    def get_late(self, submission: Submission) -> bool:
        return bool(self._marks(submission).get("late"))

    def get_hidden_reason(self, submission: Submission) -> str | None:
        return self._marks(submission).get("hidden")

    def get_team(self, submission: Submission) -> str | None:
        # Given by the view for a whole page at once (teams.participants.team_labels).
        return self.context.get("team")

    def _position(self, submission: Submission):
        # One computation for both fields (the serializer asks twice per submission).
        cached = getattr(submission, "_queue_position", False)
        if cached is False:
            cached = queue_position(submission)
            submission._queue_position = cached
        return cached

    def get_queue_position(self, submission: Submission) -> int | None:
        position = self._position(submission)
        return position.position if position else None

    def get_estimated_wait_seconds(self, submission: Submission) -> float | None:
        position = self._position(submission)
        return position.estimated_wait_seconds if position else None

    def get_scores(self, submission: Submission) -> dict | None:
        score = getattr(submission, "score", None)
        if score is None:
            return None
        show_private = self.context.get("show_private", False)
        splits = {"public": {"accuracy": score.public_accuracy,
                             "bits_per_char": score.public_bits_per_char}}
        if show_private:
            splits["private"] = {"accuracy": score.private_accuracy,
                                 "bits_per_char": score.private_bits_per_char}
        return {
            "splits": splits,
            "latency_ms": score.latency_ms,
            "latency_p90_ms": score.latency_p90_ms,
            "speed_index": score.speed_index,
            "speed_index_ci": ([score.speed_index_low, score.speed_index_high]
                               if score.speed_index_low is not None else None),
            "normalized_latency_ms": score.normalized_latency_ms,
            "normalized_latency_ci_ms": (
                [score.normalized_latency_low_ms, score.normalized_latency_high_ms]
                if score.normalized_latency_low_ms is not None else None),
            "hardware_class": score.hardware_class,
            "warnings": score.warnings,
            "size_bytes": score.size_bytes,
            "raw_bytes": score.raw_bytes,
            "params": score.params,
            "nonzero_params": score.nonzero_params,
            "peak_memory_mb": score.peak_memory_mb,
            "throughput": score.throughput,
            "over_limit": score.over_limit,
            "private_hidden": not show_private,
        }


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The ONNX model.")
    competition = serializers.SlugField()
    track = serializers.SlugField()
    baseline = serializers.BooleanField(
        default=False, help_text="Organizers only: an unranked reference model."
    )



class FinalSerializer(serializers.Serializer):
    final = serializers.BooleanField(help_text="true: mark it final; false: unmark it.")
