from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "enrollment"
urlpatterns = [
    path("join/", views.enter_code, name="code"),
    path("join/<str:code>/", views.join_by_link, name="join"),
    path("c/<slug:slug>/organize/enrollment/", views.manage, name="manage"),
    path("account/token/rotate/", views.rotate_token, name="rotate-token"),
]

# Django's own password reset, in the site's look (included before django.contrib.auth.urls,
# whose names these keep, so its own views answer the rest).
password_urls = [
    path("accounts/password_reset/", auth_views.PasswordResetView.as_view(
        template_name="enrollment/password_reset_form.html",
        email_template_name="enrollment/password_reset_email.txt"), name="password_reset"),
    path("accounts/password_reset/done/", auth_views.PasswordResetDoneView.as_view(
        template_name="enrollment/password_reset_done.html"), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="enrollment/password_reset_confirm.html"), name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(
        template_name="enrollment/password_reset_complete.html"),
        name="password_reset_complete"),
]
