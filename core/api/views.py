"""The API's catch-all: a path under /api/ that no endpoint matches is the API's JSON 404."""

from django.http import HttpResponsePermanentRedirect
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView


class ApiNotFoundView(APIView):
    """The last route under /api/: a path no endpoint matches answers the API's JSON 404 (any method),
    not Django's HTML page. A GET that only lacks its trailing slash is redirected, as Django would."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    schema = None  # not an operation of the API

    def _answer(self, request, *args, **kwargs):
        with_slash = request.path if request.path.endswith("/") else f"{request.path}/"
        if with_slash != request.path and _is_endpoint(with_slash):
            if request.method in ("GET", "HEAD"):
                return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
            raise NotFound(_("No such API endpoint. Paths end with a slash: %(path)s") % {"path": with_slash})
        raise NotFound(_("No such API endpoint."))

    get = post = put = patch = delete = head = options = _answer


def _is_endpoint(path: str) -> bool:
    try:
        return getattr(resolve(path).func, "view_class", None) is not ApiNotFoundView
    except Resolver404:
        return False
