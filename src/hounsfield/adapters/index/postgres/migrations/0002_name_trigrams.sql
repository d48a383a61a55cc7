-- Trigram indexes on the folded names (pg_trgm), for name wild cards without a literal
-- prefix ("*SMITH*"), which a B-tree cannot serve (DESIGN.md §4).
--
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner can create it, but a
-- role without CREATE on the database cannot, and a server without the contrib package has
-- none. The archive works the same without these indexes (such searches scan the name
-- tables), so a failure to create the extension is reported as a NOTICE, not an error.
-- The extension lives in `public` (or wherever it already is), never in the archive's own
-- schema, so it is shared by every schema of the database.

DO $$
DECLARE
    home text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%): name searches without a prefix scan', SQLERRM;
    END;
    SELECT n.nspname INTO home
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF home IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX patient_names_trgm ON patient_names USING gin (fold %I.gin_trgm_ops)',
            home);
        EXECUTE format(
            'CREATE INDEX study_names_trgm ON study_names USING gin (fold %I.gin_trgm_ops)',
            home);
    END IF;
END
$$;
