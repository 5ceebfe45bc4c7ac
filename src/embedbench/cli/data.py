"""`embedbench data fetch NAME...` and `embedbench data list`: the local suites' datasets, fetched from pinned sources.

Thin: the pinned table is `embedbench.data.sources`, the download `embedbench.data.fetch`. Only the light
table is imported at parser build time, so `embedbench --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from embedbench.data.locations import default_data_dir
from embedbench.data.sources import DATA_SOURCES, find_source
from embedbench.errors import EmbedbenchError

_DATA_DIR_HELP = "the data folder the local suites read (default: $EMBEDBENCH_DATA_DIR)"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `fetch` and `list` under `parser` (the `data` subparser of the embedbench CLI)."""
    what = parser.add_subparsers(dest="data_command", required=True, parser_class=type(parser),
                                 metavar="{fetch,list}")
    fetch = what.add_parser(
        "fetch", help="download datasets of the local suites into the data folder",
        description="Download each named dataset from its pinned public URL into DATA_DIR/<folder>, checking "
                    "every file's sha256; the folder appears only when all files arrived intact (a mismatch "
                    "or an interrupted download leaves nothing behind). Progress bars (on a terminal) go to "
                    "stderr; -q hides them.")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=f"datasets to fetch: {', '.join(DATA_SOURCES)}")
    fetch.add_argument("--data-dir", help=_DATA_DIR_HELP)
    fetch.add_argument("--mirror", metavar="URL_OR_DIR",
                       help="read <mirror>/<folder>/<file> instead of the pinned URLs: a copy of a data folder "
                            "served over http(s), or a local folder; checksums still apply "
                            "(default: $EMBEDBENCH_DATA_MIRROR)")
    fetch.add_argument("--force", action="store_true",
                       help="download again and replace the folder even when the dataset is present")
    ls = what.add_parser(
        "list", help="per dataset: present or not (and where), the suites that use it, its source",
        description="One row per dataset `data fetch` knows: whether it is in the data folder (and where), "
                    "which suites read it, its pinned source and license.")
    ls.add_argument("--data-dir", help=_DATA_DIR_HELP)
    ls.add_argument("--format", default="table", choices=["table", "json"],
                    help="json: also every file's URL, sha256 and size")


def data_command(args: argparse.Namespace, argv: list[str]) -> int:
    from embedbench.data.fetch import default_mirror, fetch_dataset
    from embedbench.engine.progress import progress_bars  # -q turns the bars off, as for eval

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    if args.data_command == "list":
        from embedbench.cli.listing import format_rows

        print(format_rows(data_rows(data_dir, full=args.format == "json"), args.format))
        return 0
    sources = [find_source(name) for name in dict.fromkeys(args.names)]  # every name checked before any download
    if data_dir is None:
        raise EmbedbenchError("no data folder: set EMBEDBENCH_DATA_DIR or pass --data-dir "
                              "(the folder the local suites read)")
    for source in sources:
        outcome = fetch_dataset(source, data_dir, mirror=args.mirror or default_mirror(), force=args.force,
                                progress=progress_bars())
        if outcome.fetched:
            print(f"{source.name}: fetched {outcome.files} files ({outcome.bytes / 1e6:.1f} MB) into {outcome.folder}")
        else:
            print(f"{source.name}: already present in {outcome.folder} (--force fetches it again)")
    return 0


def data_rows(data_dir: Path | None, *, full: bool = False) -> list[dict[str, object]]:
    """One row per known dataset; `path` is where it is (or would be) read from."""
    from embedbench.data.fetch import dataset_state, suites_by_folder

    rows = []
    using = suites_by_folder()
    for source in DATA_SOURCES.values():
        suites = using.get(source.folder, [])
        state = dataset_state(source, data_dir) if data_dir is not None else None
        row: dict[str, object] = {
            "dataset": source.name,
            "status": state.status if state else "no data folder set",
            "path": str(state.folder) if state else f"$EMBEDBENCH_DATA_DIR/{source.folder}",
            "suites": suites if full else ", ".join(suites),
            "source": source.source_url,
        }
        if full:
            row["license"] = source.license
            row["files"] = [{"path": f.path, "url": f.url, "sha256": f.sha256, "size": f.size, "extract": f.extract}
                            for f in source.files]
        rows.append(row)
    return rows
