"""The figures of `bench.run`: its rows, with the DESIGN.md §5 targets they are checked against
(the DIMSE, pixel and memory scenarios' rows are built by their modules)."""

from __future__ import annotations

from typing import Any

from bench import dimse, memory, pixels
from bench.report import Row, Target, latency_row

STOW_BATCH = 50
NON_DURABLE = "Hounsfield (durable=false)"

TARGETS = {
    "stow": Target("≥ 300 inst/s", at_least=300),
    "qido": Target("p50 ≤ 5 ms, p95 ≤ 15 ms (at 100k studies)", at_most=5, p95_at_most=15),
    "metadata": Target("≤ 20 ms, ≥ 30× Orthanc", at_most=20, min_ratio=30),
}


def rows(d: dict[str, Any], *, partial: bool = False) -> list[Row]:
    """The report's rows from a run's details; `partial` (--only, --only-scale): only what ran."""
    sizes = d["sizes"]
    rows: list[Row] = []
    stow = d.get("stow", {})

    def rate(name: str) -> float | None:
        value = stow.get(name, {}).get("rate")
        return float(value) if value else None

    batch = sizes["stow_batch"]
    if not partial or "stow" in d:
        rows.append(
            Row(
                "stow_ct",
                f"STOW-RS ingest, 512² CT, batches of {batch}, durable"
                + (
                    f", median of {sizes['stow_rounds']} rounds" if sizes["stow_rounds"] > 1 else ""
                ),
                "inst/s",
                "higher",
                rate("Hounsfield"),
                rate("Orthanc"),
                TARGETS["stow"],
            )
        )
    if NON_DURABLE in stow:
        rows.append(
            Row(
                "stow_ct_nondurable",
                f"STOW-RS ingest, 512² CT, batches of {batch}, HOUNSFIELD_DURABLE=false",
                "inst/s",
                "higher",
                rate(NON_DURABLE),
                rate("Orthanc"),
                note="Orthanc as above",
            )
        )
    mr = d.get("stow_mr")
    if mr is not None or not partial:
        mr = mr or {}
        rows.append(
            Row(
                "stow_mr",
                f"STOW-RS ingest, 256² MR, batches of {batch}",
                "inst/s",
                "higher",
                mr.get("Hounsfield", {}).get("rate"),
                mr.get("Orthanc", {}).get("rate"),
                TARGETS["stow"],
            )
        )
    load = d.get("qido_load", {})
    if load:
        rows.append(
            Row(
                "stow_tiny",
                f"STOW-RS ingest, 8×8 instances, batches of {STOW_BATCH} (query set)",
                "inst/s",
                "higher",
                load.get("Hounsfield", {}).get("rate"),
                load.get("Orthanc", {}).get("rate"),
            )
        )
    labels = d.get("qido_labels", {})
    qido = d.get("qido", {})
    for key, label in labels.items() if qido else ():
        rows.append(
            latency_row(
                f"qido_{key}",
                f"QIDO-RS {label}, {qido.get('studies', 0):,} studies",
                qido.get("Hounsfield", {}).get(key),
                qido.get("Orthanc", {}).get(key),
                TARGETS["qido"],
            )
        )
    scale = d.get("qido_scale")
    if scale:
        for key, label in labels.items():
            rows.append(
                latency_row(
                    f"qido_scale_{key}",
                    f"QIDO-RS {label}, {scale['studies']:,} studies / "
                    f"{scale['instances']:,} instances",
                    scale["Hounsfield"].get(key),
                    None,
                    TARGETS["qido"],
                    note="Hounsfield only",
                )
            )
    meta = d.get("metadata", {})
    measured = not partial or "metadata" in d
    encodings = (("identity", TARGETS["metadata"]), ("gzip", None)) if measured else ()
    for encoding, target in encodings:
        rows.append(
            latency_row(
                f"metadata_{encoding}",
                f"WADO-RS series metadata, {sizes['ct_slices']} instances"
                + (", gzip" if encoding == "gzip" else ""),
                meta.get(f"Hounsfield/{encoding}"),
                meta.get(f"Orthanc/{encoding}"),
                target,
            )
        )
    rows += dimse.rows(d, sizes["ct_slices"])
    rows += pixels.rows(d, expected=not partial)
    rows += memory.rows(d, expected=not partial)
    return rows
