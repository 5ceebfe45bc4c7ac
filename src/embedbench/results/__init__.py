"""Results: the typed, versioned Result and its files, one reader/scanner, text tables, the mteb export.

The bottom layer: report, gate and the engine read and write results only through this package.

    model.py        Result, Provenance, a result's identity
    store.py        where result files live, write_result, the one reader (scan_results, read_results,
                    read_per_query)
    table.py        `embedbench results` as json / csv / table
    mteb_export.py  results of mteb tasks in mteb's own layout
"""

from embedbench.results.model import GZIP_SUFFIX, PER_QUERY_SUFFIX, SCHEMA_VERSION, Provenance, Result
from embedbench.results.store import (
    check_results_dir,
    load_per_query_file,
    per_query_path,
    read_per_query,
    read_results,
    result_path,
    scan_results,
    write_result,
)

__all__ = [
    "GZIP_SUFFIX", "PER_QUERY_SUFFIX", "SCHEMA_VERSION", "Provenance", "Result", "check_results_dir",
    "load_per_query_file", "per_query_path", "read_per_query", "read_results", "result_path", "scan_results",
    "write_result",
]
