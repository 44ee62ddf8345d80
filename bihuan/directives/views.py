from django.http import Http404


def confirm(request, token):
    raise Http404
