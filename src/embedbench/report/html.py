"""leaderboard.html: one self-contained page (inline CSS and script, loads nothing), sortable by
any column, filterable by suite and precision, every number carrying its provenance (hover title
and an expandable details row). The page's state is kept in the URL fragment, e.g.
`leaderboard.html#sort=MyTask:desc&suite=default&precision=int8`, so a view can be shared. Scores
carry the leaderboard's marks († on the model's training data, ? unknown, ‡ other data), explained
in the notes and, for each number, in its tooltip and details row."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from embedbench.atomic import atomic_write_text
from embedbench.report import fmt
from embedbench.report.assets import CSS, ERROR_HOOK, SCRIPT
from embedbench.report.grid import PRECISION_ORDER
from embedbench.report.fmt import ABSENT, ABSENT_NOTE
from embedbench.report.leaderboard import OTHER_DATA, OTHER_DATA_NOTE, Cell, Column, Leaderboard, legend
from embedbench.report.reference import NOTES, REPORTED, SOURCE
from embedbench.results import Result

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
FIXED = [("model", "model", "text"), ("revision", "revision", "text"), ("precision", "precision", "text"),
         ("dim", "dim", "num"), ("bytes_per_vector", "bytes/vector", "num")]


def e(text: object) -> str:
    return escape(str(text), quote=True)


def code_version(r: Result) -> str:
    p = r.provenance
    return f"embedbench {p.embedbench_version} @ {p.git_commit or 'unknown commit'}"


def provenance_lines(r: Result) -> list[str]:
    p = r.provenance
    return [f"model revision: {r.revision}", f"dataset hash: {p.dataset_hash}", f"code: {code_version(r)}",
            f"date: {p.created_at}"]


def training_line(r: Result) -> str:
    """Whether the result's task is in the model's training data, and who says so."""
    if r.zero_shot is None:
        return "training data unknown (not recorded for this model or result)"
    said = f" (per {r.provenance.training_data_source})" if r.provenance.training_data_source else ""
    return ("zero-shot" if r.zero_shot else f"in training data: {', '.join(r.training_overlap)}") + said


def _cell_title(col: Column, cell: Cell) -> str:
    if cell.absent:
        r = cell.results[0]
        return "\n".join([f"{r.main_score_name}: {ABSENT_NOTE}", f"variant: {r.variant_label()}",
                          *provenance_lines(r)])
    if cell.value is None:
        return cell.note or "no result"
    if col.kind == "task":
        r = cell.results[0]
        lines = [f"{r.main_score_name} = {cell.value:.4f}"]
        if cell.ci:
            lines.append(f"95% bootstrap CI [{cell.ci[0]:.4f}, {cell.ci[1]:.4f}] over {r.n_queries} queries")
        return "\n".join(lines + [f"quantization: {r.quantization}", training_line(r)] + provenance_lines(r))
    lines = [f"{col.label} = {cell.value:.4f}, mean of {len(cell.results)} task(s):"]
    lines += [f"  {r.task}: {r.main_score:.4f} (dataset {r.provenance.dataset_hash[:12]}, {r.provenance.created_at})"
              for r in cell.results]
    lines.append(cell.training.describe())
    lines += [f"model revision: {cell.results[0].revision}",
              f"code: {'; '.join(sorted({code_version(r) for r in cell.results}))}"]
    return "\n".join(lines)


def _score_td(col: Column, cell: Cell) -> str:
    suite = e(col.suite)
    if cell.value is None:
        shown = ABSENT if cell.absent else "n/a" if cell.note else ""
        return f'<td class="num blank" data-key="{e(col.key)}" data-suite="{suite}" data-value="" ' \
               f'title="{e(_cell_title(col, cell))}">{shown}</td>'
    text = fmt.score(cell.value)
    inner = f'<strong class="best" title="best in column">{text}</strong>' if cell.best else text
    if cell.other_data:
        inner += f'<span class="flag" title="{e(OTHER_DATA_NOTE)}"> {OTHER_DATA}</span>'
    mark = cell.training.mark(col.kind)
    if mark:
        why = training_line(cell.results[0]) if col.kind == "task" else cell.training.describe()
        inner += f'<span class="flag zs" title="{e(why)}">{e(mark)}</span>'
    if cell.ci:
        inner += f'<span class="ci">[{cell.ci[0]:.4f}, {cell.ci[1]:.4f}]</span>'
    return (f'<td class="num" data-key="{e(col.key)}" data-suite="{suite}" data-value="{cell.value!r}" '
            f'title="{e(_cell_title(col, cell))}">{inner}</td>')


def _details(lb: Leaderboard, i: int, ncols: int) -> str:
    lr = lb.rows[i]
    head = "".join(f"<th>{h}</th>" for h in ("task", "metric", "score", "95% CI", "queries", "docs", "training data",
                                              "model revision", "dataset hash", "code version", "date"))
    body = []
    for task, r in sorted(lr.row.cells.items()):
        ci = lb.grid.ci(r)
        body.append("<tr>" + "".join(f"<td>{e(v)}</td>" for v in (
            lb.grid.task_label(task), r.main_score_name, ABSENT if r.main_score is None else fmt.score(r.main_score),
            f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a", r.n_queries, r.n_docs, training_line(r), r.revision,
            r.provenance.dataset_hash, code_version(r), r.provenance.created_at)) + "</tr>")
    flags = "".join(f'<p class="flag">⚠ {e(f)}</p>' for f in lr.row.flags)
    variant = f"<p>variant: <code>{e(lr.row.key.variant)}</code></p>" if lr.row.key.variant else ""
    return (f'<tr class="details" id="details-{i}" hidden><td colspan="{ncols}">{flags}{variant}'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></td></tr>")


def _entry(lb: Leaderboard, i: int) -> str:
    lr, row = lb.rows[i], lb.rows[i].row
    suites = sorted({t.suite for t in row.cells})
    first = row.first
    title = e("\n".join(provenance_lines(first) if len(row.cells) == 1 else [f"model revision: {row.key.revision}",
                                                                           f"code: {code_version(first)}"]))
    flag = ' <span class="flag" title="see details">⚠</span>' if row.flags else ""
    tds = [f'<td data-value="{e(row.model_label)}" title="{title}"><button class="toggle" type="button" '
           f'aria-expanded="false" aria-controls="details-{i}" title="show provenance">▸</button>'
           f"{e(row.model_label)}{flag}</td>",
           f'<td data-value="{e(row.key.revision)}" title="{e(row.key.revision)}"><code>{e(row.key.revision[:12])}'
           f"</code></td>",
           f'<td data-value="{e(row.precision)}" title="quantization: {e(row.quantization)}">{e(row.precision)}</td>',
           f'<td class="num" data-value="{row.dim}">{fmt.vector_size(row.dim)}</td>',
           f'<td class="num" data-value="{row.bytes_per_vector}" title="vectors per GiB: '
           f'{e(fmt.integer(row.pages_per_gb) or "n/a")}">{fmt.vector_size(row.bytes_per_vector)}</td>']
    tds += [_score_td(col, lr.cells[col.key]) for col in lb.columns]
    return (f'<tbody class="entry" data-order="{i}" data-suites="{e(json.dumps(suites))}" '
            f'data-precision="{e(row.precision)}"><tr class="main">{"".join(tds)}</tr>'
            f"{_details(lb, i, len(tds))}</tbody>")


def _select(ident: str, label: str, values: list[str]) -> str:
    options = '<option value="">all</option>' + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
    return f'<label for="{ident}">{label}<select id="{ident}">{options}</select></label>'


def _reference_section() -> str:
    rows = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in (r.benchmark, r.metric, r.model, r.precision)) +
                   f'<td class="num" title="{e("reported by authors; source: " + r.source)}">{r.value:.2f}</td>'
                   f"<td>{e(r.note)}</td></tr>" for r in REPORTED)
    notes = "".join(f"<li>{e(n)}</li>" for n in NOTES)
    return ('<section class="reported" id="reported"><h2>Reported by authors (not measured here)</h2>'
            "<p>Company-reported numbers for reference only: different corpora and settings, never averaged with "
            "or ranked against the measured table above.</p><table><thead><tr><th>benchmark</th><th>metric</th>"
            "<th>model</th><th>precision</th><th>value (%)</th><th>note</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><ul>{notes}<li>Source: {e(SOURCE)}</li></ul></section>")


def render_html(lb: Leaderboard) -> str:
    ths = [f'<th data-key="{k}" data-type="{t}" data-suite=""><button type="button">{e(label)}</button></th>'
           for k, label, t in FIXED]
    ths += [f'<th data-key="{e(c.key)}" data-type="num" data-suite="{e(c.suite)}"><button type="button">'
            f"{e(c.label)}</button></th>" for c in lb.columns]
    precisions = sorted({lr.row.precision for lr in lb.rows}, key=lambda p: (PRECISION_ORDER.get(p, 99), p))
    notes = "".join(f"<li>{e(n)}</li>" for n in [*lb.footnotes(), *legend(lb)])
    body = "".join(_entry(lb, i) for i in range(len(lb.rows)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>embedbench leaderboard</title><style>{CSS}</style><script>{ERROR_HOOK}</script></head>
<body><h1>embedbench leaderboard</h1>
<div id="js-errors" role="alert" hidden></div>
<p>Measured main score per task (0-1) with its 95% bootstrap CI over queries; suite means only for rows that
have every task of the suite. <strong class="best">Bold</strong> = best in its column among measured rows.
Hover a number for its provenance; ▸ opens the details. Click a column header to sort.</p>
<div class="controls">{_select("filter-suite", "Suite", list(lb.grid.suites))}
{_select("filter-precision", "Precision", precisions)}</div>
<table id="leaderboard"><thead><tr>{"".join(ths)}</tr></thead>{body}</table>
{f'<h2>Notes</h2><ol id="notes">{notes}</ol>' if notes else ''}
{_reference_section()}
<script>{SCRIPT}</script></body></html>
"""


def write_html(lb: Leaderboard, out_dir: Path) -> Path:
    path = out_dir / "leaderboard.html"
    return atomic_write_text(path, render_html(lb))
