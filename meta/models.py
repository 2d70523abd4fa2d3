from django.db import models  # noqa: F401  (meta models arrive with the meta issue)
