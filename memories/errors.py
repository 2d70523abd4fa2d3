"""Domain errors raised by services and selectors; ``anima_site.api`` maps them to HTTP."""

from uuid import UUID


class MemoryNotFoundError(Exception):
    """No live memory with this id in the namespace. ``merged_into`` names the survivor
    when consolidation folded this memory into another."""

    def __init__(self, memory_id: UUID, merged_into: UUID | None = None):
        super().__init__(f"memory {memory_id} not found")
        self.memory_id = memory_id
        self.merged_into = merged_into


class ContentConflictError(Exception):
    """Another live memory of the namespace already has this content."""

    def __init__(self, existing_id: UUID):
        super().__init__(f"memory {existing_id} already has this content")
        self.existing_id = existing_id


class SupersessionConflictError(Exception):
    """The memory is already superseded by another one (409)."""

    def __init__(self, memory_id: UUID, superseded_by: UUID | None):
        super().__init__(f"memory {memory_id} is already superseded by {superseded_by}")
        self.memory_id = memory_id
        self.superseded_by = superseded_by


class InvalidSupersessionError(Exception):
    """A supersession that cannot be: itself, or a cycle (400 naming ``field``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message
