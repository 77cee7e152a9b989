"""The paper tables: the seed's three layouts and order, paper numbers and differences, "–" cells with their
footnotes, server-reported cells from table.server_scores and that file's validation, the CSV's rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from internvl.errors import DataError
from internvl.eval.registry import BENCHMARKS, resolve
from internvl.report.table import CSV_COLUMNS, LAYOUT, build_tables, layout_benchmarks, load_server_scores, write_tables

REPO = Path(__file__).resolve().parents[1]
MODELS = ["base", "sft"]


def _result(tmp: Path, model: str, bench: str, metrics: dict[str, float], n: int = 10, **extra: Any) -> Path:
    head = resolve(bench).headline
    path = tmp / model / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": bench, "metrics": metrics, "n": n, **extra,
                                "headline": {"metric": head, "value": metrics.get(head)}}))
    return path


def _results(tmp: Path, per_model: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, Path]]:
    return {m: {b: _result(tmp, m, b, metrics) for b, metrics in benches.items()} for m, benches in per_model.items()}


def _rows(table_csv: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(table_csv)))


def _md_row(md: str, table_title: str, model: str) -> list[str]:
    section = md.split(table_title, 1)[1].split("###", 1)[0]
    line = next(x for x in section.splitlines() if x.startswith(f"| {model} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def _md_header(md: str, table_title: str) -> list[str]:
    section = md.split(table_title, 1)[1]
    line = next(x for x in section.splitlines() if x.startswith("| model |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


# --- layout ------------------------------------------------------------------------------------------------


def test_layout_has_the_seed_columns_in_the_seed_order():
    columns = {k: list(dict.fromkeys(c.column for c in cells)) for k, (_, cells) in LAYOUT.items()}
    assert list(columns) == ["multimodal", "caption_vqa", "grounding"]
    assert columns["multimodal"] == [
        "MathVista (testmini)", "MMB (dev/test)", "MMB-CN (dev/test)", "MMMU (val/test)", "CMMMU (val/test)", "MMVP",
        "MME", "POPE", "Tiny LVLM", "SEEDv1 (image)", "LLaVA Wild", "MM-Vet"]
    assert columns["caption_vqa"] == [
        "COCO (test)", "Flickr30K (test)", "NoCaps (val)", "VQAv2 (testdev)", "OKVQA (val)", "TextVQA (val)",
        "VizWiz (val/test)", "AI2D (test)", "GQA (test)", "ScienceQA (image)"]
    assert columns["grounding"] == [f"{n} ({s})" for n, splits in (("RefCOCO", "val testA testB"),
                                                                  ("RefCOCO+", "val testA testB"),
                                                                  ("RefCOCO-g", "val test")) for s in splits.split()]


def test_layout_agrees_with_the_registry():
    for key, (_, cells) in LAYOUT.items():
        for cell in cells:
            if cell.benchmark is not None:
                assert resolve(cell.benchmark).name == cell.benchmark and resolve(cell.benchmark).table == key
    # every number the registry holds from the seed README has its cell
    assert {b.name for b in BENCHMARKS.values() if b.paper_value is not None} <= layout_benchmarks()


def test_paper_row_is_the_seed_v1_2_row(tmp_path):
    md, _ = build_tables(_results(tmp_path, {"sft": {"pope": {"f1_mean": 80.0}}}))
    paper = "InternVL-Chat-V1.2 (paper)"
    assert _md_row(md, "Multimodal benchmarks", paper) == [
        "47.7", "81.4 / 82.2", "79.5 / 81.2", "51.6 / 46.2", "–", "56.7", "1672.1 / 509.3", "88.0", "350.3", "75.6",
        "85.0", "48.9"]
    assert _md_row(md, "visual question answering", paper) == [
        "113.9", "92.4", "112.5", "–", "62.5*", "69.7", "61.9 / 60.0", "77.1*", "64.0*", "83.3"]
    assert _md_row(md, "Visual grounding", paper) == ["74.4", "80.3", "66.5", "70.7", "77.6", "62.0", "69.2", "70.0"]


# --- our numbers -----------------------------------------------------------------------------------------


def test_our_numbers_paper_numbers_and_differences(tmp_path):
    results = _results(tmp_path, {
        "base": {"pope": {"f1_mean": 66.7}, "mme": {"perception": 1500.0, "cognition": 400.4}},
        "sft": {"pope": {"f1_mean": 88.5}, "mmbench-dev-en": {"circular_accuracy": 80.0, "accuracy": 85.0},
                "refcoco-val": {"precision_at_1": 75.0}},
    })
    md, table_csv = build_tables(results)
    base = _md_row(md, "Multimodal benchmarks", "base")
    sft = _md_row(md, "Multimodal benchmarks", "sft")
    assert base[6] == "1500.0 (-172.1) / 400.4 (-108.9)"  # MME perception / cognition
    assert base[7] == "66.7 (-21.3)" and sft[7] == "88.5 (+0.5)"
    assert sft[1] == "80.0 (-1.4) / –"  # MMB dev / test (test not run)
    assert base[1] == "– / –" and base[4] == "–"
    assert _md_row(md, "Visual grounding", "sft")[0] == "75.0 (+0.6)"
    rows = {(r["model"], r["benchmark"], r["metric"]): r for r in _rows(table_csv)}
    cog = rows[("base", "mme", "cognition")]
    assert cog == {"table": "multimodal", "column": "MME", "benchmark": "mme", "metric": "cognition", "model": "base",
                   "value": "400.4", "paper": "509.3", "diff": "-108.9", "source": "local"}
    assert rows[("sft", "mmbench-dev-en", "circular_accuracy")]["diff"] == "-1.4"
    assert rows[("base", "mmbench-dev-en", "circular_accuracy")]["source"] == "not_run"
    assert rows[("base", "mmbench-dev-en", "circular_accuracy")]["value"] == ""


def test_csv_is_one_row_per_model_and_cell(tmp_path):
    results = _results(tmp_path, {m: {"pope": {"f1_mean": 70.0}, "vqa-vqav2-val": {"accuracy": 50.0}} for m in MODELS})
    _, table_csv = build_tables(results)
    assert table_csv.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = _rows(table_csv)
    n_cells = sum(len(cells) for _, cells in LAYOUT.values()) + 1  # + VQAv2 val in the "other" table
    assert len(rows) == n_cells * len(MODELS)
    assert [r["model"] for r in rows[:4]] == ["base", "sft", "base", "sft"]
    cmmmu = next(r for r in rows if r["column"] == "CMMMU (val/test)")
    assert cmmmu["benchmark"] == "" and cmmmu["source"] == "not_implemented"
    other = [r for r in rows if r["table"] == "other"]
    assert [(r["benchmark"], r["value"], r["paper"], r["source"]) for r in other] == [
        ("vqa-vqav2-val", "50.0", "", "local")] * 2


def test_dashes_are_explained_in_footnotes(tmp_path):
    md, _ = build_tables(_results(tmp_path, {"sft": {"pope": {"f1_mean": 70.0}, "vqa-vqav2-val": {"accuracy": 1.0}}}))
    multimodal = md.split("### (b)")[0]
    assert "not run in this configuration: mathvista-testmini, mmbench-dev-en, mmbench-test-en" in multimodal
    assert "pope" not in multimodal.split("not run in this configuration:")[1].split("\n")[0]
    assert "not implemented: CMMMU" in multimodal
    assert "### (d) Other benchmarks" in md and "| sft | 1.0 |" in md
    assert "n per benchmark: pope=10, vqa-vqav2-val=10" in md


def test_a_result_without_the_metric_is_a_dash_with_a_note(tmp_path):
    md, table_csv = build_tables(_results(tmp_path, {"sft": {"llava-bench": {}}}))
    assert "the result has no such metric: llava-bench (sft)" in md
    assert next(r for r in _rows(table_csv) if r["benchmark"] == "llava-bench")["source"] == "no_value"


# --- server-reported cells -------------------------------------------------------------------------------


def _server_run(tmp_path: Path) -> dict[str, dict[str, Path]]:
    """sft ran MMBench test EN and MMMU test (server-scored results: empty metrics), base ran nothing there."""
    results = _results(tmp_path, {m: {"pope": {"f1_mean": 70.0}} for m in MODELS})
    for bench in ("mmbench-test-en", "mmmu-test"):
        results["sft"][bench] = _result(tmp_path, "sft", bench, {}, server_scored=True,
                                        submission=f"results/sft/submissions/{bench}.json")
    return results


def test_server_scores_from_csv_fill_and_mark_their_cells(tmp_path):
    scores = tmp_path / "server.csv"
    scores.write_text("model,benchmark,metric,value\nsft,mmbench_test_en_20231003,,82.0\nbase,vizwiz_test,accuracy,55\n")
    md, table_csv = build_tables(_server_run(tmp_path), scores)
    assert _md_row(md, "Multimodal benchmarks", "sft")[1] == "– / 82.0† (-0.2)"
    assert _md_row(md, "visual question answering", "base")[6] == "– / 55.0† (-5.0)"  # reported although not run here
    assert f"† server-reported (from {scores})" in md
    assert "no server number supplied" in md and "mmmu-test (sft)" in md
    rows = {(r["model"], r["benchmark"]): r for r in _rows(table_csv)}
    assert rows[("sft", "mmbench-test-en")]["source"] == "server" and rows[("sft", "mmbench-test-en")]["diff"] == "-0.2"
    assert rows[("sft", "mmmu-test")]["source"] == "no_server_score"
    assert rows[("base", "mmmu-test")]["source"] == "not_run"


def test_server_scores_from_yaml(tmp_path):
    scores = tmp_path / "server.yaml"
    scores.write_text(yaml.safe_dump([{"model": "sft", "benchmark": "mmmu-test", "value": 46.2},
                                      {"model": "sft", "benchmark": "vqa-vqav2-testdev", "metric": "accuracy",
                                       "value": 80.1}]))
    assert load_server_scores(scores, MODELS) == {("sft", "mmmu-test", "accuracy"): 46.2,
                                                  ("sft", "vqa-vqav2-testdev", "accuracy"): 80.1}
    md, _ = build_tables(_server_run(tmp_path), scores)
    assert _md_row(md, "Multimodal benchmarks", "sft")[3] == "– / 46.2† (+0.0)"
    assert _md_row(md, "visual question answering", "sft")[3] == "80.1†"  # no paper number for VQAv2 testdev


@pytest.mark.parametrize("line, message", [
    ("sft,mmbench-test-xx,,1", r"server.csv:2: unknown benchmark 'mmbench-test-xx'"),
    ("nobody,mmmu-test,,1", r"server.csv:2: unknown model 'nobody'"),
    ("sft,pope,,1", "pope is scored locally"),
    ("sft,mmmu-test,f1,1", "metric 'f1' is not shown"),
    ("sft,mmmu-test,,high", "value 'high' is not a number"),
    ("sft,mmmu-test,,1\nsft,MMMU_test,accuracy,2", r"server.csv:3: sft / mmmu-test / accuracy is given twice"),
])
def test_server_score_errors_name_the_row(tmp_path, line, message):
    scores = tmp_path / "server.csv"
    scores.write_text("model,benchmark,metric,value\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        build_tables(_server_run(tmp_path), scores)


def test_server_score_file_shape_errors(tmp_path):
    bad = tmp_path / "s.csv"
    bad.write_text("model,bench,value\n")
    with pytest.raises(DataError, match="header lacks"):
        load_server_scores(bad, MODELS)
    (tmp_path / "s.json").write_text("[]")
    with pytest.raises(DataError, match=".csv or .yaml"):
        load_server_scores(tmp_path / "s.json", MODELS)
    (tmp_path / "s.yaml").write_text("sft: 1\n")
    with pytest.raises(DataError, match="list of"):
        load_server_scores(tmp_path / "s.yaml", MODELS)
    with pytest.raises(DataError, match="not found"):
        load_server_scores(tmp_path / "missing.csv", MODELS)


# --- files and config ------------------------------------------------------------------------------------


def test_write_tables_writes_markdown_and_csv(tmp_path):
    results = _results(tmp_path, {"sft": {"pope": {"f1_mean": 70.0}}})
    md = write_tables(results, tmp_path / "out" / "t.md", tmp_path / "out" / "t.csv")
    assert (tmp_path / "out" / "t.md").read_text() == md and md.startswith("### (a) Multimodal benchmarks")
    assert _rows((tmp_path / "out" / "t.csv").read_text())[0]["table"] == "multimodal"
    assert _md_header(md, "Visual grounding")[0] == "RefCOCO (val)"


def test_schema_accepts_table_server_scores():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["table"]["server_scores"] = "results/server_scores.csv"
    jsonschema.validate(config, schema)
    config["table"]["server_scores"] = "scores.txt"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)
