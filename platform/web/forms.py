"""The upload form of the student page (the file and the track; the competition is the page's)."""

from __future__ import annotations

from competitions.models import Track
from django import forms


class UploadForm(forms.Form):
    track = forms.ModelChoiceField(queryset=Track.objects.none(), empty_label=None,
                                   error_messages={"invalid_choice": "Choose one of the tracks."})
    file = forms.FileField(label="ONNX model file",
                           error_messages={"required": "Choose an .onnx file to upload.",
                                           "empty": "The uploaded file is empty."})

    def __init__(self, competition, *args, **kwargs):
        super().__init__(*args, **kwargs)
        track_field = self.fields["track"]
        track_field.queryset = competition.tracks.select_related("competition")
        track_field.to_field_name = "slug"
        track_field.label_from_instance = lambda track: f"{track.slug} ({track.get_task_display()})"
        self.fields["file"].widget.attrs.update({"accept": ".onnx", "aria-describedby": "drop-hint"})


class BoardQuery(forms.Form):
    """The leaderboard page's query parameters, checked as text before anything uses them
    (Django's text fields refuse NUL bytes, which PostgreSQL cannot compare). Which values name
    a real track, category or page is the page's own business (a 404 when none does)."""

    track = forms.CharField(required=False, strip=False, max_length=100)
    category = forms.CharField(required=False, strip=False, max_length=100)
    split = forms.CharField(required=False, strip=False, max_length=100)
    page = forms.CharField(required=False, strip=False, max_length=100)

    def reasons(self) -> str:
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in self.errors.items())
