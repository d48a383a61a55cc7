"""The committed instances of a study, or of one of its series, or one instance: the scope of a
WADO-RS retrieve or a DELETE (PS3.18 10.4), written once for both index adapters."""

from __future__ import annotations


def narrowed(series_uid: str | None, sop_uid: str | None) -> tuple[str, list[object]]:
    """The conditions (`?` placeholders) that narrow instances `i` joined with their series
    `se` to one series and one SOP instance, where given."""
    sql = ""
    params: list[object] = []
    if series_uid is not None:
        sql += " AND se.series_uid = ?"
        params.append(series_uid)
    if sop_uid is not None:
        sql += " AND i.sop_uid = ?"
        params.append(sop_uid)
    return sql, params


def scoped_instances_sql(
    placeholder: str,
    columns: str,
    partition: str,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
) -> tuple[str, list[object]]:
    """Committed instances in scope, by series then instance number (then arrival), with the
    driver's `placeholder` ("?" for sqlite3, "%s" for psycopg)."""
    narrow, extra = narrowed(series_uid, sop_uid)
    sql = (
        f"SELECT {columns} FROM instances i"  # noqa: S608
        " JOIN studies s ON s.pk = i.study_pk JOIN series se ON se.pk = i.series_pk"
        " WHERE s.partition = ? AND s.study_uid = ? AND i.partition = ?"
        f" AND i.state = 'committed'{narrow}"
        " ORDER BY se.series_number IS NULL, se.series_number, se.pk,"
        " i.instance_number IS NULL, i.instance_number, i.pk"
    )
    return sql.replace("?", placeholder), [partition, study_uid, partition, *extra]
