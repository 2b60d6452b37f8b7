from django.contrib import admin

from .models import HardwareClass


@admin.register(HardwareClass)
class HardwareClassAdmin(admin.ModelAdmin):
    list_display = ("name", "cpu_model", "cpu_count", "first_seen", "last_seen")
    readonly_fields = ("first_seen", "last_seen", "calibration_details")
