"""Control-and-care pages."""

from django.http import Http404


def person(request, token):
    """The person's own page through their signed link (check-ins, service requests), no login."""
    raise Http404
