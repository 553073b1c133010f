"""Routes: the prediction API and the serving pages."""

from __future__ import annotations

from django.urls import path

from evaluations.serving import api, views

app_name = "serving"

urlpatterns = [
    path("api/serve/<slug:system>/<slug:deployment>/predict", api.predict, name="predict"),
    path("serving/", views.deployment_list, name="deployment-list"),
    path("serving/systems/<int:system_id>/deploy/", views.deployment_create, name="deployment-create"),
    path("serving/deployments/<int:pk>/", views.deployment_detail, name="deployment-detail"),
    path("serving/deployments/<int:pk>/edit/", views.deployment_edit, name="deployment-edit"),
    path("serving/deployments/<int:pk>/keys/", views.key_issue, name="key-issue"),
    path("serving/deployments/<int:pk>/keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("serving/deployments/<int:pk>/keys/<int:key_id>/clear/", views.key_clear, name="key-clear"),
    path("serving/deployments/<int:pk>/queries/", views.query_log_export, name="query-export"),
]
