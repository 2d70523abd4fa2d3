"""The response renderer: DRF's JSON renderer (UTF-8, unescaped), except that a body
quoting a lone surrogate a client sent (an unknown field's name, say) is rendered with
``\\uXXXX`` escapes instead of failing to encode as UTF-8 (a 500)."""

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            escaped = renderers.JSONRenderer()
            escaped.ensure_ascii = True
            return escaped.render(data, accepted_media_type, renderer_context)
