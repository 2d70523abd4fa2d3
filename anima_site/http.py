"""HTTP plumbing every app's views and routes share: input validation and the router."""

from rest_framework.routers import SimpleRouter


def validated(serializer_class, data) -> dict:
    """``data`` checked by ``serializer_class``; a ``ValidationError`` (400) if it fails."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OptionalSlashRouter(SimpleRouter):
    """Every route answers with or without its trailing slash."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
