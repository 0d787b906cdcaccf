-- Each chunk of metric points keeps the lowest, highest and last (highest step) of its finite
-- values, NULL when it has none: the summary's best value and the spans imputation reads take
-- them from the chunks instead of unnesting every point, so they cost a series' chunks, not its
-- points. Every write of a chunk sets them in the same statement (`postgres/chunks.rs`).
--
-- Three doubles add 24 bytes to a row: a full chunk (78 points, a NaN among them) stays at
-- most about 2,024 bytes, still under the 2,032 above which PostgreSQL compresses or moves
-- values out of line.
ALTER TABLE metric_chunks
    ADD COLUMN vmin DOUBLE PRECISION,
    ADD COLUMN vmax DOUBLE PRECISION,
    ADD COLUMN vlast DOUBLE PRECISION;

UPDATE metric_chunks c SET vmin = a.lo, vmax = a.hi, vlast = a.last
    FROM (SELECT k.series, k.first_step, MIN(u.v) AS lo, MAX(u.v) AS hi,
                 (array_agg(u.v ORDER BY u.s DESC))[1] AS last
          FROM metric_chunks k CROSS JOIN LATERAL UNNEST(k.steps, k.vals) AS u(s, v)
          WHERE u.v BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308
          GROUP BY k.series, k.first_step) a
    WHERE c.series = a.series AND c.first_step = a.first_step;
