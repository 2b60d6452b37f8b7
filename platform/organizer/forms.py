"""The organizer's forms: a competition and its course policy, a track, filters, extensions.
Their checks are the command line's (``competitions.services.check_dates``/``check_limits``)."""

from __future__ import annotations

from competitions.models import TASK_CHOICES, Competition, Track
from competitions.services import check_dates, check_limits
from coursework.models import Policy
from django import forms
from django.contrib.auth import get_user_model
from teams.rules import MAX_TEAM_SIZE, MIN_TEAM_SIZE, check_size_limit

from submissions.models import Status

LIMIT_FIELDS = ("max_size_bytes", "max_latency_ms", "accuracy_floor", "daily_limit",
                "total_limit", "rejected_daily_limit")


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class CompetitionForm(forms.ModelForm):
    class Meta:
        model = Competition
        fields = ["slug", "title", "description", "start", "deadline", "visibility",
                  "reveal_private_after_deadline", "teams_enabled", "team_size_limit"]
        widgets = {"start": DateTimeInput(), "deadline": DateTimeInput(),
                   "description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"start": "UTC", "deadline": "UTC",
                      "team_size_limit": f"The most students in one team ({MIN_TEAM_SIZE} to "
                                         f"{MAX_TEAM_SIZE}). Teams form before their members' "
                                         "first scored submission (docs/instructors.md)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form from before teams (a script, a saved page) keeps the current size.
        self.fields["team_size_limit"].required = False

    def clean_team_size_limit(self):
        value = self.cleaned_data.get("team_size_limit")
        return self.instance.team_size_limit if value is None else value

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("deadline"):
            try:
                check_dates(data["start"], data["deadline"])
            except ValueError as exc:
                self.add_error("deadline", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        if "team_size_limit" in data:
            try:
                check_size_limit(data["team_size_limit"])
            except ValueError as exc:
                self.add_error("team_size_limit", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        return data


class NewCompetitionForm(CompetitionForm):
    tasks = forms.MultipleChoiceField(choices=TASK_CHOICES, widget=forms.CheckboxSelectMultiple,
                                      help_text="One track per task; edit each track's limits "
                                                "afterwards.")


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = ["final_picks", "accept_late"]


class TrackForm(forms.ModelForm):
    class Meta:
        model = Track
        fields = ["slug", "task", *LIMIT_FIELDS, "start", "deadline"]
        widgets = {"start": DateTimeInput(), "deadline": DateTimeInput()}
        help_texts = {"start": "Blank: the competition's start (UTC).",
                      "deadline": "Blank: the competition's deadline (UTC)."}

    def __init__(self, *args, competition: Competition, **kwargs):
        super().__init__(*args, **kwargs)
        self.competition = competition
        self.instance.competition = competition

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        others = self.competition.tracks.filter(slug=slug).exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(f"This competition already has a track {slug!r}.")
        return slug

    def clean(self):
        data = super().clean()
        try:
            check_limits(**{name: data.get(name) for name in LIMIT_FIELDS})
        except ValueError as exc:
            self.add_error(None, f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        start = data.get("start") or self.competition.start
        deadline = data.get("deadline") or self.competition.deadline
        try:
            check_dates(start, deadline)
        except ValueError as exc:
            self.add_error("deadline", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        return data


class SubmissionFilter(forms.Form):
    track = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Status.choices])
    student = forms.CharField(required=False, max_length=150)

    def __init__(self, *args, competition: Competition, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["track"].choices = [("", "any"), *(
            (t.slug, t.slug) for t in competition.tracks.all())]


class ExtensionForm(forms.Form):
    username = forms.CharField(max_length=150)
    deadline = forms.DateTimeField(required=False, widget=DateTimeInput(),
                                   help_text="UTC; blank: the usual deadline.")
    extra_uploads = forms.IntegerField(min_value=0, initial=0)
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, competition: Competition, **kwargs):
        super().__init__(*args, **kwargs)
        self.competition = competition

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name).first()
        if user is None or not self.competition.is_participant(user):
            raise forms.ValidationError(f"{name!r} does not take part in this competition.")
        self.user = user
        return name


class HideForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             help_text="The student sees this.")
