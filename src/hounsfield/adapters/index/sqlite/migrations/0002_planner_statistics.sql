-- Fixed query planner statistics (https://sqlite.org/fileformat2.html#stat1tab).
--
-- Without statistics SQLite assumes an equality on any indexed column is selective, so
-- `partition = ?` (true of every row in a one-tenant archive) drives a scan of the whole
-- studies table followed by a sort, instead of the PatientID, name or date index. These rows
-- describe the shape of a large archive (ratios matter, not absolute numbers): ~2.5 studies
-- per patient, ~3 series per study, ~10 instances per series, one partition, ~300 studies a
-- day, UIDs and accession numbers unique. Plans then stay the same from the first study to
-- the millionth. Running ANALYZE later replaces them with measured figures, which is fine.

ANALYZE;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('patients', 'sqlite_autoindex_patients_1', '400000 400000 1 1'),
    ('patients', 'patients_id', '400000 400000 1'),
    ('patients', 'patients_irregular', '10 10'),
    ('patient_names', 'patient_names', '500000 1 1 1'),
    ('patient_names', 'patient_names_fold', '500000 500000 250000 2'),
    ('studies', 'sqlite_autoindex_studies_1', '1000000 1000000 1'),
    ('studies', 'studies_patient', '1000000 3 3'),
    ('studies', 'studies_date', '1000000 1000000 300'),
    ('studies', 'studies_accession', '1000000 1000000 1'),
    ('studies', 'studies_study_id', '1000000 1000000 100'),
    ('studies', 'studies_updated', '1000000 1000000 1'),
    ('studies', 'studies_irregular', '10 10'),
    ('study_names', 'study_names', '1000000 1 1 1'),
    ('study_names', 'study_names_fold', '1000000 1000000 500000 50'),
    ('study_modalities', 'study_modalities', '1200000 2 1'),
    ('study_modalities', 'study_modalities_modality', '1200000 1200000 200000 1'),
    ('series', 'sqlite_autoindex_series_1', '3000000 3000000 1'),
    ('series', 'series_study', '3000000 3 3'),
    ('series', 'series_modality', '3000000 3000000 500000'),
    ('series', 'series_updated', '3000000 3000000 1'),
    ('series', 'series_irregular', '10 10'),
    ('instances', 'sqlite_autoindex_instances_1', '30000000 30000000 1'),
    ('instances', 'instances_series', '30000000 10 10 10'),
    ('instances', 'instances_study', '30000000 30'),
    ('instances', 'instances_pending', '10 1'),
    ('instance_metadata', NULL, '30000000');
