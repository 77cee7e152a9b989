"""The paper tables: the seed README's three V1.2 result tables, with our number, the paper's and the difference.

The layout (which column shows which benchmark and metric, in the seed's order) is data: :data:`LAYOUT`.
Paper numbers come from the registry (``Benchmark.paper_value`` is the headline's); only a cell that
shows a non-headline metric carries its own paper number (MME cognition). Cells the seed fills with two
numbers ("MMB (dev/test)", "MME" perception / cognition) are several :class:`Cell` with the same title.

Where a number comes from (the CSV's ``source``):

- ``local``: our result JSON (``metrics[metric]``);
- ``server``: the user-supplied ``table.server_scores`` file (server-scored splits have no local score;
  their result JSON only points to the submission file), marked † in the markdown;
- ``no_server_score``: a server-scored split that ran, with no number in that file yet;
- ``not_run``: the benchmark is not in this configuration; ``no_value``: its result has no such metric
  (e.g. a judge-scored split before judging); ``not_implemented``: no benchmark in the registry (CMMMU).

Every one of those is shown as "–" and named in a footnote, never dropped. Benchmarks that ran but have no
place in the seed tables (e.g. VQAv2 val, DocVQA val) follow in an "Other benchmarks" table.

``server_scores`` file (CSV with a header, or YAML): rows of ``model, benchmark, metric, value``; ``metric``
may be empty (the benchmark's headline metric); ``benchmark`` is a registry name or alias of a server-scored
split; ``model`` one of the table's models. Example (CSV)::

    model,benchmark,metric,value
    internvl_chat_v1_2,mmbench-test-en,,82.2
    internvl_chat_v1_2,mmmu-test,accuracy,46.2

YAML: a list of mappings with the same keys (``- {model: ..., benchmark: ..., value: 82.2}``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from internvl.data.io import atomic_path
from internvl.errors import DataError
from internvl.eval.registry import BENCHMARKS, resolve
from internvl.eval.submission import is_server_scored


@dataclass(frozen=True)
class Cell:
    """One number of a seed table: the column it sits in, the benchmark and metric it shows."""

    column: str  # the seed's column title; cells with the same title share a column ("a / b")
    benchmark: str | None  # registry name; None: not in the registry (the column stays, shown as "–")
    metric: str | None = None  # None: the benchmark's headline metric
    paper: float | None = None  # only for a non-headline metric (the registry holds headline paper values)
    label: str = ""  # what a benchmark-less cell is called in the footnote

    def metric_name(self) -> str:
        return self.metric or (resolve(self.benchmark).headline if self.benchmark else "")

    def paper_value(self) -> float | None:
        if self.paper is not None or self.benchmark is None:
            return self.paper
        bench = resolve(self.benchmark)
        return bench.paper_value if self.metric_name() == bench.headline else None


def _single(pairs: Sequence[tuple[str, str]]) -> list[Cell]:
    return [Cell(column, bench) for column, bench in pairs]


# The seed README (0bfa5e7) tables, in its column order (internvl_reference.md §7.1).
LAYOUT: dict[str, tuple[str, list[Cell]]] = {
    "multimodal": ("Multimodal benchmarks", [
        Cell("MathVista (testmini)", "mathvista-testmini"),
        Cell("MMB (dev/test)", "mmbench-dev-en"), Cell("MMB (dev/test)", "mmbench-test-en"),
        Cell("MMB-CN (dev/test)", "mmbench-dev-cn"), Cell("MMB-CN (dev/test)", "mmbench-test-cn"),
        Cell("MMMU (val/test)", "mmmu-val"), Cell("MMMU (val/test)", "mmmu-test"),
        Cell("CMMMU (val/test)", None, label="CMMMU (no scorer in the V1.2 repo; paper: TODO)"),
        Cell("MMVP", "mmvp"),
        Cell("MME", "mme", "perception"), Cell("MME", "mme", "cognition", paper=509.3),
        *_single([("POPE", "pope"), ("Tiny LVLM", "tiny_lvlm"), ("SEEDv1 (image)", "seed"),
                  ("LLaVA Wild", "llava-bench"), ("MM-Vet", "mmvet")]),
    ]),
    "caption_vqa": ("Image captioning & visual question answering", [
        *_single([("COCO (test)", "caption-coco"), ("Flickr30K (test)", "caption-flickr30k"),
                  ("NoCaps (val)", "caption-nocaps"), ("VQAv2 (testdev)", "vqa-vqav2-testdev"),
                  ("OKVQA (val)", "vqa-okvqa-val"), ("TextVQA (val)", "vqa-textvqa-val")]),
        Cell("VizWiz (val/test)", "vqa-vizwiz-val"), Cell("VizWiz (val/test)", "vqa-vizwiz-test"),
        *_single([("AI2D (test)", "vqa-ai2d-test"), ("GQA (test)", "vqa-gqa-testdev"),
                  ("ScienceQA (image)", "scienceqa")]),
    ]),
    "grounding": ("Visual grounding", _single([
        ("RefCOCO (val)", "refcoco-val"), ("RefCOCO (testA)", "refcoco-testA"), ("RefCOCO (testB)", "refcoco-testB"),
        ("RefCOCO+ (val)", "refcoco+-val"), ("RefCOCO+ (testA)", "refcoco+-testA"),
        ("RefCOCO+ (testB)", "refcoco+-testB"), ("RefCOCO-g (val)", "refcocog-val"),
        ("RefCOCO-g (test)", "refcocog-test"),
    ])),
}
OTHER = ("other", "Other benchmarks (not in the seed tables)")
OBSERVED = frozenset({"vqa-okvqa-val", "vqa-ai2d-test", "vqa-gqa-testdev"})  # seed: "* training set observed"
PAPER_ROW = "InternVL-Chat-V1.2 (paper)"
SERVER_MARK = "†"
CSV_COLUMNS = ["table", "column", "benchmark", "metric", "model", "value", "paper", "diff", "source"]


def layout_benchmarks() -> set[str]:
    return {c.benchmark for _, cells in LAYOUT.values() for c in cells if c.benchmark}


# --- server-reported numbers ----------------------------------------------------------------------------


def _allowed_metrics(bench: str) -> set[str]:
    return {resolve(bench).headline} | {c.metric_name() for _, cells in LAYOUT.values() for c in cells
                                         if c.benchmark == bench}


def load_server_scores(path: str | Path, models: Sequence[str]) -> dict[tuple[str, str, str], float]:
    """``{(model, benchmark, metric): value}`` from a CSV or YAML file (format in the module docstring).

    Every row is checked: an unknown model or benchmark, a locally scored benchmark, a metric the table
    does not show, a non-numeric value or a repeated (model, benchmark, metric) is an error naming the row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "server scores file not found (config table.server_scores)")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"model", "benchmark", "value"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(path, f"header lacks {sorted(missing)} (expected model,benchmark,metric,value)", line=1)
            records = [(i + 2, dict(r)) for i, r in enumerate(reader)]
    elif path.suffix.lower() in (".yaml", ".yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise DataError(path, "expected a list of {model, benchmark, metric, value} mappings")
        records = [(None, r) for r in doc]
    else:
        raise DataError(path, "server scores must be a .csv or .yaml file")
    scores: dict[tuple[str, str, str], float] = {}
    for k, (line, rec) in enumerate(records):
        where = {"line": line} if line is not None else {"field": f"[{k}]"}
        model, name = str(rec.get("model") or "").strip(), str(rec.get("benchmark") or "").strip()
        if model not in models:
            raise DataError(path, f"unknown model {model!r}; the table's models are {list(models)}", **where)
        try:
            bench = resolve(name).name
        except KeyError:
            raise DataError(path, f"unknown benchmark {name!r} (not a registry name or alias)", **where) from None
        if not is_server_scored(bench):
            raise DataError(path, f"{bench} is scored locally; server scores are for server-scored splits only",
                            **where)
        metric = str(rec.get("metric") or "").strip() or resolve(bench).headline
        if metric not in _allowed_metrics(bench):
            raise DataError(path, f"{bench}: metric {metric!r} is not shown in the table (use "
                                  f"{sorted(_allowed_metrics(bench))} or leave it empty)", **where)
        value = rec.get("value")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(path, f"value {value!r} is not a number", **where) from None
        if number != number:
            raise DataError(path, "value is NaN", **where)
        key = (model, bench, metric)
        if key in scores:
            raise DataError(path, f"{model} / {bench} / {metric} is given twice", **where)
        scores[key] = number
    return scores


# --- the tables -----------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One (model, cell) of the tables: what the markdown shows and the CSV row holds."""

    table: str
    cell: Cell
    model: str
    value: float | None
    source: str

    @property
    def paper(self) -> float | None:
        return self.cell.paper_value()

    @property
    def diff(self) -> float | None:
        return None if self.value is None or self.paper is None else self.value - self.paper


def _lookup(cell: Cell, model: str, per: Mapping[str, dict[str, Any]],
            server: Mapping[tuple[str, str, str], float]) -> tuple[float | None, str]:
    if cell.benchmark is None:
        return None, "not_implemented"
    metric = cell.metric_name()
    if is_server_scored(cell.benchmark):
        if (model, cell.benchmark, metric) in server:
            return server[(model, cell.benchmark, metric)], "server"
        return None, "no_server_score" if cell.benchmark in per else "not_run"
    if cell.benchmark not in per:
        return None, "not_run"
    result = per[cell.benchmark]
    value = (result.get("metrics") or {}).get(metric)
    headline = result.get("headline") or {}
    if value is None and metric == resolve(cell.benchmark).headline:
        value = headline.get("value")
    return (None, "no_value") if value is None else (float(value), "local")


def collect(results: Mapping[str, Mapping[str, dict[str, Any]]],
            server: Mapping[tuple[str, str, str], float] | None = None) -> list[Entry]:
    """Every (model, cell) of the seed tables, then of the "other" table, in table/column/model order."""
    server = server or {}
    placed = layout_benchmarks()
    ran = [b for per in results.values() for b in per]
    extra = [b for b in dict.fromkeys(sorted(ran, key=list(BENCHMARKS).index)) if b not in placed]
    extra += [b for (_, b, _) in server if b not in placed and b not in extra]
    tables = {**{k: cells for k, (_, cells) in LAYOUT.items()},
              OTHER[0]: [Cell(resolve(b).column, b) for b in extra]}
    entries = []
    for key, cells in tables.items():
        for cell in cells:
            for model, per in results.items():
                value, source = _lookup(cell, model, per, server)
                entries.append(Entry(key, cell, model, value, source))
    return entries


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _ours(e: Entry) -> str:
    if e.value is None:
        return "–"
    mark = SERVER_MARK if e.source == "server" else ""
    return f"{e.value:.1f}{mark}" + ("" if e.diff is None else f" ({e.diff:+.1f})")


def _paper(cell: Cell) -> str:
    star = "*" if cell.benchmark in OBSERVED and cell.paper_value() is not None else ""
    return _num(cell.paper_value()) + star


def _names(entries: Sequence[Entry], with_model: bool) -> str:
    seen = dict.fromkeys(
        (e.cell.benchmark or e.cell.label) + (f" ({e.model})" if with_model else "") for e in entries)
    return ", ".join(seen)


def render_markdown(entries: Sequence[Entry], results: Mapping[str, Mapping[str, dict[str, Any]]],
                    server_file: str | None = None) -> str:
    titles = {**{k: t for k, (t, _) in LAYOUT.items()}, OTHER[0]: OTHER[1]}
    models = list(results)
    md: list[str] = []
    letter = iter("abcdefgh")
    for key, title in titles.items():
        mine = [e for e in entries if e.table == key]
        if not mine:
            continue
        columns = list(dict.fromkeys(e.cell.column for e in mine))
        md += [f"### ({next(letter)}) {title}", "", "| model | " + " | ".join(columns) + " |",
               "|---|" + "---:|" * len(columns)]
        paper = [" / ".join(_paper(cell) for cell in dict.fromkeys(e.cell for e in mine if e.cell.column == c))
                 for c in columns]
        md.append(f"| {PAPER_ROW} | " + " | ".join(paper) + " |")
        for model in models:
            cells = [" / ".join(_ours(e) for e in mine if e.cell.column == c and e.model == model) for c in columns]
            md.append(f"| {model} | " + " | ".join(cells) + " |")
        md.append("")
        notes = _footnotes(mine, key, server_file)
        md += [f"- {n}" for n in notes] + ([""] if notes else [])
    md += ["Cells: our number (difference to the V1.2 paper number); two numbers in one cell are in the order of "
           "the column title. MME: perception / cognition.", ""]
    ns = _n_per_benchmark(results)
    if ns:
        md += ["n per benchmark: " + ", ".join(f"{b}={n}" for b, n in ns.items()), ""]
    return "\n".join(md)


def _footnotes(entries: Sequence[Entry], key: str, server_file: str | None) -> list[str]:
    notes = []
    if any(e.cell.benchmark in OBSERVED for e in entries):
        notes.append("\\* training set observed (seed README)")
    if any(e.source == "server" for e in entries):
        notes.append(f"{SERVER_MARK} server-reported (from {server_file or 'table.server_scores'})")
    by = {s: [e for e in entries if e.source == s] for s in ("not_run", "no_server_score", "no_value", "not_implemented")}
    if by["not_run"]:
        notes.append("– not run in this configuration: " + _names(by["not_run"], False))
    if by["no_server_score"]:
        notes.append("– server-scored, no server number supplied (upload results/<model>/submissions/<bench>.* and "
                     "add the score to table.server_scores): " + _names(by["no_server_score"], True))
    if by["no_value"]:
        notes.append("– the result has no such metric: " + _names(by["no_value"], True))
    if by["not_implemented"]:
        notes.append("– not implemented: " + _names(by["not_implemented"], False))
    return notes


def _n_per_benchmark(results: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, str]:
    ns: dict[str, set[Any]] = {}
    for per in results.values():
        for bench, result in per.items():
            ns.setdefault(bench, set()).add(result.get("n"))
    return {b: (str(next(iter(v))) if len(v) == 1 else "varies") for b, v in ns.items()}


def render_csv(entries: Sequence[Entry]) -> str:
    """One row per model x cell; empty value/paper/diff where there is no number (``source`` says why)."""
    def num(x: float | None) -> str:
        return "" if x is None else repr(round(x, 6))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.table, e.cell.column, e.cell.benchmark or "", e.cell.metric_name() if e.cell.benchmark else "",
                         e.model, num(e.value), num(e.paper), num(e.diff), e.source])
    return buf.getvalue()


def build_tables(results: Mapping[str, Mapping[str, str | Path]],
                 server_scores: str | Path | None = None) -> tuple[str, str]:
    """``results[model][benchmark] -> result JSON path``; returns (markdown, csv)."""
    loaded = {m: {resolve(b).name: json.loads(Path(p).read_text()) for b, p in per.items()} for m, per in results.items()}
    server = load_server_scores(server_scores, list(loaded)) if server_scores else {}
    entries = collect(loaded, server)
    return render_markdown(entries, loaded, None if server_scores is None else str(server_scores)), render_csv(entries)


def write_tables(results: Mapping[str, Mapping[str, str | Path]], md_out: str | Path, csv_out: str | Path,
                 server_scores: str | Path | None = None) -> str:
    md, table_csv = build_tables(results, server_scores)
    for dest, text in ((md_out, md), (csv_out, table_csv)):
        with atomic_path(dest) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return md
