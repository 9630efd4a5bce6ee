-- Version 16: reports that change nothing stay cheap, and searches use an index.
--
-- A device's last inventory report, hashed: an upload identical to it only refreshes
-- `inventory_ts`. Anything else that writes the inventory scope clears it.
ALTER TABLE devices ADD COLUMN inventory_hash TEXT;
-- The device's creation time on each of its attributes, so that the index below is kept
-- without reading the device (which a cascading deletion has already removed).
ALTER TABLE device_attributes ADD COLUMN created_ts INTEGER NOT NULL DEFAULT 0;
UPDATE device_attributes SET created_ts = (SELECT d.created_ts FROM devices d WHERE d.id = device_id);

-- An index of attribute values, so that filters and sorting seek instead of examining every
-- device of the tenant: the `inventory` and `tags` scopes, the identity data with the
-- admission status (`identity.status`, also `system.status`), and `system.group`.
--
-- One row per value: a scalar gives one row, an array one row per element (as `json_each`
-- yields them, which is what the filter language compares). `v` has no declared type, so it
-- keeps SQLite's own type of the value: numbers stay numbers and sort before all text, as the
-- unindexed comparison types them. `created_ts` is the device's: within one value the rows are
-- in the devices' default order (oldest first), so a page of an `$eq` match is read straight
-- off the index. `first` marks a scalar or an array's first element, the value a device sorts
-- by. Triggers keep the table in step, including the rows a device's deletion cascades into.
CREATE TABLE attribute_values (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    v          NOT NULL,
    created_ts INTEGER NOT NULL,
    device_id  TEXT NOT NULL,
    first      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, name, v, created_ts, device_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
    SELECT a.tenant_id, a.scope, a.name, e.value, a.created_ts, a.device_id, (e.key IS NULL OR e.key = 0)
        FROM device_attributes a, json_each(a.value) e;
INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
    SELECT d.tenant_id, 'identity', o.key, e.value, d.created_ts, d.id, (e.key IS NULL OR e.key = 0)
        FROM devices d, json_each(d.identity) o,
             json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
        WHERE o.type IN ('text', 'integer', 'real', 'array') AND e.type IN ('text', 'integer', 'real')
    UNION ALL SELECT d.tenant_id, 'identity', 'status', d.status, d.created_ts, d.id, 1 FROM devices d
    UNION ALL SELECT d.tenant_id, 'system', 'group', d.group_name, d.created_ts, d.id, 1 FROM devices d
        WHERE d.group_name IS NOT NULL;

CREATE TRIGGER attribute_values_insert AFTER INSERT ON device_attributes BEGIN
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, NEW.scope, NEW.name, e.value, NEW.created_ts, NEW.device_id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.value) e;
END;
CREATE TRIGGER attribute_values_delete AFTER DELETE ON device_attributes BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, OLD.scope, OLD.name, e.value, OLD.created_ts, OLD.device_id
            FROM json_each(OLD.value) e);
END;
CREATE TRIGGER attribute_values_update AFTER UPDATE OF value ON device_attributes
    WHEN OLD.value IS NOT NEW.value BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, OLD.scope, OLD.name, e.value, OLD.created_ts, OLD.device_id
            FROM json_each(OLD.value) e);
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, NEW.scope, NEW.name, e.value, NEW.created_ts, NEW.device_id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.value) e;
END;
CREATE TRIGGER attribute_values_device_insert AFTER INSERT ON devices BEGIN
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, 'identity', o.key, e.value, NEW.created_ts, NEW.id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.identity) o,
             json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
        WHERE o.type IN ('text', 'integer', 'real', 'array') AND e.type IN ('text', 'integer', 'real')
    UNION ALL SELECT NEW.tenant_id, 'identity', 'status', NEW.status, NEW.created_ts, NEW.id, 1
    UNION ALL SELECT NEW.tenant_id, 'system', 'group', NEW.group_name, NEW.created_ts, NEW.id, 1
        WHERE NEW.group_name IS NOT NULL;
END;
CREATE TRIGGER attribute_values_device_update
    AFTER UPDATE OF identity, status, group_name, tenant_id ON devices BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, 'identity', o.key, e.value, OLD.created_ts, OLD.id
                FROM json_each(OLD.identity) o,
                     json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
            UNION ALL SELECT OLD.tenant_id, 'identity', 'status', OLD.status, OLD.created_ts, OLD.id
            UNION ALL SELECT OLD.tenant_id, 'system', 'group', OLD.group_name, OLD.created_ts, OLD.id);
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, 'identity', o.key, e.value, NEW.created_ts, NEW.id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.identity) o,
             json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
        WHERE o.type IN ('text', 'integer', 'real', 'array') AND e.type IN ('text', 'integer', 'real')
    UNION ALL SELECT NEW.tenant_id, 'identity', 'status', NEW.status, NEW.created_ts, NEW.id, 1
    UNION ALL SELECT NEW.tenant_id, 'system', 'group', NEW.group_name, NEW.created_ts, NEW.id, 1
        WHERE NEW.group_name IS NOT NULL;
END;
CREATE TRIGGER attribute_values_device_delete AFTER DELETE ON devices BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, 'identity', o.key, e.value, OLD.created_ts, OLD.id
                FROM json_each(OLD.identity) o,
                     json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
            UNION ALL SELECT OLD.tenant_id, 'identity', 'status', OLD.status, OLD.created_ts, OLD.id
            UNION ALL SELECT OLD.tenant_id, 'system', 'group', OLD.group_name, OLD.created_ts, OLD.id);
END;
