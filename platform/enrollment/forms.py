from __future__ import annotations

from django import forms


class SignUpForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(required=False, label="E-mail",
                             help_text="For a password reset and score e-mails.")
    password = forms.CharField(widget=forms.PasswordInput, min_length=8,
                               help_text="At least 8 characters.")


class CodeForm(forms.Form):
    code = forms.CharField(max_length=32, label="Join code")


class RosterForm(forms.Form):
    roster = forms.FileField(label="Class list (CSV from Canvas or Moodle)")
    send_email = forms.BooleanField(required=False, initial=True,
                                    label="E-mail each new student a link to set a password")
