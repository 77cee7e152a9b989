"""Submission files of the server-scored splits: exact contents per server format, the MMBench .xlsx read
back, id errors, the score step's server-scored result, and the ``internvl submit`` round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_jsonl

from internvl.cli import main
from internvl.data.bench_family_b import MATHVISTA_EXTRA, MMMU_EXTRA
from internvl.data.benchmarks import MMBENCH_EXTRA
from internvl.data.schema import options_json, table_from_rows
from internvl.eval import metrics, metrics_family_a, metrics_family_b, registry
from internvl.eval.metrics import SCORERS, PredictionMismatchError, ServerScoredError
from internvl.eval.results import score_file, write_result
from internvl.eval.submission import SUBMISSION_FORMATS, build_submission, is_server_scored, write_submission


def _row(rid: str, question: str = "q", options: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "image_path": None, "image_bytes": None, "question": question, "hint": extra.pop("hint", None),
            "options": options_json(options), "answers": extra.pop("answers", []), **extra}


def _parquet(path: Path, rows: list[dict[str, Any]], extra: dict[str, pa.DataType] | None = None) -> Path:
    pq.write_table(table_from_rows(rows, extra), path)
    return path


def _preds(path: Path, preds: dict[str, str]) -> Path:
    return write_jsonl(path, [{"id": k, "prediction": v} for k, v in preds.items()])


def _submit(tmp_path: Path, split: str, rows: list[dict[str, Any]], preds: dict[str, str],
            extra: dict[str, pa.DataType] | None = None) -> Path:
    bench = registry.resolve(split)
    out = tmp_path / f"{split}.{SUBMISSION_FORMATS[split].ext}"
    write_submission(bench, _parquet(tmp_path / "d.parquet", rows, extra), _preds(tmp_path / "p.jsonl", preds), out)
    return out


# --- one test per server format ----------------------------------------------------------------------


def test_vqav2_testdev_is_the_evalai_list_with_the_question_sent(tmp_path):
    rows = [_row("262144000", "Is the cat black?"), _row("7", "What is it?")]
    out = _submit(tmp_path, "vqa-vqav2-testdev", rows, {"7": "a café.", "262144000": "Yes"})
    assert out.read_bytes() == (
        b'[{"question": "Is the cat black? Answer the question using a single word or phrase.", '
        b'"question_id": 262144000, "answer": "Yes"}, '
        b'{"question": "What is it? Answer the question using a single word or phrase.", "question_id": 7, '
        b'"answer": "a caf\\u00e9."}]'
    )  # data order, raw answers (evaluate_vqa.py never calls its post_process), json.dump defaults


def test_vizwiz_test_lists_image_and_raw_answer(tmp_path):
    rows = [_row("data/vizwiz/test/VizWiz_test_00000001.jpg", submission_image="VizWiz_test_00000001.jpg"),
            _row("data/vizwiz/test/VizWiz_test_00000000.jpg", submission_image="VizWiz_test_00000000.jpg")]
    preds = {"data/vizwiz/test/VizWiz_test_00000000.jpg": "unanswerable",
             "data/vizwiz/test/VizWiz_test_00000001.jpg": " Red "}
    out = _submit(tmp_path, "vqa-vizwiz-test", rows, preds, {"submission_image": pa.string()})
    assert out.read_text() == ('[{"image": "VizWiz_test_00000001.jpg", "answer": " Red "}, '
                               '{"image": "VizWiz_test_00000000.jpg", "answer": "unanswerable"}]')


def test_docvqa_test_lists_integer_question_ids(tmp_path):
    out = _submit(tmp_path, "vqa-docvqa-test", [_row("57344"), _row("3")], {"3": "$ 1,000", "57344": "ITC"})
    assert out.read_text() == '[{"questionId": 57344, "answer": "ITC"}, {"questionId": 3, "answer": "$ 1,000"}]'


def _mmbench_rows(cn: bool = False) -> list[dict[str, Any]]:
    q = "图中是什么颜色？" if cn else "What colour is the shape?"
    return [
        _row("17", q, {"A": "red", "B": "blue", "C": "green", "D": "yellow"}, hint="A hint", category="color",
             l2_category="attribute", source="demo", mmbench_index=17),
        _row("1000017", q, {"A": "blue", "B": "red"}, category="color", l2_category="attribute", source="demo",
             mmbench_index=1000017),
    ]


@pytest.mark.parametrize("split", ["mmbench-test-en", "mmbench-test-cn"])
def test_mmbench_test_xlsx_reads_back_with_the_v1_2_columns(tmp_path, split):
    preds = {"17": "The colour is green.", "1000017": "B. red"}
    out = _submit(tmp_path, split, _mmbench_rows(cn=split.endswith("cn")), preds, MMBENCH_EXTRA)
    back = pd.read_excel(out, engine="openpyxl")
    # TSV minus hint/category/source/image/comment/l2-category, prediction inserted at position 6
    assert list(back.columns) == ["index", "question", "A", "B", "C", "D", "prediction"]
    assert back["index"].tolist() == [17, 1000017]
    assert back["prediction"].tolist() == ["C", "B"]  # the MC post-process (option text, leading letter)
    assert back["A"].tolist() == ["red", "blue"]
    assert back["C"].isna().tolist() == [False, True] and back["D"].isna().tolist() == [False, True]
    assert back["question"].iloc[0] == ("图中是什么颜色？" if split.endswith("cn") else "What colour is the shape?")


def test_mmbench_extra_option_and_gold_columns_follow_the_original_insert(tmp_path):
    rows = _mmbench_rows()
    rows[0]["options"] = options_json({"A": "red", "B": "blue", "C": "green", "D": "yellow", "E": "pink"})
    rows[0]["answers"], rows[1]["answers"] = ["E"], ["B"]
    frame = build_submission(registry.resolve("mmbench-test-en"), pd.DataFrame(rows), {"17": "E", "1000017": ""})
    assert list(frame.columns) == ["index", "question", "A", "B", "C", "D", "prediction", "E", "answer"]
    assert frame["prediction"].tolist() == ["E", ""]  # an empty answer stays empty (the original crashes)


def test_mmmu_test_maps_letters_for_choice_questions_and_keeps_open_answers(tmp_path):
    rows = [_row("test_Art_1", "<image 1> Which?", {"A": "oil", "B": "fresco"}, question_type="multiple-choice",
                 subject="Art"),
            _row("test_Art_2", "How many?", None, question_type="open", subject="Art"),
            _row("test_Art_3", "Pick", {"A": "x", "B": "y"}, question_type="multiple-choice", subject="Art")]
    preds = {"test_Art_1": "It is a fresco painting", "test_Art_2": " 3 figures", "test_Art_3": "B"}
    out = _submit(tmp_path, "mmmu-test", rows, preds, MMMU_EXTRA)
    assert out.read_text() == '{\n    "test_Art_1": "B",\n    "test_Art_2": " 3 figures",\n    "test_Art_3": "B"\n}'


def test_mathvista_test_is_the_hf_record_plus_response(tmp_path):
    meta = {"language": "english", "source": "FunctionQA", "category": "math-targeted-vqa",
            "task": "textbook question answering", "context": "function plot", "grade": "college"}
    rows = [_row("1001", "Hint: ...\nQuestion: Which is larger?\nChoices:\n(A) f\n(B) g", {"A": "f", "B": "g"},
                 question_type="multi_choice", answer_type="text", precision=None, unit=None, problem="Which is larger?",
                 skills=["algebraic reasoning"], **meta),
            _row("1002", "Hint: ...\nQuestion: What is x?", None, question_type="free_form", answer_type="float",
                 precision=1.0, unit="cm", problem="What is x?", skills=[], **meta)]
    rows[0]["image_path"] = "MathVista/images/1001.jpg"
    out = _submit(tmp_path, "mathvista-test", rows, {"1001": "(B) g", "1002": "2.5"}, MATHVISTA_EXTRA)
    doc = json.loads(out.read_text())
    assert list(doc) == ["1001", "1002"]
    assert doc["1001"] == {
        "pid": "1001", "question": "Which is larger?", "image": "images/1001.jpg", "choices": ["f", "g"], "unit": None,
        "precision": None, "question_type": "multi_choice", "answer_type": "text",
        "metadata": {"category": "math-targeted-vqa", "context": "function plot", "grade": "college",
                     "language": "english", "skills": ["algebraic reasoning"], "source": "FunctionQA",
                     "task": "textbook question answering"},
        "query": rows[0]["question"], "response": "(B) g",
    }
    assert doc["1002"]["choices"] is None and doc["1002"]["precision"] == 1.0 and doc["1002"]["response"] == "2.5"
    assert out.read_text().startswith('{\n    "1001": {\n        "pid": "1001",')  # indent=4 as the original


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preds, what", [({"3": "a"}, "ids without a prediction"),
                                         ({"3": "a", "4": "b", "99": "c"}, "predicted ids not in the data")])
def test_missing_or_unknown_ids_are_errors_and_nothing_is_written(tmp_path, preds, what):
    with pytest.raises(PredictionMismatchError, match=what):
        _submit(tmp_path, "vqa-docvqa-test", [_row("3"), _row("4")], preds)
    assert not (tmp_path / "vqa-docvqa-test.json").exists()


def test_wrong_extension_and_locally_scored_split_are_errors(tmp_path):
    data, preds = _parquet(tmp_path / "d.parquet", [_row("3")]), _preds(tmp_path / "p.jsonl", {"3": "a"})
    with pytest.raises(ValueError, match=r"\.json file"):
        write_submission(registry.resolve("vqa-docvqa-test"), data, preds, tmp_path / "out.xlsx")
    with pytest.raises(KeyError, match="scored locally"):
        write_submission(registry.resolve("vqa-docvqa-val"), data, preds, tmp_path / "out.json")


def test_every_split_whose_scorer_raises_server_scored_has_a_submission_format():
    server = set()
    for split, scorer in SCORERS.items():
        try:
            scorer(split, pd.DataFrame({"id": []}), {})
        except ServerScoredError:
            server.add(split)
        except Exception:  # noqa: BLE001 - any other failure on empty data means a local scorer
            pass
    assert server == set(SUBMISSION_FORMATS)
    assert all(is_server_scored(registry.resolve(s)) for s in server)


def test_one_server_scored_error_class():
    assert metrics_family_a.ServerScoredError is metrics_family_b.ServerScoredError is metrics.ServerScoredError


# --- the score step and the CLI --------------------------------------------------------------------------


def test_score_file_gives_a_server_scored_result_pointing_to_the_submission(tmp_path):
    bench = registry.resolve("vqa-docvqa-test")
    data = _parquet(tmp_path / "d.parquet", [_row("3"), _row("4")])
    preds = _preds(tmp_path / "p.jsonl", {"3": "a", "4": "b"})
    scored = score_file(bench, data, preds, submission="results/m/submissions/vqa-docvqa-test.json")
    assert scored["server_scored"] is True and scored["metrics"] == {} and scored["n"] == 2
    result = write_result(tmp_path / "r.json", bench, scored, {"model": "m"})
    assert json.loads((tmp_path / "r.json").read_text()) == result
    assert result["server_scored"] is True and result["submission"] == "results/m/submissions/vqa-docvqa-test.json"
    assert result["headline"]["value"] is None and result["metrics"] == {}
    with pytest.raises(PredictionMismatchError):
        score_file(bench, data, _preds(tmp_path / "q.jsonl", {"3": "a"}))


def test_cli_submit_round_trip_and_error(tmp_path, capsys):
    data = _parquet(tmp_path / "d.parquet", [_row("3"), _row("4")])
    preds = _preds(tmp_path / "p.jsonl", {"4": "b", "3": "a"})
    out = tmp_path / "sub" / "docvqa.json"
    assert main(["submit", "docvqa_test", "--data", str(data), "--predictions", str(preds), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == [{"questionId": 3, "answer": "a"}, {"questionId": 4, "answer": "b"}]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 2
    bad = _preds(tmp_path / "bad.jsonl", {"3": "a"})
    assert main(["submit", "vqa-docvqa-test", "--data", str(data), "--predictions", str(bad), "--out",
                 str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "ids without a prediction" in err and not (tmp_path / "x.json").exists()
    assert main(["submit", "vqa-docvqa-val", "--data", str(data), "--predictions", str(preds), "--out",
                 str(tmp_path / "y.json")]) == 2
    assert "scored locally" in capsys.readouterr().err
