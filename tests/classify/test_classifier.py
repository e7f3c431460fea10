"""The task classifier without a server: corpus, signals, truncation, both engines against the held-out targets,
the fast scorer against scikit-learn, route selection order, config errors, explain and the eval CLI."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.loader import parse_config
from gateway.config.model import EmbeddingConfig
from gateway.errors import ConfigError
from gateway.routing.classify import build_classifier, request_text
from gateway.routing.classify.classifier import RouteExamples, build
from gateway.routing.classify.corpus import builtin_corpus, challenge_set, load_corpus_file
from gateway.routing.classify.engines import DEFAULT_MODEL, DEFAULT_TOKENIZER, BuiltinEngine
from gateway.routing.classify.evaluate import evaluate
from gateway.routing.classify.signals import Signals
from gateway.routing.classify.text import truncate
from gateway.routing.select import select_route
from gateway.runtime import build_runtime

HANDLER = """
def find_user(request):
    name = request.args.get("name")
    rows = db.execute("SELECT * FROM users WHERE name = '" + name + "'")
    return jsonify(rows.fetchall())"""
FIX = "fix this code" + HANDLER
REVIEW = "review this code for security issues" + HANDLER
BENIGN_FIX = "fix this code\n\ndef mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0\n"

CONFIG: dict[str, Any] = {
    "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}},
    "models": {"m1": {"provider": "p", "model": "m1"}, "m2": {"provider": "p", "model": "m2"}},
    "routes": {
        "security-review": {"models": ["m1"], "aliases": ["security"], "match": [r"(?i)\bCVE-\d{4}-\d+\b"],
                            "classify": {"builtin": "security-review", "threshold": 0.5}},
        "general": {"models": ["m2"]},
    },
    "default_route": "general",
}


def _cfg(**route_overrides: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(CONFIG)
    for route, classify in route_overrides.items():
        cfg["routes"].setdefault(route, {"models": ["m2"]})["classify"] = classify
    return cfg


@pytest.fixture(scope="module")
def runtime():
    return build_runtime(parse_config(_cfg(), "g.yaml", {}))


def _user(text: str, system: str | None = None) -> list[dict[str, Any]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": text}]


# -- corpus ------------------------------------------------------------------------------------------------

def test_corpus_is_large_varied_and_split_without_overlap():
    corpus = builtin_corpus()
    assert len(corpus) >= 300
    counts = Counter((e.label, e.split) for e in corpus)
    assert all(counts[(label, split)] >= 30 for label in ("security-review", "general") for split in ("train", "test"))
    train = {e.text for e in corpus if e.split == "train"}
    assert not [e.text for e in corpus if e.split == "test" and e.text in train]
    text = "\n".join(e.text for e in corpus)
    for marker in ("def ", "const ", "public ", "func ", "<?php", "SELECT", "#!/bin/bash", "#include"):
        assert marker in text  # Python, JS, Java, Go, PHP, SQL, shell, C
    # Plain requests on vulnerable code are security tasks; the same requests on benign code are not.
    plain = [e for e in corpus if e.text.startswith("fix this code") or e.text.endswith("fix this code")]
    assert {e.label for e in plain} == {"security-review", "general"}


def test_a_corpus_file_in_the_wrong_shape_is_refused(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("security_prose: [a]\n")
    with pytest.raises(ValueError, match="non-empty lists"):
        load_corpus_file(bad)


# -- text ---------------------------------------------------------------------------------------------------

def test_request_text_is_system_prompt_plus_last_user_message():
    msgs = [{"role": "system", "content": "You are a reviewer."}, {"role": "user", "content": "old"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "fix"}, {"type": "image_url"}, {"type": "text", "text": "it"}]}]
    assert request_text(msgs) == "You are a reviewer.\nfix it"
    assert request_text([{"role": "system", "content": "s"}]) == ""
    assert request_text(_user("hi")) == "hi"


def test_truncation_is_deterministic_bounded_and_keeps_both_ends():
    text = "TASK: review this. " + "x = 1\n" * 5000 + "END-OF-CODE"
    a, b = truncate(text, 500), truncate(text, 500)
    assert a == b and len(a) == 500
    assert a.startswith("TASK: review this.") and a.endswith("END-OF-CODE")
    assert truncate("short", 500) == "short"


# -- signals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, expected", [
    ("q = \"SELECT * FROM t WHERE id = '\" + req.query.id + \"'\"", {"sql_built", "request_input", "tainted_sink"}),
    ("cursor.execute(f\"UPDATE users SET email = '{email}'\")", {"sql_built"}),
    ("os.system('ping ' + host)", {"shell_call", "shell_interp"}),
    ("obj = pickle.loads(request.data)", {"deserialize", "request_input", "tainted_sink"}),
    ("h = hashlib.md5(pw.encode()).hexdigest()", {"weak_hash", "crypto_code"}),
    ('API_KEY = "sk-abcdefghijklmnopqrstuvwxyz"', {"secret_literal"}),
    ("strcpy(buf, input);", {"c_unsafe"}),
    ("el.innerHTML = location.hash", {"dom_sink", "request_input", "tainted_sink"}),
    ("requests.get(url, verify=False)", {"tls_off"}),
    ("Is this open to an injection attack by a malicious user?", {"security_terms", "security_terms_2"}),
    ("url = request.args['u']\nrequests.get(url)", {"http_fetch", "request_input", "tainted_sink"}),
    ("if os.access(p, os.W_OK):\n    f = open(p, 'w')", {"check_then_use"}),
    ("@GetMapping(\"/o/{id}\") Order get(@PathVariable long id)", {"object_by_id"}),
    ("if (strcmp(token, expected) == 0)", {"secret_compare"}),
    ("const re = /^(a+)+$/", {"nested_quantifier"}),
    ("for (const k in src) { if (x) t[k] = src[k]; }", {"object_merge"}),
])
def test_code_signals(code, expected):
    assert expected <= set(Signals()(code))


@pytest.mark.parametrize("benign", [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "stmt, _ := db.Prepare(\"SELECT name FROM users WHERE id = $1\")",
    "Generate ten interview questions for a product manager role.",
    "Can you refactor this session of the meeting notes into bullets?",
    # Security words in their everyday senses: left to the n-grams, which learn them from hard negatives.
    "What are the warning signs of a heart attack?",
    "Organise a secret santa for the office and keep the draw secret.",
    "Plan the annual financial audit and report any breach of the budget.",
    "What is the payload of this rocket, and how do I kill the process in the shell?",
    '<input type="password" autocomplete="new-password">',
])
def test_benign_text_fires_no_security_signal(benign):
    hits = set(Signals()(benign))
    assert not hits & {"sql_built", "tainted_sink", "auth_code", "security_terms", "shell_call", "deserialize"}


def test_signal_patterns_are_linear_time():
    import time

    t0 = time.perf_counter()
    Signals()("SELECT " + "'" * 20000 + "a" * 20000 + "{" * 20000)
    assert time.perf_counter() - t0 < 1.0


# -- the engines against the targets ------------------------------------------------------------------------

def _held_out(config: dict[str, Any]) -> dict[str, Any]:
    cfg = parse_config(config, "g.yaml", {})
    clf = build_classifier(cfg)
    return evaluate(clf, {"security-review": "security-review"}, builtin_corpus())


def _assert_targets(res: dict[str, Any]) -> None:
    sec = res["routes"]["security-review"]
    general = res["confusion"]["(next rule)"]
    misrouted = general["security-review"] / sum(general.values())
    assert sec["recall"] >= 0.95, res
    assert misrouted <= 0.05, res


def test_builtin_engine_meets_the_targets_on_the_held_out_set():
    _assert_targets(_held_out(_cfg()))


def test_embedding_engine_meets_the_targets_on_the_held_out_set():
    _assert_targets(_held_out({**_cfg(), "classifier": {"engine": "embedding"}}))


def _challenge(config: dict[str, Any]) -> dict[str, Any]:
    clf = build_classifier(parse_config(config, "g.yaml", {}))
    return evaluate(clf, {"security-review": "security-review"}, [*builtin_corpus(), *challenge_set()], "challenge")


def _missed(res: dict[str, Any]) -> tuple[int, int]:
    """(security prompts not routed to security, general prompts routed to security)."""
    return res["confusion"]["security-review"]["(next rule)"], res["confusion"]["(next rule)"]["security-review"]


def test_the_challenge_set_is_apart_from_the_corpus():
    """Written separately and never trained on: no prompt in it is a near-copy of a corpus prompt (character
    5-gram Jaccard similarity below 0.5; the closest pair measured 0.33)."""
    def grams(t: str) -> set[str]:
        t = " ".join(t.lower().split())
        return {t[i:i + 5] for i in range(len(t) - 4)}

    challenge = challenge_set()
    assert Counter(e.label for e in challenge) == {"security-review": 40, "general": 45}
    corpus = [grams(e.text) for e in builtin_corpus()]
    for e in challenge:
        g = grams(e.text)
        assert max(len(g & c) / len(g | c) for c in corpus) < 0.5, e.text


# Floors at what the engines reach on the challenge set (README "Eval"), a prompt or so below: builtin 38/40
# security prompts found and 1/45 general prompts misrouted, embedding 38/40 and 2/45.
@pytest.mark.parametrize("engine, max_missed, max_misrouted", [("builtin", 3, 2), ("embedding", 3, 3)])
def test_the_engines_hold_their_floors_on_the_challenge_set(engine, max_missed, max_misrouted):
    res = _challenge({**_cfg(), "classifier": {"engine": engine}})
    assert res["test"] == 85 and res["split"] == "challenge"
    missed, misrouted = _missed(res)
    assert missed <= max_missed and misrouted <= max_misrouted, res


@pytest.mark.parametrize("prompt", [
    "Write a cover letter for a security guard position at a shopping mall.",
    "Explain how the angle of attack of a wing affects lift and when a stall happens.",
    "Organise a secret santa for 14 people with a 20 dollar limit and a random draw.",
])
def test_the_reviewers_word_traps_stay_general(runtime, prompt):
    assert select_route(runtime, "auto", None, _user(prompt)).route.name == "general"


def test_fast_scorer_equals_scikit_learn(runtime):
    clf = runtime.classifier
    texts = [FIX, REVIEW, BENIGN_FIX, "write a haiku", "x" * 5000, "", "🙂 ünïcode " * 50, "nul \x00 byte"]
    for t in texts:
        x = clf.engine.transform([truncate(t, clf.max_chars)])
        expected = dict(zip(clf._model.classes_, clf._model.predict_proba(x)[0], strict=True))
        got = clf.scores(t)
        assert got.keys() == expected.keys()
        assert all(abs(got[k] - expected[k]) < 1e-9 for k in got)


@pytest.mark.parametrize("engine", ["builtin", "embedding"])
def test_any_string_is_classified(engine):
    clf = build_classifier(parse_config({**_cfg(), "classifier": {"engine": engine}}, "g.yaml", {}))
    for text in ("a\ud800b", "\x00" * 10, "\u202e" * 3000, "😀" * 4000, " "):
        assert clf.classify(text).outcome in ("matched", "below_threshold", "no_route")


def test_route_examples_add_to_the_builtin_corpus():
    engine = BuiltinEngine()
    corpus = builtin_corpus()
    routes = [RouteExamples("security-review", "security-review"),
              RouteExamples("translate", None, ("Translate this into French: good morning",
                                                "Please translate to German: where is the station?",
                                                "How do you say thank you in Japanese?",
                                                "Traduis en anglais : je suis en retard",
                                                "translate the following paragraph into Spanish"))]
    clf = build(engine, routes, corpus)
    assert clf.classify("Translate into Italian: the meeting is at noon").route == "translate"
    assert clf.classify(FIX).route == "security-review"
    # Three labels (two routes and "no route"): the softmax path agrees with scikit-learn too.
    for t in (FIX, "Translate into Italian: hello", BENIGN_FIX):
        x = clf.engine.transform([t])
        expected = dict(zip(clf._model.classes_, clf._model.predict_proba(x)[0], strict=True))
        assert all(abs(clf.scores(t)[k] - expected[k]) < 1e-9 for k in expected)


# -- route selection ----------------------------------------------------------------------------------------

def test_both_prompts_of_the_issue_reach_the_security_route(runtime):
    for prompt in (FIX, REVIEW):
        choice = select_route(runtime, "auto", None, _user(prompt))
        assert choice.route.name == "security-review"
        assert choice.reason.startswith("classify:") and float(choice.reason.split(":")[1]) >= 0.5
        assert choice.verdict.outcome == "matched"


@pytest.mark.parametrize("prompt", [
    ("can you make this run faster?\n\n$name = $_POST['user'];\n"
     "$r = mysqli_query($db, \"SELECT * FROM members WHERE login = '$name'\");"),
    "Tidy up this handler for me\n\napp.post('/thumb', (req, res) => { exec(`ffmpeg -i ${req.body.path} t.jpg`); });",
    ("Why am I getting an error here?\nStatement s = c.createStatement(); "
     "s.execute(\"DELETE FROM carts WHERE id=\" + req.getParameter(\"cart\"));"),
    "please add logging\n\ndata = pickle.loads(base64.b64decode(request.cookies['state']))",
    "We keep our Stripe key in the repo like this: STRIPE_KEY = 'sk_live_51Habcdefghijklmnop'. Thoughts?",
    "Can someone break into our admin panel if passwords are compared with == ?",
])
def test_paraphrases_outside_the_corpus_reach_the_security_route(runtime, prompt):
    assert select_route(runtime, "auto", None, _user(prompt)).route.name == "security-review"


@pytest.mark.parametrize("prompt", [
    "make this faster\n\nresult = []\nfor x in data:\n    if x % 2 == 0:\n        result.append(x * x)",
    "Tidy up this handler for me\n\napp.get('/ping', (req, res) => res.json({ ok: true }));",
    "why am I getting a NullPointerException?\nString s = map.get(key); System.out.println(s.length());",
    "Explain the difference between git merge and git rebase.",
    "add type hints\n\ndef area(w, h):\n    return w * h",
])
def test_benign_requests_outside_the_corpus_stay_general(runtime, prompt):
    assert select_route(runtime, "auto", None, _user(prompt)).route.name == "general"


def test_benign_code_and_prose_fall_through_to_the_default_route(runtime):
    for prompt in (BENIGN_FIX, "Write a limerick about a lighthouse keeper."):
        choice = select_route(runtime, None, None, _user(prompt))
        assert choice.route.name == "general"
        assert choice.reason.startswith("default:classify=")
        assert choice.verdict.outcome == "no_route"


def test_injectable_code_in_the_middle_of_a_long_paste_is_found(runtime):
    filler = "".join(f"def helper_{i}(xs):\n    return [x * {i} for x in xs]\n\n" for i in range(40))
    long_fix = "fix this code\n\n" + filler + HANDLER + "\n\n" + filler
    assert len(long_fix) > 3000
    assert select_route(runtime, "auto", None, _user(long_fix)).route.name == "security-review"
    assert select_route(runtime, "auto", None, _user("fix this code\n\n" + filler * 2)).route.name == "general"


def test_the_system_prompt_is_part_of_the_request(runtime):
    choice = select_route(runtime, "auto", None, _user("Here is the handler.\n" + HANDLER,
                                                       system="You are an application security reviewer."))
    assert choice.route.name == "security-review"


# An application's long system prompt: the same words on every request, no task in them.
APP_SYSTEM = " ".join(["You are a helpful coding assistant for ACME Corp. Answer concisely, use markdown, prefer "
                       "Python examples, and explain your reasoning step by step when the user asks for it."] * 20)
LINK_PREVIEW = " ".join(["The handler reads the parameter, builds the request with the default client, and streams "
                         "the upstream body back to the browser with the same content type."] * 8)


@pytest.mark.parametrize("ask", ["can an attacker abuse this endpoint?", "audit this for weaknesses",
                                 "threat-model this design for me, what could a malicious user do?"])
def test_a_long_system_prompt_does_not_hide_the_users_ask(runtime, ask):
    """The user message states the task: a 3.5k-character system prompt before a 1.2k-character question must
    not push the question out of what the classifier reads (it did: the head of the text was all system
    prompt)."""
    prompt = f"{ask}\n{LINK_PREVIEW}"
    assert select_route(runtime, "auto", None, _user(prompt)).route.name == "security-review"
    choice = select_route(runtime, "auto", None, _user(prompt, system=APP_SYSTEM))
    assert choice.route.name == "security-review", choice.reason


def test_a_security_tools_system_prompt_still_counts(runtime):
    """A security tool's system prompt states the task even when the user only pastes code."""
    system = "You are a security auditor. Review every snippet the user sends for vulnerabilities."
    code = "def add(a, b):\n    return a + b"
    assert select_route(runtime, "auto", None, _user(code)).route.name == "general"
    assert select_route(runtime, "auto", None, _user(code, system=system)).route.name == "security-review"
    explained = runtime.classifier.explain(code, system=system)
    assert explained["route"] == "security-review" and explained["nearest"]


def test_explicit_rules_win_and_named_routes_are_never_classified(runtime):
    assert select_route(runtime, "general", None, _user(FIX)).reason == "name"
    assert select_route(runtime, "general", None, _user(FIX)).verdict is None
    assert select_route(runtime, "auto", "general", _user(FIX)).reason == "header"
    assert select_route(runtime, "m2", None, _user(FIX)).reason == "model"
    assert select_route(runtime, "auto", None, _user("Explain CVE-2021-44228")).reason == "match:0"


def test_a_threshold_the_score_does_not_clear_leaves_it_to_the_next_rule():
    rt = build_runtime(parse_config(_cfg(**{"security-review": {"builtin": "security-review", "threshold": 1.0}}),
                                    "g.yaml", {}))
    choice = select_route(rt, "auto", None, _user(FIX))
    assert choice.route.name == "general" and choice.verdict.outcome == "below_threshold"
    assert choice.verdict.candidate == "security-review"
    # The audit record has only the reason: it names the route that scored, so a near miss is told apart from
    # a prompt nearest to no route (whose reason carries the "no route" score).
    assert choice.reason == f"default:classify=security-review:{choice.verdict.score:.3f}<1.00"
    benign = select_route(rt, "auto", None, _user(BENIGN_FIX))
    assert benign.verdict.outcome == "no_route"
    assert benign.reason == f"default:classify=none:{benign.verdict.score:.3f}"


def test_no_classify_block_means_no_classifier():
    cfg = copy.deepcopy(CONFIG)
    del cfg["routes"]["security-review"]["classify"]
    rt = build_runtime(parse_config(cfg, "g.yaml", {}))
    assert rt.classifier is None
    assert select_route(rt, "auto", None, _user(FIX)).reason == "default"


# -- config -------------------------------------------------------------------------------------------------

def _errors(cfg: dict[str, Any], source: str = "g.yaml") -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(cfg, source, {})
    return str(e.value)


def test_examples_file_formats(tmp_path):
    (tmp_path / "a.yaml").write_text("- \"Translate to French: hello\"\n- {text: 'Translate to German: bye'}\n")
    (tmp_path / "b.jsonl").write_text('{"text": "Traduis : bonjour"}\n\n"translate this please"\n')
    (tmp_path / "c.txt").write_text("translate: one\n\ntranslate: two\n")
    src = tmp_path / "gateway.yaml"
    src.write_text("x")
    for name, n in (("a.yaml", 2), ("b.jsonl", 2), ("c.txt", 2)):
        cfg = parse_config(_cfg(translate={"examples_file": name, "examples": ["translate: literal"]}), str(src), {})
        c = cfg.routes["translate"].classify
        assert len(c._file_examples) == n and c.examples == ["translate: literal"]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("- ok\n- [nested, list]\n", "entry 2: expected a non-empty string"),
    ("key: [unclosed\n", "invalid YAML"),
    ("[]\n", "no examples in the file"),
    ("{a: 1}\n", "expected a YAML list"),
])
def test_a_bad_examples_file_is_a_config_error_naming_its_path(tmp_path, content, message):
    path = tmp_path / "ex.yaml"
    if content is not None:
        path.write_text(content)
    src = tmp_path / "gateway.yaml"
    src.write_text("x")
    err = _errors(_cfg(translate={"examples_file": "ex.yaml"}), str(src))
    assert f"routes.translate.classify.examples_file: {path}" in err and message in err


def _loads_without_hanging(cfg: dict[str, Any], source: str, fifo: Any) -> str:
    """The config error for ``cfg``; fails (instead of hanging) if loading blocks on ``fifo``."""
    import threading

    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(_errors(cfg, source)), daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # blocked opening or reading the FIFO: release it so the thread ends, then fail
        with open(fifo, "wb"):
            pass
        t.join(5)
        pytest.fail(f"loading the config blocked on {fifo}")
    return out[0]


def test_an_examples_or_model_path_that_is_not_a_regular_file_is_refused(tmp_path):
    """A FIFO would block the reload forever, a device like /dev/zero would be read without end: only regular
    files are read, and the error names the path."""
    import os

    fifo = tmp_path / "ex.txt"
    os.mkfifo(fifo)
    src = tmp_path / "gateway.yaml"
    src.write_text("x")
    err = _loads_without_hanging(_cfg(translate={"examples_file": "ex.txt"}), str(src), fifo)
    assert f"routes.translate.classify.examples_file: {fifo}: not a regular file" in err
    err = _errors(_cfg(translate={"examples_file": "/dev/zero"}), str(src))
    assert "routes.translate.classify.examples_file: /dev/zero: not a regular file" in err
    err = _errors(_cfg(translate={"examples_file": str(tmp_path)}), str(src))
    assert f"examples_file: {tmp_path}: not a regular file" in err
    cfg = {**_cfg(), "classifier": {"engine": "embedding", "embedding": {"model": str(fifo),
                                                                         "model_sha256": "0" * 64}}}
    err = _loads_without_hanging(cfg, str(src), fifo)
    assert f"classifier.embedding.model: model {fifo}: not a regular file" in err
    cfg["classifier"]["embedding"] = {"tokenizer": "/dev/zero", "tokenizer_sha256": "1" * 64}
    assert "classifier.embedding.tokenizer: tokenizer /dev/zero: not a regular file" in _errors(cfg, str(src))


def test_a_bad_jsonl_line_names_its_line(tmp_path):
    (tmp_path / "ex.jsonl").write_text('{"text": "ok"}\n{broken\n')
    src = tmp_path / "gateway.yaml"
    src.write_text("x")
    assert "ex.jsonl: line 2: invalid JSON" in _errors(_cfg(translate={"examples_file": "ex.jsonl"}), str(src))


@pytest.mark.parametrize("classify, message", [
    ({}, "classify needs builtin, examples or examples_file"),
    ({"builtin": "poetry"}, "routes.general.classify.builtin"),
    ({"builtin": "general", "threshold": 1.5}, "routes.general.classify.threshold"),
    ({"examples": ["  "]}, "every example must be a non-empty string"),
    ({"builtin": "security-review"}, "builtin task 'security-review' is already used by routes.security-review"),
    ({"builtin": "general", "extra": 1}, "routes.general.classify.extra: unknown field"),
])
def test_classify_block_errors(classify, message):
    assert message in _errors(_cfg(general=classify))


def test_embedding_model_with_a_wrong_hash_is_a_config_error_naming_the_file(tmp_path):
    from gateway.routing.classify.engines import _package_file

    model = _package_file(DEFAULT_MODEL[0], DEFAULT_MODEL[1])
    cfg = {**_cfg(), "classifier": {"engine": "embedding", "embedding": {"model": str(model),
                                                                         "model_sha256": "0" * 64}}}
    err = _errors(cfg)
    assert f"classifier.embedding.model: model {model}: sha256 is {DEFAULT_MODEL[2]}, expected {'0' * 64}" in err
    cfg["classifier"]["embedding"] = {"tokenizer": str(tmp_path / "missing.json"), "tokenizer_sha256": "1" * 64}
    assert "classifier.embedding.tokenizer: tokenizer" in _errors(cfg) and "cannot read" in _errors(cfg)
    cfg["classifier"]["embedding"] = {"model": str(model)}
    assert "a configured file needs its sha256" in _errors(cfg)


def test_the_shipped_embeddings_cache_matches_the_model_and_the_corpus():
    import numpy as np

    from gateway.routing.classify import make_engine
    from gateway.routing.classify.embcache import load_cache

    cache = load_cache(DEFAULT_MODEL[2], DEFAULT_TOKENIZER[2], EmbeddingConfig().max_tokens)
    corpus = builtin_corpus()
    assert {truncate(e.text, 2000) for e in corpus} <= cache.keys()  # regenerate: python -m ...embcache
    cfg = parse_config({**_cfg(), "classifier": {"engine": "embedding"}}, "g.yaml", {})
    fresh = make_engine(cfg.classifier, cache={})
    for e in (corpus[0], corpus[150], corpus[-1]):
        assert float(np.dot(fresh.embed(e.text), cache[e.text])) > 0.999


# -- explain and eval ---------------------------------------------------------------------------------------

def test_explain_shows_nearest_examples_scores_and_threshold(runtime):
    from gateway.reports.explain import explain, render

    res = explain(runtime, {"model": "auto", "messages": _user(FIX)})
    c = res["classifier"]
    assert res["route"] == "security-review" and c["outcome"] == "matched"
    assert c["thresholds"] == {"security-review": 0.5} and c["score"] >= 0.5
    assert len(c["nearest"]) == 3 and all(n["route"] == "security-review" for n in c["nearest"][:1])
    text = render(res)
    assert "nearest examples:" in text and "thresholds: security-review 0.50" in text
    assert "classify:" in text
    assert "classifier" not in explain(runtime, {"model": "general", "messages": _user(FIX)})


def test_classify_eval_cli(tmp_path, capsys):
    import yaml

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(_cfg()))
    assert main(["classify", "eval", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "security-review" in out and "confusion" in out and "(next rule)" in out
    assert main(["classify", "eval", "--config", str(path), "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["test"] == sum(1 for e in builtin_corpus() if e.split == "test")
    assert main(["classify", "eval", "--config", str(path), "--split", "challenge"]) == 0
    out = capsys.readouterr().out
    assert "challenge prompts: 85" in out and "confusion" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]")
    assert main(["classify", "eval", "--config", str(path), "--corpus", str(bad)]) == 2
    assert "a corpus is a mapping" in capsys.readouterr().err
    plain = copy.deepcopy(CONFIG)
    del plain["routes"]["security-review"]["classify"]
    path.write_text(yaml.safe_dump(plain))
    assert main(["classify", "eval", "--config", str(path)]) == 2
    assert "no route has a classify block" in capsys.readouterr().err


def test_classify_is_only_for_chat_routes():
    cfg = _cfg()
    cfg["models"]["emb"] = {"provider": "p", "model": "te3", "kind": "embeddings", "dimensions": 1536}
    cfg["routes"]["vectors"] = {"kind": "embeddings", "models": ["emb"], "classify": {"builtin": "general"}}
    assert "routes.vectors.classify: only for chat routes" in _errors(cfg)
