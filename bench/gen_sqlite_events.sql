-- bench/gen_sqlite_events.sql -- fills an events.db that data-storage created
-- (so the schema is its own) with :n synthetic events, straight through
-- SQLite: the 10M-event dashboard measurement (bench/page_ready.sh) cannot
-- wait for 10M events through HTTP on a 2-core machine. Parameters come as
-- a temp table `gen(n, entities, now_us)` made by the caller. The rows look
-- like what the writer stores (record text, kind/state/value, entities table
-- as migration 3 computes it); event_ids are unique but not SHA-256.
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
PRAGMA cache_size=-1500000;
BEGIN;
WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k + 1 < (SELECT n FROM gen)),
r AS (SELECT k,
        (SELECT now_us FROM gen) - 30 * 86400000000 + k * (30 * 86400000000 / (SELECT n FROM gen)) AS t,
        k % (SELECT entities FROM gen) AS e FROM i),
s AS (SELECT k, t,
        CASE WHEN e % 10 = 9 THEN 'binary_sensor.bench_' || e ELSE 'sensor.bench_' || e END AS ent,
        CASE WHEN e % 10 = 9 THEN 'binary_sensor' ELSE 'sensor' END AS dom,
        CASE WHEN e % 10 = 9 THEN (CASE WHEN (k / 7) % 2 THEN 'on' ELSE 'off' END)
             ELSE printf('%.1f', 15 + (k % 200) / 10.0) END AS st FROM r)
INSERT INTO events(id, event_id, time_us, entity_id, domain, event_type, stored_at_us, record, kind, state, value)
SELECT k + 1, printf('%032x', k), t, ent, dom, 'state_changed', t,
       printf('{"event_type":"state_changed","entity_id":"%s","domain":"%s","object_id":"%s","time_fired":"%s","origin":"LOCAL","context_id":"gen-%d","state":"%s","value":%s,"attributes":{"friendly_name":"%s"}}',
              ent, dom, substr(ent, length(dom) + 2), strftime('%Y-%m-%dT%H:%M:%fZ', t / 1000000.0, 'unixepoch'), k, st,
              CASE WHEN st = 'on' THEN '1.0' WHEN st = 'off' THEN '0.0' ELSE st END, ent),
       1, st, CASE WHEN st GLOB '*[0-9]*' THEN CAST(st AS REAL) END
FROM s;
INSERT INTO entities(entity_id, domain, event_count, last_time_us)
  SELECT entity_id, max(domain), count(*), max(time_us) FROM events WHERE entity_id IS NOT NULL GROUP BY entity_id;
UPDATE entities SET (last_state, state_time_us) = (SELECT state, time_us FROM events
    WHERE entity_id = entities.entity_id AND kind = 1 ORDER BY time_us DESC, id DESC LIMIT 1),
  numeric = EXISTS (SELECT 1 FROM events WHERE entity_id = entities.entity_id AND kind = 1 AND value IS NOT NULL);
UPDATE entities SET last_changed_us = (SELECT min(time_us) FROM events s
    WHERE s.entity_id = entities.entity_id AND s.kind = 1 AND s.time_us > coalesce((SELECT max(time_us)
    FROM events t WHERE t.entity_id = entities.entity_id AND t.kind = 1
    AND t.state IS NOT entities.last_state), -1)) WHERE state_time_us IS NOT NULL;
COMMIT;
PRAGMA journal_mode=WAL;
