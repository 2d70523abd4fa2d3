"""Keep ``memories_tiercount`` exact with triggers.

Bootstrap's distribution and the metrics read a few counter rows instead of counting a
namespace. The trigger fires only when a row enters or leaves a (namespace, tier) bucket
of live memories: inserts, deletes, and updates that change tier, namespace or
``deleted_at``. Counter rows are upserted, so a new namespace needs no set-up.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION memories_tiercount_bump(ns text, t text, delta bigint) RETURNS void AS $$
BEGIN
    INSERT INTO memories_tiercount (namespace, tier, count) VALUES (ns, t, delta)
    ON CONFLICT (namespace, tier) DO UPDATE SET count = memories_tiercount.count + EXCLUDED.count;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION memories_tiercount_trigger() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        PERFORM memories_tiercount_bump(OLD.namespace, OLD.tier, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.deleted_at IS NULL THEN
        PERFORM memories_tiercount_bump(NEW.namespace, NEW.tier, 1);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER memories_tiercount_insert_delete
    AFTER INSERT OR DELETE ON memories_memory
    FOR EACH ROW EXECUTE FUNCTION memories_tiercount_trigger();

CREATE TRIGGER memories_tiercount_update
    AFTER UPDATE OF tier, namespace, deleted_at ON memories_memory
    FOR EACH ROW
    WHEN (OLD.tier IS DISTINCT FROM NEW.tier
          OR OLD.namespace IS DISTINCT FROM NEW.namespace
          OR (OLD.deleted_at IS NULL) IS DISTINCT FROM (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION memories_tiercount_trigger();

INSERT INTO memories_tiercount (namespace, tier, count)
SELECT namespace, tier, count(*) FROM memories_memory WHERE deleted_at IS NULL GROUP BY namespace, tier
ON CONFLICT (namespace, tier) DO UPDATE SET count = EXCLUDED.count;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS memories_tiercount_update ON memories_memory;
DROP TRIGGER IF EXISTS memories_tiercount_insert_delete ON memories_memory;
DROP FUNCTION IF EXISTS memories_tiercount_trigger();
DROP FUNCTION IF EXISTS memories_tiercount_bump(text, text, bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("memories", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
