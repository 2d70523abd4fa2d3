"""``manage.py reembed``: move every stored vector to another model or dimension (SPEC §4, §7).

The new space is built beside the old one and switched in one transaction
(``memories.services.reembedding``); the service keeps answering meanwhile. An
interrupted run is continued by running the same command again. At the end it prints
the settings every web and worker process must be restarted with.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.embeddings import EmbeddingError
from memories.services.reembedding import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAINTENANCE_WORK_MEM,
    SHADOW_TABLE,
    ReembedError,
    embedding_target,
    embeddings_reembed,
    reembed_abandon,
)


class Command(BaseCommand):
    help = "Re-embed every memory into a new embedding space (model and/or dimension), resumably."

    def add_arguments(self, parser):
        parser.add_argument("--provider", choices=["local", "openai"], help="the provider of the new space")
        parser.add_argument("--model", help="model id of the new space (stored per vector)")
        parser.add_argument("--dimensions", type=int, help="vector dimension of the new space")
        parser.add_argument("--base-url", help="OpenAI-compatible base URL (default: ANIMA_OPENAI_BASE_URL)")
        parser.add_argument("--api-key", help="key for that server (default: ANIMA_OPENAI_API_KEY)")
        parser.add_argument(
            "--send-dimensions",
            action="store_true",
            default=None,
            help="send 'dimensions' in each request (default: only for text-embedding-3* models)",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="texts per provider call")
        parser.add_argument(
            "--maintenance-work-mem",
            default=DEFAULT_MAINTENANCE_WORK_MEM,
            help="PostgreSQL maintenance_work_mem for the index builds (default %(default)s)",
        )
        parser.add_argument(
            "--limit-batches",
            type=int,
            help="stop after this many provider calls, before the switch (a later run continues)",
        )
        parser.add_argument("--abandon", action="store_true", help=f"drop {SHADOW_TABLE} of an unfinished run and stop")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        try:
            if options["abandon"]:
                existed = reembed_abandon()
                self.stdout.write(f"dropped {SHADOW_TABLE}" if existed else f"no {SHADOW_TABLE}: nothing to abandon")
                return
            self._reembed(**options)
        except ReembedError as exc:
            raise CommandError(str(exc)) from None

    def _reembed(self, *, provider, model, dimensions, base_url, api_key, send_dimensions, batch_size,
                 maintenance_work_mem, limit_batches, no_progress, **options):  # fmt: skip
        required = (("--provider", provider), ("--model", model), ("--dimensions", dimensions))
        missing = [flag for flag, value in required if value is None]
        if missing:
            raise CommandError(f"{', '.join(missing)} required (or --abandon)")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        target = embedding_target(
            provider=provider,
            model_id=model,
            dimensions=dimensions,
            base_url=base_url,
            api_key=api_key,
            send_dimensions=send_dimensions,
        )
        try:
            embedder = target.build_provider()
        except EmbeddingError as exc:
            raise CommandError(str(exc)) from None

        def progress(**kwargs):
            return tqdm(disable=no_progress, file=self.stderr, **kwargs)

        try:
            result = embeddings_reembed(
                provider=embedder,
                batch_size=batch_size,
                max_batches=limit_batches,
                maintenance_work_mem=maintenance_work_mem,
                progress=progress,
            )
        except EmbeddingError as exc:
            raise CommandError(
                f"the embedding provider failed: {exc}. Nothing was switched; the service still uses the old "
                "space. Run the same command again to continue where it stopped."
            ) from None
        space = f"{result.model_id} ({result.dimensions} dimensions)"
        if result.already_in_target:
            self.stdout.write(self.style.SUCCESS(f"every memory is already embedded with {space}; nothing to do"))
        elif not result.switched:
            self.stdout.write(
                self.style.WARNING(
                    f"stopped after {result.batches} batches: {result.already_done + result.embedded} of "
                    f"{result.total} memories embedded with {space}; not switched yet. "
                    "Run the same command again to continue."
                )
            )
            return
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"switched to {space}: {result.total} memories — {result.already_done} from an earlier run or "
                    f"the live table, {result.embedded} embedded now ({result.caught_up} caught up after the "
                    f"index build, {result.stragglers} under the switch lock); index build "
                    f"{result.index_seconds:.1f} s, switch {result.switch_seconds:.2f} s"
                )
            )
        self.stdout.write("Start every web and worker process with:")
        for name, value in target.environment().items():
            self.stdout.write(f"  {name}={value}")
        self.stdout.write(
            "Until they restart, processes with the old settings fail their queries and adds (another dimension) "
            "or find nothing (another model); the system check refuses the old settings."
        )
