"""The admin for staff (SPEC §6): curate memories; read promotions, associations, accesses.

Cheap on big tables: the memory list reads only ``memories_memory`` rows of one page
(never the vector, which lives in ``MemoryEmbedding``, nor the ``search_vector``
column); the namespace filter reads the few ``TierCount`` rows; search uses the
full-text and tag GIN indexes, not ``ILIKE``; the read-only logs order by an indexed
column and count by the planner's estimate when unfiltered and large.

Every change goes through a service: tier moves through ``memories_update_tier`` (one
``TierPromotion`` audit row each), the rest through ``memories.services.curation`` and
``memories.services.catalysts``. Memories are never added or hard-deleted here: adding
needs an embedding (the API does it), deletion is soft (an action), and content is
changed through ``PATCH /api/v1/memories/{id}/`` which re-embeds it.

Facts that change: the change page shows a memory's correction chain and its suggested
correction; supersession links are never edited here (``superseded_by``, ``supersedes``,
``valid_from``, ``valid_until`` are not form fields), only ``expires_at`` is. Confirming
a suggested correction goes through ``memories_supersede``, dismissing one through
``correction_dismiss`` (``memories.services.supersession``).
"""

import json
from uuid import UUID

from django import forms
from django.forms.fields import InvalidJSONInput
from django.contrib import admin, messages
from django.contrib.postgres.search import SearchQuery
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Now, Substr
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from anima_site.admin import ReadOnlyAdmin
from anima_site.json_values import JsonValueError, check_json_value
from memories.errors import InvalidSupersessionError, MemoryNotFoundError, SupersessionConflictError
from memories.models import LIVE, Memory, MemoryAccess, MemoryAssociation, Tier, TierCount, TierPromotion, current
from memories.selectors.associations import memory_associations
from memories.selectors.memories import memory_embedding_info, memory_merged_variants, memory_previews, memory_similar
from memories.selectors.tiers import memory_promotions
from memories.services import catalysts, curation
from memories.services.supersession import (
    CORRECTION_CANDIDATE,
    CORRECTION_DISMISSED,
    corrected_id,
    correction_dismiss,
    memories_supersede,
)
from memories.services.tiers import memories_update_tier

PREVIEW_CHARS = 100
#: Namespaces listed in the namespace filter (the largest by live memories).
NAMESPACE_CHOICES = 50
#: Above this many rows an unfiltered read-only list shows the planner's estimate, not COUNT(*).
ESTIMATE_COUNT_ABOVE = 100_000
#: Edited on the change page (through ``curation.memory_update_fields``); ``expires_at`` is
#: shown in the "Corrections" section, the others at the top.
CURATED_FIELDS = ("category", "tags", "source", "is_catalyst", "pinned", "metadata")
EDITABLE_FIELDS = (*CURATED_FIELDS, "expires_at")
#: How many memories the correction chain on the change page follows each way (a chain
#: is a few corrections of one fact; a longer one is cut, and says so).
MAX_CHAIN_SHOWN = 50
#: Shown on the change page, never edited there.
STATE_FIELDS = (
    "status",
    "tier",
    "tier_last_updated",
    "resonance_phi",
    "phi_decayed_at",
    "access_count",
    "last_accessed",
    "embedding_info",
    "created_at",
    "updated_at",
)
RELATED_FIELDS = ("similar_memories", "near_duplicates", "associations", "merged_here")
#: The read-only fields of the "Corrections" section (its one editable field: ``expires_at``).
CORRECTION_FIELDS = ("validity", "valid_from", "valid_until", "correction_chain", "correction_suggestion")

MESSAGE_MOVED = "{moved} moved to {tier}; {unchanged} already there or deleted (unchanged)."
MESSAGE_MARKED = "{count} marked as catalysts."
MESSAGE_UNMARKED = "{count} no longer catalysts."
MESSAGE_CONFIRMED = "{count} candidates confirmed as catalysts."
MESSAGE_DISMISSED = "{count} candidates dismissed (they will not be raised again)."
MESSAGE_SOFT_DELETED = "{count} deleted (soft: restore brings them back)."
MESSAGE_RESTORED = "{count} restored."
MESSAGE_RESTORE_CONFLICTS = "{count} not restored: a live memory of their namespace has the same content now ({ids})."
MESSAGE_RESTORE_MERGED = "{count} not restored: merged into another memory ({ids})."
MESSAGE_MERGED = "Merged the newer memory into {survivor}."
MESSAGE_CORRECTIONS_CONFIRMED = "{count} suggested corrections confirmed."
MESSAGE_CORRECTION_REFUSED = "Suggested correction by {memory} ({id}) not confirmed: {reason}."
MESSAGE_CORRECTIONS_DISMISSED = "{count} suggested corrections dismissed (they will not be suggested again)."


def preview(text: str | None, chars: int = PREVIEW_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= chars else text[: chars - 1] + "…"


def memory_link(memory_id: UUID, text: str) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:memories_memory_change", args=[memory_id]), text)


def _ids(queryset) -> list[UUID]:
    return list(queryset.values_list("pk", flat=True))


def _when(moment) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def validity_of(valid_until, expires_at, now) -> str:
    """The state of a fact: "superseded" (a correction replaced it), "expired" (past
    ``expires_at``, not superseded) or "current"."""
    if valid_until is not None:
        return "superseded"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "current"


#: What a row of the correction chain reads: never the content beyond its preview.
CHAIN_VALUES = ("pk", "preview", "valid_from", "valid_until", "expires_at", "deleted_at")


def _chain_rows(condition: Q, limit: int) -> list[dict]:
    return list(
        Memory.objects.filter(condition)
        .annotate(preview=Substr("content", 1, PREVIEW_CHARS))
        .order_by("valid_from", "pk")
        .values(*CHAIN_VALUES)[:limit]
    )


def correction_walk(memory_id: UUID, neighbours, limit: int) -> tuple[list[tuple[int, dict]], bool]:
    """Breadth-first from ``memory_id`` along supersession links, one query a level:
    ``neighbours(ids)`` is the Q of the memories one link away from ``ids``. Returns
    (links away, row) pairs, nearest first, at most ``limit``; and whether it was cut there."""
    found, frontier, seen, distance = [], [memory_id], {memory_id}, 0
    while frontier:
        distance += 1
        room = limit - len(found)
        rows = _chain_rows(neighbours(frontier) & ~Q(pk__in=seen), room + 1)
        found += [(distance, row) for row in rows[:room]]
        if len(rows) > room:
            return found, True
        frontier = [row["pk"] for row in rows]
        seen.update(frontier)
    return found, False


def _earlier(ids: list[UUID]) -> Q:
    return Q(superseded_by_id__in=ids)  # the memories these superseded (maybe several each)


def _later(ids: list[UUID]) -> Q:
    return Q(pk__in=Memory.objects.filter(pk__in=ids).values("superseded_by_id"))  # the one that superseded each


class EstimatedCountPaginator(Paginator):
    """``COUNT(*)`` reads a whole big table; unfiltered, the planner's estimate will do."""

    @cached_property
    def count(self):
        if not self.object_list.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                estimate = cursor.fetchone()[0]
            if estimate > ESTIMATE_COUNT_ABOVE:
                return estimate
        return super().count


# --- filters ------------------------------------------------------------------------------


class NamespaceFilter(admin.SimpleListFilter):
    """The largest namespaces, from the trigger-kept ``TierCount`` rows (a few rows, not a
    scan of the memories). With one namespace per end user there may be thousands: the
    list shows the ``NAMESPACE_CHOICES`` largest, and ``?namespace=<slug>`` filters by any."""

    title = "namespace"
    parameter_name = "namespace"

    def lookups(self, request, model_admin):
        largest = list(
            TierCount.objects.values("namespace")
            .annotate(live=Sum("count"))
            .order_by("-live", "namespace")
            .values_list("namespace", flat=True)[:NAMESPACE_CHOICES]
        )
        if self.value() and self.value() not in largest:
            largest.append(self.value())
        return [(namespace, namespace) for namespace in sorted(largest)]

    def queryset(self, request, queryset):
        return queryset.filter(namespace=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    """Live memories unless asked otherwise: deleted ones (merged included) are hidden by default."""

    title = "status"
    parameter_name = "status"
    LIVE, DELETED, MERGED, ALL = "live", "deleted", "merged", "all"

    def lookups(self, request, model_admin):
        return [(self.LIVE, "Live"), (self.DELETED, "Deleted"), (self.MERGED, "Merged"), (self.ALL, "All")]

    def _chosen(self) -> str:
        return self.value() if self.value() in (self.DELETED, self.MERGED, self.ALL) else self.LIVE

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self._chosen() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        chosen = self._chosen()
        if chosen == self.LIVE:
            return queryset.filter(deleted_at__isnull=True)
        if chosen == self.DELETED:
            return queryset.filter(deleted_at__isnull=False)
        if chosen == self.MERGED:
            return queryset.filter(merged_into__isnull=False)
        return queryset


class CandidateCatalystFilter(admin.SimpleListFilter):
    """Memories that catalyst detection raised for staff to confirm or dismiss."""

    title = "candidate catalyst"
    parameter_name = "candidate"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        has_candidate = Q(metadata__has_key=catalysts.CANDIDATE_KEY)
        if self.value() == "yes":
            return queryset.filter(has_candidate)
        if self.value() == "no":
            return queryset.exclude(has_candidate)
        return queryset


class ValidityFilter(admin.SimpleListFilter):
    """Facts that change: current facts (``models.current``), superseded ones (a correction
    replaced them), expired ones (past ``expires_at``, not superseded), or memories that
    carry a suggested correction (``metadata.correctionCandidate``)."""

    title = "validity"
    parameter_name = "validity"
    CURRENT, SUPERSEDED, EXPIRED, SUGGESTED = "current", "superseded", "expired", "suggested"

    def lookups(self, request, model_admin):
        return [
            (self.CURRENT, "Current"),
            (self.SUPERSEDED, "Superseded"),
            (self.EXPIRED, "Expired"),
            (self.SUGGESTED, "Suggested correction"),
        ]

    def queryset(self, request, queryset):
        conditions = {
            self.CURRENT: current(),
            self.SUPERSEDED: Q(valid_until__isnull=False),
            self.EXPIRED: Q(valid_until__isnull=True, expires_at__lte=Now()),
            self.SUGGESTED: Q(metadata__has_key=CORRECTION_CANDIDATE),
        }
        condition = conditions.get(self.value())
        return queryset if condition is None else queryset.filter(condition)


# --- memories --------------------------------------------------------------------------------


class MetadataFormField(forms.JSONField):
    """Django's JSON form field, with a too-deep value as a form error, and a value quoting
    a lone surrogate shown escaped (the page could not be encoded otherwise)."""

    def prepare_value(self, value):
        text = super().prepare_value(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return text

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("The JSON is nested too deeply.") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # shown again as typed
            return InvalidJSONInput(data)


class MemoryAdminForm(forms.ModelForm):
    class Meta:
        model = Memory
        fields = EDITABLE_FIELDS
        field_classes = {"metadata": MetadataFormField}
        help_texts = {
            "expires_at": "After this moment (UTC) the memory behaves as superseded: kept, out of default reads. "
            "Empty: it never expires."
        }

    def clean_metadata(self):
        """The API's rule for free-form JSON (``anima_site.json_values``)."""
        metadata = self.cleaned_data["metadata"]
        if not isinstance(metadata, dict):
            raise forms.ValidationError("Metadata must be a JSON object.")
        try:
            check_json_value(metadata)
        except JsonValueError as exc:
            raise forms.ValidationError(f"Metadata {exc}") from None
        return metadata


def _move_to(tier: str):
    @admin.action(description=f"Move to tier: {tier}", permissions=["change"])
    def move(modeladmin, request, queryset):
        ids = _ids(queryset)
        moved = memories_update_tier(namespace=None, memory_ids=ids, tier=tier)
        modeladmin.message_user(request, MESSAGE_MOVED.format(moved=moved, tier=tier, unchanged=len(ids) - moved))

    move.__name__ = f"move_to_{tier}"
    return move


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    form = MemoryAdminForm
    list_display = (
        "content_preview",
        "namespace",
        "tier",
        "phi",
        "is_catalyst",
        "candidate",
        "validity_column",
        "access_count",
        "last_accessed",
    )
    list_filter = (
        NamespaceFilter,
        "tier",
        "category",
        "is_catalyst",
        "pinned",
        StatusFilter,
        CandidateCatalystFilter,
        ValidityFilter,
    )
    # The search box; get_search_results decides what it matches.
    search_fields = ("content",)
    search_help_text = "Words of the content (full text, English stemming), an exact tag, or a memory id."
    ordering = ("-created_at",)
    list_per_page = 100
    list_select_related = False  # no relation is shown on the list
    show_full_result_count = False  # one COUNT per page, not two
    show_facets = admin.ShowFacets.NEVER  # facet counts would be one COUNT per filter choice
    actions = [
        *(_move_to(tier) for tier in Tier.values),
        "mark_catalyst",
        "unmark_catalyst",
        "pin",
        "unpin",
        "confirm_candidate",
        "dismiss_candidate",
        "confirm_correction",
        "dismiss_correction",
        "merge_pair",
        "soft_delete",
        "restore",
    ]
    fieldsets = (
        (None, {"fields": ("id", "namespace", "content", *CURATED_FIELDS)}),
        ("State", {"fields": STATE_FIELDS}),
        (
            "Corrections",
            {
                "fields": (
                    "validity",
                    "valid_from",
                    "valid_until",
                    "expires_at",
                    "correction_chain",
                    "correction_suggestion",
                )
            },
        ),
        ("Catalyst candidate", {"fields": ("catalyst_candidate",)}),
        ("Related memories", {"fields": RELATED_FIELDS}),
        ("Promotion history", {"fields": ("promotion_history",)}),
    )
    _READ_ONLY = (
        "id",
        "namespace",
        "content",
        *STATE_FIELDS,
        *CORRECTION_FIELDS,
        "catalyst_candidate",
        *RELATED_FIELDS,
        "promotion_history",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("search_vector")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.deleted_at is not None:
            return self._READ_ONLY + EDITABLE_FIELDS  # restore it first
        return self._READ_ONLY

    def has_add_permission(self, request):
        return False  # memories are added through the API, which embeds them

    def has_delete_permission(self, request, obj=None):
        return False  # deletion is soft: the "Delete (soft)" action

    def get_search_results(self, request, queryset, search_term):
        """Full text (the ``search_vector`` GIN index), an exact tag (the tags GIN index), or an id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(search_vector=SearchQuery(term, search_type="websearch", config="english")) | Q(
            tags__contains=[term]
        )
        try:
            condition |= Q(pk=UUID(term))
        except ValueError:
            pass
        return queryset.filter(condition), False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
        if changes:
            curation.memory_update_fields(namespace=obj.namespace, memory_id=obj.pk, **changes)

    # --- list columns ---

    @admin.display(description="content")
    def content_preview(self, memory):
        return preview(memory.content)

    @admin.display(description="φ", ordering="resonance_phi")
    def phi(self, memory):
        return f"{memory.resonance_phi:.2f}"

    @admin.display(description="candidate", boolean=True)
    def candidate(self, memory):
        return catalysts.CANDIDATE_KEY in (memory.metadata or {})

    @admin.display(description="validity")
    def validity_column(self, memory):
        """Superseded / expired / current, and whether a correction is suggested (no query)."""
        state = validity_of(memory.valid_until, memory.expires_at, timezone.now())
        return f"{state}, correction suggested" if CORRECTION_CANDIDATE in (memory.metadata or {}) else state

    # --- change page ---

    @admin.display(description="status")
    def status(self, memory):
        if memory.merged_into_id:
            return format_html("merged into {}", memory_link(memory.merged_into_id, str(memory.merged_into_id)))
        if memory.deleted_at:
            return f"deleted at {memory.deleted_at:%Y-%m-%d %H:%M:%S} UTC"
        return "live"

    @admin.display(description="embedding")
    def embedding_info(self, memory):
        info = memory_embedding_info(memory_id=memory.pk)
        if info is None:
            return "none"
        model, truncated = info
        return f"{model}{' (truncated: the model saw only the beginning)' if truncated else ''}"

    @admin.display(description="validity")
    def validity(self, memory):
        state = validity_of(memory.valid_until, memory.expires_at, timezone.now())
        if state == "superseded":
            if memory.superseded_by_id is None:
                return f"superseded at {_when(memory.valid_until)} (the correcting memory is gone)"
            successor = memory_link(memory.superseded_by_id, str(memory.superseded_by_id))
            return format_html("superseded at {} by {}", _when(memory.valid_until), successor)
        if state == "expired":
            return f"expired at {_when(memory.expires_at)}"
        return "current"

    @admin.display(description="correction chain (earlier versions first)")
    def correction_chain(self, memory):
        """What this memory superseded (back to the first version: a memory may supersede
        several) and what superseded it (on to the current one), each way cut at
        ``MAX_CHAIN_SHOWN`` memories; "—" when no correction touches it."""
        earlier, earlier_cut = correction_walk(memory.pk, _earlier, MAX_CHAIN_SHOWN)
        later, later_cut = correction_walk(memory.pk, _later, MAX_CHAIN_SHOWN)
        if not earlier and not later:
            return "—"
        now = timezone.now()
        this = {
            "pk": memory.pk,
            "preview": memory.content,
            "valid_from": memory.valid_from,
            "valid_until": memory.valid_until,
            "expires_at": memory.expires_at,
            "deleted_at": memory.deleted_at,
        }
        steps = [
            *((-distance, row) for distance, row in sorted(earlier, key=lambda pair: -pair[0])),
            (0, this),
            *later,
        ]
        rows = []
        for step, row in steps:
            text = preview(row["preview"])
            state = validity_of(row["valid_until"], row["expires_at"], now)
            rows.append(
                (
                    "this memory" if step == 0 else f"{step:+d}",
                    format_html("<strong>{}</strong>", text) if step == 0 else memory_link(row["pk"], text),
                    _when(row["valid_from"]),
                    _when(row["valid_until"]),
                    _when(row["expires_at"]),
                    state if row["deleted_at"] is None else f"{state}, deleted",
                )
            )
        table = _table(("step", "memory", "valid from", "valid until", "expires at", "validity"), rows)
        if earlier_cut or later_cut:
            return format_html("{}<p>Cut at {} memories each way: the chain goes on.</p>", table, MAX_CHAIN_SHOWN)
        return table

    @admin.display(description="suggested correction")
    def correction_suggestion(self, memory):
        """The memory consolidation found this one may correct (``metadata.correctionCandidate``),
        and the ones staff dismissed before (``metadata.correctionDismissed``)."""
        metadata = memory.metadata or {}
        candidate = metadata.get(CORRECTION_CANDIDATE)
        dismissed = metadata.get(CORRECTION_DISMISSED) or []
        parts = []
        if candidate:
            older = corrected_id(candidate)
            if older is None:
                parts.append(format_html("<p>malformed: {}</p>", json.dumps(candidate)))
            else:
                row = next(iter(_chain_rows(Q(pk=older), 1)), None)
                if row is None:
                    target, state = str(older), "gone"
                else:
                    state = validity_of(row["valid_until"], row["expires_at"], timezone.now())
                    target = memory_link(older, preview(row["preview"]))
                    state = state if row["deleted_at"] is None else f"{state}, deleted"
                parts.append(
                    format_html(
                        "<p>may correct {} ({}), similarity {}: confirm or dismiss with the list actions</p>",
                        target,
                        state,
                        candidate.get("similarity", "?"),
                    )
                )
        if isinstance(dismissed, list) and dismissed:
            links = format_html_join(", ", "{}", ((_id_link(pk),) for pk in dismissed))
            parts.append(format_html("<p>dismissed before (not suggested again): {}</p>", links))
        return format_html_join("", "{}", ((part,) for part in parts)) if parts else "—"

    @admin.display(description="candidate catalyst")
    def catalyst_candidate(self, memory):
        candidate = (memory.metadata or {}).get(catalysts.CANDIDATE_KEY)
        if not candidate:
            return "—"
        reasons = ", ".join(candidate.get("reasons") or [])
        return f"{reasons} (detected {candidate.get('detectedAt', '?')}); confirm or dismiss with the list actions"

    @admin.display(description="similar memories (nearest by embedding)")
    def similar_memories(self, memory):
        rows = memory_similar(memory_id=memory.pk)
        return _table(
            ("similarity", "memory", "tier"),
            ((f"{row.similarity:.3f}", memory_link(row.memory_id, preview(row.preview)), row.tier) for row in rows),
        )

    @admin.display(description="near-duplicates (consolidation)")
    def near_duplicates(self, memory):
        listed = []
        for entry in (memory.metadata or {}).get("nearDuplicates") or []:
            try:
                listed.append((UUID(str(entry.get("id"))), entry.get("similarity", "")))
            except ValueError:
                continue
        if not listed:
            return "—"
        previews = memory_previews(memory_ids=[memory_id for memory_id, _ in listed])
        rows = []
        for memory_id, similarity in listed:
            text, live = previews.get(memory_id, ("(gone)", False))
            rows.append((similarity, memory_link(memory_id, preview(text)), "live" if live else "deleted"))
        return _table(("similarity", "memory", "status"), rows)

    @admin.display(description="associations (co-occurrence)")
    def associations(self, memory):
        rows = memory_associations(memory_id=memory.pk)
        return _table(
            ("strength", "count", "last", "other memory"),
            (
                (
                    f"{row.strength:.2f}",
                    row.co_occurrence_count,
                    f"{row.last_co_occurred_at:%Y-%m-%d %H:%M}",
                    format_html(
                        "{}{}",
                        memory_link(row.other_id, preview(row.other_preview)),
                        "" if row.other_live else " (deleted)",
                    ),
                )
                for row in rows
            ),
        )

    @admin.display(description="merged into this one")
    def merged_here(self, memory):
        variants = (memory.metadata or {}).get("semanticVariants") or []
        merged = memory_merged_variants(memory_id=memory.pk)
        if not merged:
            return f"{len(variants)} semantic variants in metadata" if variants else "—"
        return _table(("memory",), ((memory_link(pk, preview(text)),) for pk, text in merged.items()))

    @admin.display(description="tier changes")
    def promotion_history(self, memory):
        rows = memory_promotions(memory_id=memory.pk)
        return _table(
            ("when", "from", "to", "reason", "accesses", "days idle"),
            (
                (
                    f"{p.created_at:%Y-%m-%d %H:%M:%S}",
                    p.from_tier,
                    p.to_tier,
                    p.reason,
                    p.access_count_at_promotion,
                    "" if p.days_since_last_access is None else f"{p.days_since_last_access:.1f}",
                )
                for p in rows
            ),
        )

    # --- actions ---

    @admin.action(description="Pin (opens every bootstrap, never decays)", permissions=["change"])
    def pin(self, request, queryset):
        count = curation.memories_set_pinned(namespace=None, memory_ids=_ids(queryset), pinned=True)
        self.message_user(request, f"Pinned {count} memories.")

    @admin.action(description="Unpin", permissions=["change"])
    def unpin(self, request, queryset):
        count = curation.memories_set_pinned(namespace=None, memory_ids=_ids(queryset), pinned=False)
        self.message_user(request, f"Unpinned {count} memories.")

    @admin.action(description="Mark as catalyst", permissions=["change"])
    def mark_catalyst(self, request, queryset):
        count = curation.memories_set_catalyst(namespace=None, memory_ids=_ids(queryset), is_catalyst=True)
        self.message_user(request, MESSAGE_MARKED.format(count=count))

    @admin.action(description="Unmark catalyst", permissions=["change"])
    def unmark_catalyst(self, request, queryset):
        count = curation.memories_set_catalyst(namespace=None, memory_ids=_ids(queryset), is_catalyst=False)
        self.message_user(request, MESSAGE_UNMARKED.format(count=count))

    @admin.action(description="Confirm candidate catalyst", permissions=["change"])
    def confirm_candidate(self, request, queryset):
        ids = _ids(queryset.filter(metadata__has_key=catalysts.CANDIDATE_KEY))
        count = catalysts.catalyst_confirm(memory_ids=ids) if ids else 0
        self.message_user(request, MESSAGE_CONFIRMED.format(count=count))

    @admin.action(description="Dismiss candidate catalyst", permissions=["change"])
    def dismiss_candidate(self, request, queryset):
        ids = _ids(queryset.filter(metadata__has_key=catalysts.CANDIDATE_KEY))
        count = catalysts.catalyst_dismiss(memory_ids=ids) if ids else 0
        self.message_user(request, MESSAGE_DISMISSED.format(count=count))

    @admin.action(description="Confirm suggested correction", permissions=["change"])
    def confirm_correction(self, request, queryset):
        """Each selected memory with a suggested correction supersedes the memory it may
        correct (``memories_supersede``), oldest first (so B→A then C→B both hold), each in
        its own transaction: a refused one (already superseded, gone, a cycle) is reported
        and changes nothing; the others are applied."""
        confirmed = 0
        chosen = queryset.filter(metadata__has_key=CORRECTION_CANDIDATE).order_by("created_at", "pk")
        for memory in chosen.only("pk", "namespace", "content", "metadata"):
            reason = None
            older = corrected_id(memory.metadata[CORRECTION_CANDIDATE])
            if older is None:
                reason = "the suggestion names no memory"
            else:
                try:
                    with transaction.atomic():
                        memories_supersede(namespace=memory.namespace, successor_id=memory.pk, predecessor_ids=[older])
                except InvalidSupersessionError as exc:
                    reason = exc.message
                except (SupersessionConflictError, MemoryNotFoundError) as exc:
                    reason = str(exc)
            if reason is None:
                confirmed += 1
                continue
            self.message_user(
                request,
                format_html(
                    MESSAGE_CORRECTION_REFUSED,
                    memory=memory_link(memory.pk, preview(memory.content, 60)),
                    id=memory.pk,
                    reason=reason.rstrip("."),
                ),
                level=messages.WARNING,
            )
        self.message_user(request, MESSAGE_CORRECTIONS_CONFIRMED.format(count=confirmed))

    @admin.action(description="Dismiss suggested correction", permissions=["change"])
    def dismiss_correction(self, request, queryset):
        """The suggestion leaves the metadata and the id it named joins
        ``metadata.correctionDismissed``: consolidation will not suggest that pair again."""
        chosen = _ids(queryset.filter(LIVE, metadata__has_key=CORRECTION_CANDIDATE))
        count = sum(correction_dismiss(memory_id) for memory_id in chosen)
        self.message_user(request, MESSAGE_CORRECTIONS_DISMISSED.format(count=count))

    @admin.action(description="Merge two: fold the newer into the older", permissions=["change"])
    def merge_pair(self, request, queryset):
        try:
            survivor = curation.memories_merge_pair(memory_ids=_ids(queryset))
        except curation.MergeRefusedError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        link = memory_link(survivor.pk, preview(survivor.content, 60))
        self.message_user(request, format_html(MESSAGE_MERGED, survivor=link))

    @admin.action(description="Delete (soft)", permissions=["change"])
    def soft_delete(self, request, queryset):
        count = curation.memories_soft_delete(namespace=None, memory_ids=_ids(queryset))
        self.message_user(request, MESSAGE_SOFT_DELETED.format(count=count))

    @admin.action(description="Restore", permissions=["change"])
    def restore(self, request, queryset):
        outcome = curation.memories_restore(namespace=None, memory_ids=_ids(queryset))
        self.message_user(request, MESSAGE_RESTORED.format(count=len(outcome.restored)))
        if outcome.conflicts:
            ids = ", ".join(str(pk) for pk in outcome.conflicts)
            self.message_user(
                request, MESSAGE_RESTORE_CONFLICTS.format(count=len(outcome.conflicts), ids=ids), level=messages.WARNING
            )
        if outcome.merged:
            ids = ", ".join(str(pk) for pk in outcome.merged)
            self.message_user(
                request, MESSAGE_RESTORE_MERGED.format(count=len(outcome.merged), ids=ids), level=messages.WARNING
            )


def _id_link(value) -> str:
    """A link to the memory ``value`` names, or ``value`` as text when it is no id."""
    try:
        return memory_link(UUID(str(value)), str(value))
    except ValueError:
        return str(value)


def _table(headers, rows) -> str:
    """An HTML table of ``rows`` (each a tuple of cells), or "—" when there are none."""
    rows = list(rows)
    if not rows:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


# --- read-only logs ----------------------------------------------------------------------------


class LogAdmin(ReadOnlyAdmin):
    """A big table of rows the services append: one page read, the count estimated."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100


@admin.register(TierPromotion)
class TierPromotionAdmin(LogAdmin):
    list_display = ("created_at", "memory_column", "from_tier", "to_tier", "reason", "access_count_at_promotion")
    list_filter = ("from_tier", "to_tier")
    raw_id_fields = ("memory",)
    ordering = ("-pk",)  # the primary key follows creation; no sort of the whole table

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(memory_preview=Substr("memory__content", 1, PREVIEW_CHARS))

    @admin.display(description="memory")
    def memory_column(self, promotion):
        return memory_link(promotion.memory_id, preview(promotion.memory_preview))


@admin.register(MemoryAssociation)
class MemoryAssociationAdmin(LogAdmin):
    list_display = ("memory_a_column", "memory_b_column", "co_occurrence_count", "strength", "last_co_occurred_at")
    raw_id_fields = ("memory_a", "memory_b")
    ordering = ("-pk",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                a_preview=Substr("memory_a__content", 1, PREVIEW_CHARS),
                b_preview=Substr("memory_b__content", 1, PREVIEW_CHARS),
            )
        )

    @admin.display(description="memory a")
    def memory_a_column(self, association):
        return memory_link(association.memory_a_id, preview(association.a_preview))

    @admin.display(description="memory b")
    def memory_b_column(self, association):
        return memory_link(association.memory_b_id, preview(association.b_preview))


@admin.register(MemoryAccess)
class MemoryAccessAdmin(LogAdmin):
    list_display = ("accessed_at", "memory_column", "conversation_id")
    raw_id_fields = ("memory",)
    ordering = ("-accessed_at",)  # indexed

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(memory_preview=Substr("memory__content", 1, PREVIEW_CHARS))

    @admin.display(description="memory")
    def memory_column(self, access):
        return memory_link(access.memory_id, preview(access.memory_preview))
