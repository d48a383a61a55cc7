-- Studies of a partition in key order, with their patient: a paged study search whose only
-- condition is a name that matches many studies ("DOE*") walks this index in key order and
-- stops after the page, instead of collecting and sorting every matching study (see
-- adapters/index/sql/query.py: walk_probe, and ADR 0005). Narrow: about 20 bytes a study.

CREATE INDEX studies_in_order ON studies (partition, pk, patient_pk);

-- Fixed statistics like those of 0002 (one partition, keys unique): without them SQLite
-- would take the new index for every study search and drive by it instead of the name,
-- date or modality index. A database that ran ANALYZE keeps its measured rows for the
-- other indexes.
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT 'studies', 'studies_in_order', '1000000 1000000 1 1'
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE idx = 'studies_in_order');
