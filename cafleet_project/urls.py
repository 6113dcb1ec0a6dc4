from django.contrib import admin
from django.urls import path
from django.views.generic.base import RedirectView

from broker.admin_views import login_link

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # One-time login links printed by 'cafleet server' (broker.loginlink). Listed before the
    # admin so that the admin's catch-all does not take it.
    path("admin/login/link/<str:token>/", login_link, name="cafleet-login-link"),
    path("admin/", admin.site.urls),
]
