from django.contrib import admin

from .models import Flag


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "submission", "other", "competition")
    list_filter = ("kind", "competition")
    raw_id_fields = ("submission", "other")
    readonly_fields = ("created_at",)
