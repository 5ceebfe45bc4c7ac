"""RAG generators end to end: a tiny random causal LM loaded from a folder, and a real local HTTP chat server."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedbench.errors import EmbedbenchError, ModelError
from embedbench.encoders.http_client import HttpClient
from embedbench.rag import ChatEndpointGenerator, TransformersGenerator, generate_and_score, load_generator
from embedbench.rag.generators import SYSTEM_PROMPT, SYSTEM_PROMPT_NO_DOCS, build_messages, plain_prompt
from embedbench.rag.run import top_passages
from http_fakes import fake_api_server  # noqa: F401  (fixture)

WORDS = ["paris", "london", "capital", "is", "the", "of", "france", "who", "wrote", "hamlet"]
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
NO_SYSTEM_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
                      "{% endif %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}<|assistant|>")


def tiny_lm(root: Path, chat_template: str | None = TEMPLATE) -> Path:
    """A 2-layer random Llama with a word-level tokenizer. Its final norm is zeroed, so every logit is 0 and
    greedy decoding always picks token 0 ("paris"): meaningless weights, a fully real generation path."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(WORDS + SPECIALS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", additional_special_tokens=SPECIALS[4:])
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(root)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=False, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
                         pad_token_id=vocab["<pad>"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


QUESTIONS = {"q1": "what is the capital of france", "q2": "who wrote hamlet", "q3": "a question with no gold"}
PASSAGES = {"q1": ["Paris is the capital of France.", "London is the capital of England.", "unused third"],
            "q2": ["Hamlet is a tragedy.", "It was written by Shakespeare.", "unused third"],
            "q3": ["nothing"]}
ANSWERS = {"q1": ["Paris"], "q2": ["William Shakespeare", "Shakespeare"], "q3": ["", "the"]}


def test_fixed_prompt_template() -> None:
    long = " ".join(f"w{i}" for i in range(150))
    system, user = build_messages("who?", ["first  passage", long])
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    first_100 = " ".join(f"w{i}" for i in range(100))
    assert user["content"] == f"Background:\nDocument 1: first passage\nDocument 2: {first_100}\n\nQuestion: who?"
    assert build_messages("who?", []) == [{"role": "system", "content": SYSTEM_PROMPT_NO_DOCS},
                                          {"role": "user", "content": "Question: who?"}]
    assert plain_prompt("who?", ["p"]) == f"{SYSTEM_PROMPT}\n\nBackground:\nDocument 1: p\n\nQuestion: who?\n\nAnswer:"


def test_transformers_generator_end_to_end(lm_dir: Path) -> None:
    gen = load_generator(f"hf:{lm_dir}", max_new_tokens=1)
    assert isinstance(gen, TransformersGenerator) and gen.ref == f"hf:{lm_dir.resolve()}" and len(gen.fingerprint) == 16
    text, templated = gen.prompt(QUESTIONS["q1"], PASSAGES["q1"][:1])
    assert templated and text.startswith(f"<|system|> {SYSTEM_PROMPT} <|user|> Background:\nDocument 1: Paris")
    assert text.endswith("<|assistant|>")
    predictions: dict[str, str] = {}
    scores = generate_and_score(gen, QUESTIONS, PASSAGES, ANSWERS, k=2, predictions=predictions, progress=False)
    assert predictions == {"q1": "paris", "q2": "paris"}  # q3 has no usable gold: not asked
    assert scores == {"match": {"q1": 1.0, "q2": 0.0}, "exact_match": {"q1": 1.0, "q2": 0.0},
                      "f1": {"q1": 1.0, "q2": 0.0}}
    three = TransformersGenerator(str(lm_dir), max_new_tokens=3)
    assert three.generate("capital of france?", []) == "paris paris paris"
    assert generate_and_score(three, {"q1": "x"}, {}, ANSWERS, k=0, progress=False) == \
        {"match": {"q1": 1.0}, "exact_match": {"q1": 0.0}, "f1": {"q1": 0.5}}


def test_templates_without_system_role_or_without_template(tmp_path: Path) -> None:
    no_system = TransformersGenerator(str(tiny_lm(tmp_path / "nosys", NO_SYSTEM_TEMPLATE)), max_new_tokens=1)
    text, templated = no_system.prompt("who?", ["p"])
    assert templated and text.startswith(f"<|user|> {SYSTEM_PROMPT}\nBackground:\nDocument 1: p")
    plain = load_generator(str(tiny_lm(tmp_path / "plain", None)), max_new_tokens=1)
    text, templated = plain.prompt("who?", ["p"])
    assert not templated and text == plain_prompt("who?", ["p"])
    assert plain.generate("who?", ["p"]) == "paris"


def test_load_generator_refs(tmp_path: Path) -> None:
    gen = load_generator("http://127.0.0.1:9/v1?model=qwen&max_tokens=16&api_key_env=MY_KEY&timeout=5")
    assert isinstance(gen, ChatEndpointGenerator)
    assert (gen.ref, gen.max_tokens, gen.client.timeout, gen.client.api_key_env) == (
        "http://127.0.0.1:9/v1?model=qwen", 16, 5.0, "MY_KEY")
    with pytest.raises(EmbedbenchError, match="needs a model name"):
        load_generator("http://127.0.0.1:9/v1")
    with pytest.raises(EmbedbenchError, match="unknown option 'temperature'"):
        load_generator("http://127.0.0.1:9/v1?model=m&temperature=1")
    with pytest.raises(EmbedbenchError, match="not an integer"):
        load_generator("http://127.0.0.1:9/v1?model=m&max_tokens=many")
    with pytest.raises(ModelError, match="is not a model folder"):
        load_generator(str(tmp_path / "missing"))
    with pytest.raises(ModelError, match="cannot load generator"):
        load_generator(f"hf:{tmp_path}")


def _answer(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    return "The capital is Paris." if "france" in user else "I do not know"


def test_chat_endpoint_generator_against_a_real_server(fake_api_server,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_api_server(api_key="secret", chat_answer=_answer)
    monkeypatch.setenv("MY_KEY", "secret")
    gen = load_generator(f"{server.url}?model=tiny-chat&api_key_env=MY_KEY&max_tokens=16")
    scores = generate_and_score(gen, QUESTIONS, PASSAGES, ANSWERS, k=2, progress=False)
    # q1: "capital is paris" vs "paris" -> match 1, EM 0, F1 0.5; q2: no overlap with either gold.
    assert scores == {"match": {"q1": 1.0, "q2": 0.0}, "exact_match": {"q1": 0.0, "q2": 0.0},
                      "f1": {"q1": pytest.approx(0.5), "q2": 0.0}}
    posts = server.posts("/v1/chat/completions")
    assert len(posts) == 2 and posts[0].headers["authorization"] == "Bearer secret"
    body = posts[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("tiny-chat", 0, 16)
    assert body["messages"] == build_messages(QUESTIONS["q1"], PASSAGES["q1"][:2])
    assert "unused third" not in body["messages"][1]["content"]


def test_chat_endpoint_failures(fake_api_server) -> None:  # noqa: F811
    server = fake_api_server(chat_answer="Paris")
    waits: list[float] = []
    gen = ChatEndpointGenerator(server.url, "m", client=HttpClient(server.url, api_key_env=None, max_retries=2,
                                                                   sleep=waits.append))
    server.fail(503, times=2)
    assert gen.generate("q", ["p"]) == "Paris" and len(waits) == 2  # retried through the shared client
    server.fail(400)
    with pytest.raises(ModelError, match="HTTP 400"):
        gen.generate("q", ["p"])
    server.fail(200, body=b'{"object": "chat.completion", "choices": []}')
    with pytest.raises(ModelError, match=r"no choices\[0\].message.content"):
        gen.generate("q", ["p"])
    server.fail(200, body=b'{"choices": [{"message": {"content": null}}]}')
    with pytest.raises(ModelError, match="content is NoneType"):
        gen.generate("q", ["p"])


def test_generate_and_score_checks_its_inputs() -> None:
    class Echo:
        ref, fingerprint = "echo", "echo"

        def generate(self, question: str, passages: list[str]) -> str:
            return " ".join(passages) or question

    assert generate_and_score(Echo(), {"q1": "Paris?"}, {}, ANSWERS, k=0, progress=False)["match"] == {"q1": 1.0}
    with pytest.raises(EmbedbenchError, match="non-negative"):
        generate_and_score(Echo(), QUESTIONS, PASSAGES, ANSWERS, k=-1)
    with pytest.raises(EmbedbenchError, match="no ranked passages for query 'q2'"):
        generate_and_score(Echo(), QUESTIONS, {"q1": ["x"]}, ANSWERS, k=1)
    run = {"q1": {"d2": 1.0, "d10": 1.0, "d1": 0.5, "d3": 2.0}}
    texts = {"d1": "one", "d2": "two", "d3": "three", "d10": "ten"}
    assert top_passages(run, texts, k=3) == {"q1": ["three", "two", "ten"]}  # ties by id, descending
    assert top_passages(run, texts, k=2, qids=["q1", "q9"]) == {"q1": ["three", "two"], "q9": []}
