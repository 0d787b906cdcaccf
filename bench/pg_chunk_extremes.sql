-- The best value and the last finite value of a 100,000-point series (10 series in chunks of 78), from
-- the points unnested (before migration 0013) and from the per-chunk extremes (after), three
-- times each; run in an empty database: psql -d DB -f bench/pg_chunk_extremes.sql
CREATE TABLE metric_chunks (series BIGINT NOT NULL, first_step BIGINT NOT NULL, last_step BIGINT NOT NULL, steps BIGINT[] NOT NULL, vals DOUBLE PRECISION[] NOT NULL, times BIGINT[] NOT NULL, vmin DOUBLE PRECISION, vmax DOUBLE PRECISION, vlast DOUBLE PRECISION, PRIMARY KEY (series, first_step));
INSERT INTO metric_chunks SELECT s, c * 78, c * 78 + 77, array_agg(g ORDER BY g), array_agg(sin(g) ORDER BY g), array_agg(g ORDER BY g), MIN(sin(g)), MAX(sin(g)), (array_agg(sin(g) ORDER BY g DESC))[1]
  FROM generate_series(1, 10) s, generate_series(0::bigint, 99999) g, LATERAL (SELECT g / 78 AS c) k GROUP BY s, c;
ANALYZE metric_chunks;
\timing on
SELECT MIN(u.v) FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals) AS u(s, v) WHERE c.series = 3 AND u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308;
SELECT MIN(u.v) FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals) AS u(s, v) WHERE c.series = 3 AND u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308;
SELECT MIN(u.v) FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals) AS u(s, v) WHERE c.series = 3 AND u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308;
SELECT MIN(vmin) FROM metric_chunks WHERE series = 3 AND vmin IS NOT NULL;
SELECT MIN(vmin) FROM metric_chunks WHERE series = 3 AND vmin IS NOT NULL;
SELECT MIN(vmin) FROM metric_chunks WHERE series = 3 AND vmin IS NOT NULL;
SELECT (SELECT u.v FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals) AS u(s, v) WHERE c.series = 3 AND u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308 ORDER BY u.s DESC LIMIT 1);
SELECT (SELECT u.v FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals) AS u(s, v) WHERE c.series = 3 AND u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308 ORDER BY u.s DESC LIMIT 1);
SELECT (SELECT vlast FROM metric_chunks WHERE series = 3 AND vmin IS NOT NULL ORDER BY first_step DESC LIMIT 1);
SELECT (SELECT vlast FROM metric_chunks WHERE series = 3 AND vmin IS NOT NULL ORDER BY first_step DESC LIMIT 1);
