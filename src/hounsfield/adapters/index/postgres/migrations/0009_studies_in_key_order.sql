-- Study keys in order for paged name searches (adapters/index/sql/query.py: walk_probe, and
-- ADR 0005). Both indexes are read index-only: unlike SQLite's, a PostgreSQL index does not
-- hold the row's primary key, so without them every candidate costs a heap fetch.
--
-- A name that matches many studies ("DOE*") walks the studies of the partition in key order,
-- tests each patient against the hashed set of matching patients and stops after the page:
CREATE INDEX studies_in_order ON studies (partition, pk) INCLUDE (patient_pk);

-- A name that matches few collects the studies of each matching patient and sorts their
-- keys; the keys now come from the index (a heap fetch per study cost 2-5 us warm, a disk
-- read cold). Same key columns as before, so every other use of the index is unchanged.
DROP INDEX studies_patient;
CREATE INDEX studies_patient ON studies (patient_pk, partition) INCLUDE (pk);
