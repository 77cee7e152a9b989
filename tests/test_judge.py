"""The LLM-judge client and the three judged protocols, against a fake OpenAI-compatible server.

The server (http.server in a thread on 127.0.0.1, ephemeral port) answers deterministically from the
request and records every request, so the tests check the exact bodies sent, the originals' parsing
quirks, caching, retries and the loud failures. The end-to-end tests score LLaVA-Bench, MM-Vet and
MathVista testmini built from the real-format samples in shared/realdata.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import REALDATA, needs_realdata, read_jsonl
from test_family_b_normalize import build_llava_bench_root, build_mathvista_root, build_mmvet_root

from internvl.data.benchmarks import normalize
from internvl.eval import judged
from internvl.eval.judge import (
    JudgeCacheError,
    JudgeClient,
    JudgeConfig,
    JudgeConfigError,
    JudgeError,
    canonical_request,
    request_key,
)
from internvl.eval.judged import (
    LLAVA_BENCH_RULES,
    LLAVA_BENCH_SYSTEM,
    MATHVISTA_DEMO_PROMPT,
    MMVET_PROMPT,
    llava_bench_messages,
    mathvista_extraction_prompt,
    mmvet_question,
    parse_llava_review,
    parse_mmvet_grade,
    score_judged,
)
from internvl.eval.registry import BENCHMARKS, resolve
from internvl.eval.results import score_file, write_result

Responder = Callable[[dict[str, Any]], tuple[int, Any]]


def default_responder(body: dict[str, Any]) -> tuple[int, Any]:
    """LLaVA review "8 6\\n...", MM-Vet "0.7", MathVista: the last word of the model response."""
    msgs = body["messages"]
    user = msgs[-1]["content"]
    if msgs[0]["content"] == LLAVA_BENCH_SYSTEM:
        content = "8 6\nAssistant 1 is more detailed."
    elif user.startswith(MMVET_PROMPT):
        content = "0.7"
    elif user.endswith("\n\nExtracted answer: "):
        response = user[: -len("\n\nExtracted answer: ")].rsplit("\n\n", 1)[1]
        content = " " + response.split()[-1] + " "
    else:
        content = "?"
    return 200, {"id": "x", "model": body["model"] + "-served", "choices": [{"message": {"role": "assistant",
                                                                                          "content": content}}]}


class FakeJudge:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder: Responder = default_responder
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, doc = fake.responder(body)
                raw = (doc if isinstance(doc, str) else json.dumps(doc)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeJudge]:
    server = FakeJudge()
    yield server
    server.close()


def make_client(fake: FakeJudge, tmp_path: Path, model: str = "gpt-4-0613", **kw: Any) -> JudgeClient:
    cfg = JudgeConfig(base_url=fake.base_url, model=model, timeout_s=5, max_retries=kw.pop("max_retries", 2),
                      backoff_s=0.0, **kw)
    return JudgeClient(cfg, tmp_path / "cache" / f"{cfg.slug}.jsonl", sleep=lambda s: None)


# --- config, identity ----------------------------------------------------------------------------------


def test_config_identity_slug_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = JudgeConfig.from_config({"base_url": "https://api.openai.com/v1/", "model": "gpt-4-0613",
                                   "api_key_env": "MY_JUDGE_KEY", "timeout_s": 30, "max_retries": 3})
    assert cfg.base_url == "https://api.openai.com/v1" and cfg.url == "https://api.openai.com/v1/chat/completions"
    assert cfg.identity == "gpt-4-0613@api.openai.com" and cfg.slug == "gpt-4-0613_api.openai.com"
    assert JudgeConfig("http://127.0.0.1:8000/v1", "org/Model 7B").slug == "org-Model-7B_127.0.0.1-8000"
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    with pytest.raises(JudgeConfigError, match="MY_JUDGE_KEY"):
        JudgeClient(cfg)
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test")
    assert JudgeClient(cfg).config is cfg
    with pytest.raises(JudgeConfigError, match="no 'judge:' block"):
        JudgeConfig.from_config(None)
    with pytest.raises(JudgeConfigError, match="unknown keys.*'modle'"):
        JudgeConfig.from_config({"base_url": "http://x", "modle": "m"})
    with pytest.raises(JudgeConfigError, match="http"):
        JudgeConfig.from_config({"base_url": "api.openai.com", "model": "m"})


def test_registry_declares_judge_protocols() -> None:
    judged_splits = {name: b.judge for name, b in BENCHMARKS.items() if b.judge}
    assert judged_splits == {"llava-bench": "llava-bench", "mmvet": "mmvet", "mathvista-testmini": "mathvista-testmini"}
    assert set(judged_splits.values()) == set(judged.PROTOCOLS)
    assert "judge" not in resolve("mmvet").score_params()  # a judge change must not rerun inference
    p = judged.PROTOCOLS
    assert (p["llava-bench"].original_model, p["llava-bench"].temperature, p["llava-bench"].max_tokens) == (
        "gpt-4-0613", 0.2, 1024)
    assert (p["mmvet"].temperature, p["mmvet"].max_tokens) == (0.0, 3)
    assert (p["mathvista-testmini"].original_model, p["mathvista-testmini"].max_tokens) == ("gpt-3.5-turbo", 256)


# --- exact prompt texts ----------------------------------------------------------------------------------


@needs_realdata
def test_llava_rule_prompt_equals_rule_json() -> None:
    rules = json.loads((REALDATA / "llava_bench" / "rule.json").read_text())
    for key, text in LLAVA_BENCH_RULES.items():
        assert rules[key] == {"role": "Assistant", "prompt": text}
    assert " \nPlease rate" in LLAVA_BENCH_RULES["llava_bench_conv"]


def test_llava_messages_exact() -> None:
    msgs = llava_bench_messages("cap A\ncap B", "Q?", "ref", "ans", "detail")
    assert msgs[0] == {"role": "system", "content": LLAVA_BENCH_SYSTEM}
    assert msgs[1] == {"role": "user", "content": (
        "[Context]\ncap A\ncap B\n\n[Question]\nQ?\n\n[Assistant 1]\nref\n\n[End of Assistant 1]\n\n"
        "[Assistant 2]\nans\n\n[End of Assistant 2]\n\n[System]\n" + LLAVA_BENCH_RULES["llava_bench_detail"] + "\n\n")}
    with pytest.raises(ValueError, match="no rule"):
        llava_bench_messages("c", "q", "r", "a", "math")


def test_mmvet_prompt_and_question_exact() -> None:
    assert MMVET_PROMPT.startswith("Compare the ground truth and prediction from AI models, to give a correctness")
    rows = MMVET_PROMPT.split("--- | --- | --- | ---\n")[1].split("\n")
    assert rows[-1] == "" and len(rows) == 8  # 7 example rows, each ending in "\n"
    assert [r.rsplit(" | ", 1)[1] for r in rows[:-1]] == ["0.0", "0.5", "0.5", "0.5", "1.0", "0.4", "1.0"]
    assert rows[3] == "What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5"
    q = mmvet_question("What is x in the equation?", "-1<AND>-5", "x = 3")
    assert q == MMVET_PROMPT + "\nWhat is x in the equation? | -1 <AND> -5 | x = 3 | "
    assert mmvet_question("q", "a<OR>b", "p", retry=True) == (
        MMVET_PROMPT + "\nq | a <OR> b | p | " + "\nPredict the correctness of the answer (digit): ")


def test_mathvista_prompt_exact() -> None:
    assert MATHVISTA_DEMO_PROMPT.startswith("Please read the following example. Then extract the answer")
    assert MATHVISTA_DEMO_PROMPT.count("Extracted answer: ") == 5 and MATHVISTA_DEMO_PROMPT.count("Hint: ") == 5
    assert "line  graph" in MATHVISTA_DEMO_PROMPT and MATHVISTA_DEMO_PROMPT.endswith(
        "Model response: The correct answer is (B) 8/11.\n\nExtracted answer: B")
    assert mathvista_extraction_prompt("QUERY", "RESP") == MATHVISTA_DEMO_PROMPT + "\n\nQUERY\n\nRESP\n\nExtracted answer: "


# --- parsing quirks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("review", "expected"), [
    ("8 6\nbecause", [8.0, 6.0]),
    ("8,6", [8.0, 6.0]),
    ("7.5 9", [7.5, 9.0]),
    ("8, 6\nx", [-1.0, -1.0]),  # "," -> " " gives three parts
    ("Scores: 8 6", [-1.0, -1.0]),
    ("8  6", [-1.0, -1.0]),  # split(" ") keeps the empty part
    ("eight six", [-1.0, -1.0]),
    ("", [-1.0, -1.0]),
])
def test_parse_llava_review(review: str, expected: list[float]) -> None:
    assert parse_llava_review(review) == expected


@pytest.mark.parametrize(("content", "expected"), [
    ("0.7", 0.7), ("1.0 because", 1.0), (" 0.4", None), ("1.5", None), ("-0.1", None), ("nan", None), ("A", None),
])
def test_parse_mmvet_grade(content: str, expected: float | None) -> None:
    assert parse_mmvet_grade(content) == expected


# --- client: requests, caching, failures ------------------------------------------------------------------


def test_request_body_headers_and_returned_model(fake: FakeJudge, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-secret")
    client = make_client(fake, tmp_path, api_key_env="FAKE_JUDGE_KEY")
    reply = client.chat([{"role": "user", "content": "hi"}], temperature=0, max_tokens=3)
    assert reply.content == "?" and reply.model == "gpt-4-0613-served" and not reply.cached
    (req,) = fake.requests
    assert req["path"] == "/v1/chat/completions" and req["headers"]["Authorization"] == "Bearer sk-secret"
    assert req["body"] == {"model": "gpt-4-0613", "messages": [{"role": "user", "content": "hi"}],
                           "temperature": 0.0, "max_tokens": 3}
    line = json.loads((tmp_path / "cache" / f"{client.slug}.jsonl").read_text())
    assert "sk-secret" not in json.dumps(line) and line["response"]["model"] == "gpt-4-0613-served"
    assert line["key"] == request_key(canonical_request(fake.base_url, "gpt-4-0613", req["body"]["messages"], 0.0, 3))


def test_cache_hit_makes_no_request_and_truncated_tail_is_dropped(fake: FakeJudge, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    msgs = [{"role": "user", "content": "one"}]
    make_client(fake, tmp_path).chat(msgs, temperature=0.2, max_tokens=5)
    make_client(fake, tmp_path).chat([{"role": "user", "content": "two"}], temperature=0.2, max_tokens=5)
    assert len(fake.requests) == 2
    client = make_client(fake, tmp_path)
    reply = client.chat(msgs, temperature=0.2, max_tokens=5)
    assert reply.cached and len(fake.requests) == 2 and client.stats()["cached"] == 1
    # a different temperature is a different request
    client.chat(msgs, temperature=0.7, max_tokens=5)
    assert len(fake.requests) == 3
    cache = tmp_path / "cache" / f"{client.slug}.jsonl"
    good = cache.read_bytes()
    cache.write_bytes(good + b'{"key": "abc", "respo')  # crash mid-write
    with caplog.at_level("WARNING"):
        again = make_client(fake, tmp_path)
    assert "truncated last line" in caplog.text and cache.read_bytes() == good
    assert again.chat(msgs, temperature=0.2, max_tokens=5).cached and len(fake.requests) == 3
    lines = good.split(b"\n")
    cache.write_bytes(lines[0] + b"\n{not json\n" + b"\n".join(lines[1:]))
    with pytest.raises(JudgeCacheError, match=rf"{cache.name}:2: malformed"):
        make_client(fake, tmp_path)
    cache.write_bytes(good + b'{"key": 1}\n')
    with pytest.raises(JudgeCacheError, match=rf"{cache.name}:4:"):
        make_client(fake, tmp_path)


def test_unreachable_judge_fails_quickly_naming_url(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=0.5, max_retries=2, backoff_s=0)
    client = JudgeClient(cfg, tmp_path / "c.jsonl", sleep=lambda s: None)
    start = time.monotonic()
    with pytest.raises(JudgeError, match=rf"127.0.0.1:{port}/v1/chat/completions failed after 3 attempts.*refused"):
        client.chat([{"role": "user", "content": "x"}], temperature=0, max_tokens=1)
    assert time.monotonic() - start < 5 and not (tmp_path / "c.jsonl").exists()


def test_500_and_429_are_retried_400_is_not(fake: FakeJudge, tmp_path: Path) -> None:
    statuses = [500, 429]
    waits: list[float] = []

    def flaky(body: dict[str, Any]) -> tuple[int, Any]:
        if statuses:
            return statuses.pop(0), {"error": {"message": "overloaded"}}
        return default_responder(body)

    fake.responder = flaky
    cfg = JudgeConfig(base_url=fake.base_url, model="m", timeout_s=5, max_retries=2, backoff_s=0.25)
    client = JudgeClient(cfg, None, sleep=waits.append)
    assert client.chat([{"role": "user", "content": "x"}], temperature=0, max_tokens=1).content == "?"
    assert len(fake.requests) == 3 and waits == [0.25, 0.5]
    fake.responder = lambda body: (500, {"error": "down"})
    with pytest.raises(JudgeError, match=r"failed after 3 attempts; last error: HTTP 500.*down"):
        client.chat([{"role": "user", "content": "y"}], temperature=0, max_tokens=1)
    fake.responder = lambda body: (400, {"error": "bad model"})
    n = len(fake.requests)
    with pytest.raises(JudgeError, match=r"refused the request \(HTTP 400.*bad model"):
        client.chat([{"role": "user", "content": "z"}], temperature=0, max_tokens=1)
    assert len(fake.requests) == n + 1
    fake.responder = lambda body: (200, {"choices": []})
    with pytest.raises(JudgeError, match="no choices"):
        client.chat([{"role": "user", "content": "w"}], temperature=0, max_tokens=1)


# --- MM-Vet retry loop -------------------------------------------------------------------------------------


def _mmvet_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["0", "1"], "question": ["What is x in the equation?", "Q2"],
                         "answers": [["-1<AND>-5"], ["a<OR>b"]], "capability": [["ocr", "math"], ["rec"]],
                         "mmvet_key": ["v1_0", "v1_1"]})


def test_mmvet_retries_raise_temperature_and_give_up_at_zero(fake: FakeJudge, tmp_path: Path) -> None:
    def grader(body: dict[str, Any]) -> tuple[int, Any]:
        user = body["messages"][0]["content"][len(MMVET_PROMPT):]
        if user.startswith("\nQ2 |"):
            content = "0.3" if body["temperature"] == 0.5 else "zero"  # parses on the 3rd call
        else:
            content = "nope"  # never parses
        return 200, {"model": "g", "choices": [{"message": {"content": content}}]}

    fake.responder = grader
    client = make_client(fake, tmp_path)
    out = score_judged("mmvet", "mmvet", _mmvet_frame(), {"0": "x = 3", "1": "b"}, client)
    tails = [r["body"]["messages"][0]["content"][len(MMVET_PROMPT):] for r in fake.requests]
    calls0 = [r["body"] for r, t in zip(fake.requests, tails, strict=True) if t.startswith("\nWhat is x")]
    assert [c["temperature"] for c in calls0] == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert not calls0[0]["messages"][0]["content"].endswith("(digit): ")
    assert all(c["messages"][0]["content"].endswith("\nPredict the correctness of the answer (digit): ")
               for c in calls0[1:])
    assert all(c["max_tokens"] == 3 for c in calls0)
    calls1 = [r["body"] for r, t in zip(fake.requests, tails, strict=True) if t.startswith("\nQ2 | ")]
    assert [c["temperature"] for c in calls1] == [0.0, 0.0, 0.5]
    assert out["judge"]["items"]["0"]["score"] == 0.0 and out["judge"]["items"]["0"]["tries"] == 6
    assert out["judge"]["items"]["1"]["score"] == 0.3
    assert out["metrics"]["total"] == pytest.approx(15.0)
    assert out["judge"]["parse_failures"] == 1 and any("scored 0.0" in n for n in out["notes"])


# --- end to end on the real-format samples ---------------------------------------------------------------------


def _write_inputs(tmp_path: Path, data: pd.DataFrame, preds: dict[str, str]) -> tuple[Path, Path]:
    parquet = tmp_path / "data.parquet"
    data.to_parquet(parquet)
    pred_file = tmp_path / "pred.jsonl"
    pred_file.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in preds.items()))
    return parquet, pred_file


@needs_realdata
def test_llava_bench_end_to_end(fake: FakeJudge, tmp_path: Path) -> None:
    data = normalize("llava-bench", build_llava_bench_root(tmp_path / "root")).to_pandas()
    preds = {rid: f"model answer {rid}" for rid in data["id"]}
    preds["5"] = "the model says 5"
    fake_reviews = {"the model says 5": "8, 6\nunparsable first line"}
    base = fake.responder

    def reviewer(body: dict[str, Any]) -> tuple[int, Any]:
        for answer, review in fake_reviews.items():
            if f"[Assistant 2]\n{answer}\n\n" in body["messages"][1]["content"]:
                return 200, {"model": "gpt-4-0613", "choices": [{"message": {"content": review}}]}
        return base(body)

    fake.responder = reviewer
    bench = resolve("llava-bench")
    parquet, pred_file = _write_inputs(tmp_path, data, preds)
    client = make_client(fake, tmp_path)
    out = score_file(bench, parquet, pred_file, judge=client)
    assert len(fake.requests) == 34
    # the exact first request, from the real question / context / GPT-4 answer files
    q0 = read_jsonl(REALDATA / "llava_bench" / "questions.jsonl")[0]
    ctx = {c["image"]: c["caption"] for c in read_jsonl(REALDATA / "llava_bench" / "context.jsonl")}
    ref0 = read_jsonl(REALDATA / "llava_bench" / "answers_gpt4.jsonl")[0]["text"]
    rule = json.loads((REALDATA / "llava_bench" / "rule.json").read_text())[f"llava_bench_{q0['category']}"]["prompt"]
    body = fake.requests[0]["body"]
    assert body["model"] == "gpt-4-0613" and body["temperature"] == 0.2 and body["max_tokens"] == 1024
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful and precise assistant for checking the quality of the answer."},
        {"role": "user", "content": f"[Context]\n{ctx[q0['image']]}\n\n[Question]\n{q0['text']}\n\n[Assistant 1]\n"
                                    f"{ref0}\n\n[End of Assistant 1]\n\n[Assistant 2]\nmodel answer 0\n\n"
                                    f"[End of Assistant 2]\n\n[System]\n{rule}\n\n"}]
    assert "Please give a detailed answer." not in body["messages"][1]["content"]
    # 33 reviews "8 6" and one [-1, -1] averaged in, as the original
    m = out["metrics"]
    ref_mean, model_mean = round((33 * 8 - 1) / 34, 3), round((33 * 6 - 1) / 34, 3)
    assert m["relative_score"] == round(model_mean / ref_mean * 100, 1)
    assert out["judge"]["parse_failures"] == 1 and out["judge"]["parse_failure_ids"] == ["5"]
    assert out["judge"]["returned_models"] == {"gpt-4-0613-served": 33, "gpt-4-0613": 1}
    assert out["judge"]["calls"] == {"cached": 0, "new": 34}
    assert out["judge"]["identity"] == f"gpt-4-0613@{fake.base_url.split('/')[2]}"
    # a rerun is served from the cache: zero requests, same numbers
    again = score_file(bench, parquet, pred_file, judge=make_client(fake, tmp_path))
    assert len(fake.requests) == 34 and again["metrics"] == m and again["judge"]["calls"] == {"cached": 34, "new": 0}
    result = write_result(tmp_path / "r.json", bench, again, {"judge": {"identity": again["judge"]["identity"]}})
    assert result["headline"]["value"] == m["relative_score"] and result["judge"]["items"]["0"]["tuple"] == [8.0, 6.0]


@needs_realdata
def test_mmvet_end_to_end(fake: FakeJudge, tmp_path: Path) -> None:
    data = normalize("mmvet", build_mmvet_root(tmp_path / "root")).to_pandas()
    gold = json.loads((REALDATA / "mmvet" / "mm-vet.json").read_text())
    preds = {rid: f"prediction {rid}" for rid in data["id"]}
    parquet, pred_file = _write_inputs(tmp_path, data, preds)
    out = score_file(resolve("mmvet"), parquet, pred_file, judge=make_client(fake, tmp_path))
    assert len(fake.requests) == 25 and out["metrics"]["total"] == pytest.approx(70.0)
    body = fake.requests[0]["body"]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 3 and len(body["messages"]) == 1
    g0 = gold["v1_0"]
    assert body["messages"][0]["content"] == (
        MMVET_PROMPT + "\n" + f"{g0['question']} | -1 <AND> -5 | prediction 0 | ")
    assert out["judge"]["parse_failures"] == 0 and out["judge"]["calls"]["new"] == 25


@needs_realdata
def test_mathvista_end_to_end(fake: FakeJudge, tmp_path: Path) -> None:
    root, problems = build_mathvista_root(tmp_path / "root")
    data = normalize("mathvista-testmini", root).to_pandas()
    preds = {pid: p["answer"] for pid, p in problems.items()}
    preds["3"], preds["2"] = "It is (C) 145°", "about 1000"  # need the extractor; the fake echoes the last word
    parquet, pred_file = _write_inputs(tmp_path, data, preds)
    client = make_client(fake, tmp_path, model="gpt-3.5-turbo")
    out = score_file(resolve("mathvista-testmini"), parquet, pred_file, judge=client)
    assert len(fake.requests) == 2
    bodies = {r["body"]["messages"][0]["content"].rsplit("\n\n", 2)[1]: r["body"] for r in fake.requests}
    query2 = data.set_index("id").loc["2", "question"]
    assert bodies["about 1000"]["messages"][0]["content"] == (
        MATHVISTA_DEMO_PROMPT + f"\n\n{query2}\n\nabout 1000\n\nExtracted answer: ")
    assert bodies["about 1000"]["temperature"] == 0.0 and bodies["about 1000"]["max_tokens"] == 256
    assert out["judge"]["items"]["2"]["extraction"] == "1000"  # reply stripped, as get_chat_response does
    assert out["metrics"]["llm_extracted"] == 2.0
    assert out["metrics"]["accuracy"] == pytest.approx(100 * 29 / 30)  # pid 1: the float precision quirk
    assert not any("differs from the original" in n for n in out["notes"])
    # a failing extractor is an error, never an empty extraction
    fake.responder = lambda body: (503, {"error": "unavailable"})
    (tmp_path / "cache" / f"{client.slug}.jsonl").unlink()
    with pytest.raises(JudgeError, match=r"mathvista-testmini: judge call for id 2 failed.*HTTP 503"):
        score_file(resolve("mathvista-testmini"), parquet, pred_file, judge=make_client(fake, tmp_path, "gpt-3.5-turbo"))


class _Named(list):
    """Stands in for Snakemake's Namedlist: attributes by name, items by position."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(kw.values())
        self.__dict__.update(kw)


@needs_realdata
def test_score_script_writes_judged_result_with_provenance(fake: FakeJudge, tmp_path: Path) -> None:
    import runpy
    from types import SimpleNamespace

    from conftest import REPO

    data = normalize("mmvet", build_mmvet_root(tmp_path / "root")).to_pandas()
    parquet, pred_file = _write_inputs(tmp_path, data, {rid: "x" for rid in data["id"]})
    stats, ckpt = tmp_path / "stats.json", tmp_path / "ckpt.sha256"
    stats.write_text("{}")
    ckpt.write_text("abc\n")
    judge_block = {"base_url": fake.base_url, "model": "gpt-4-0613", "api_key_env": None, "timeout_s": 5,
                   "max_retries": 0}
    cfg = JudgeConfig.from_config(judge_block)
    params = json.dumps({"judge": cfg.score_params(), "protocol": judged.PROTOCOLS["mmvet"].fingerprint()})
    out = tmp_path / "results" / f"mmvet@{cfg.slug}.json"
    sm = SimpleNamespace(
        log=[str(tmp_path / "score.log")], wildcards=_Named(model="m", bench="mmvet", judge=cfg.slug),
        config={"judge": judge_block}, output=[str(out)],
        input=_Named(predictions=str(pred_file), stats=str(stats), data=str(parquet), ckpt=str(ckpt)),
        params=_Named(score_params="{}", judge=params, judge_cache=str(tmp_path / "cache" / "judge"),
                      model_config="{}", repo=str(REPO)),
    )
    runpy.run_path(str(REPO / "workflow" / "scripts" / "score.py"), init_globals={"snakemake": sm})
    result = json.loads(out.read_text())
    assert result["headline"] == {"metric": "total", "value": pytest.approx(70.0)}
    prov = result["provenance"]["judge"]
    assert prov["identity"] == cfg.identity and prov["calls"] == {"cached": 0, "new": 25} and "items" not in prov
    assert prov["cache"] == str(tmp_path / "cache" / "judge" / cfg.slug / "mmvet.jsonl")
    assert len(result["judge"]["items"]) == 25
    sm.wildcards = _Named(model="m", bench="mmvet", judge="other-judge")
    with pytest.raises(ValueError, match="differ from the job"):
        runpy.run_path(str(REPO / "workflow" / "scripts" / "score.py"), init_globals={"snakemake": sm})


def test_schema_accepts_the_judge_block_and_rejects_typos() -> None:
    import jsonschema
    import yaml
    from conftest import REPO

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["judge"] = {"base_url": "https://api.openai.com/v1", "model": "gpt-4-0613", "api_key_env": "OPENAI_API_KEY",
                    "timeout_s": 120, "max_retries": 5}
    jsonschema.validate(cfg, schema)
    JudgeConfig.from_config(cfg["judge"])
    cfg["judge"]["api_key_env"] = None
    jsonschema.validate(cfg, schema)
    cfg["judge"]["api_key"] = "sk-do-not-put-keys-in-configs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, schema)


@needs_realdata
def test_score_cli_takes_a_judge(fake: FakeJudge, tmp_path: Path) -> None:
    from internvl.cli import main

    data = normalize("mmvet", build_mmvet_root(tmp_path / "root")).to_pandas()
    parquet, pred_file = _write_inputs(tmp_path, data, {rid: f"prediction {rid}" for rid in data["id"]})
    out = tmp_path / "score.json"
    args = ["score", "mmvet", "--data", str(parquet), "--predictions", str(pred_file), "--out", str(out),
            "--judge-base-url", fake.base_url, "--judge-model", "gpt-4-0613", "--judge-cache", str(tmp_path / "jc")]
    main(args)
    assert json.loads(out.read_text())["metrics"]["total"] == pytest.approx(70.0) and len(fake.requests) == 25
    main(args)  # cached: no new requests
    assert len(fake.requests) == 25
