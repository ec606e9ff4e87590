from django.db import models


class Dashboard(models.Model):
    """No table: the holder of the back office's own permissions (Django attaches permissions to
    a model). `backoffice.view_dashboard` opens the dashboard; `is_staff` alone does not."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_dashboard", "Can view the back-office dashboard")]

    def __str__(self) -> str:
        return "Dashboard"
