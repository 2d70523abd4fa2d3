"""HTTP for memories: validate the input, call one service, shape the output. No rules here.

One viewset serves ``/api/v1/memories/``; its routes are grouped by concept, a module
each: ``core`` (add, query, feedback, bootstrap), ``resource`` (list, retrieve, PATCH, DELETE,
restore), ``dynamics`` (update-tier, catalysts, stats). ``associations`` has its own
prefix.
"""

from rest_framework import viewsets

from memories.views.core import CoreMemoryActions
from memories.views.dynamics import DynamicsMemoryActions
from memories.views.resource import MemoryResourceActions


class MemoryViewSet(CoreMemoryActions, DynamicsMemoryActions, MemoryResourceActions, viewsets.ViewSet):
    pass
