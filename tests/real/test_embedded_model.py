"""The real embedded Gemma 3 270M: the seed's tokenization, generation and salience."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from salience.core.types import GenerationSettings
from salience.prompts.samples import find_sample
from salience.report.explain import segment_payload

ROOT = Path(__file__).resolve().parents[2]


def test_seed_tokenization(real_model):
    assert real_model.tokenize("Keras is a").tokens == ("<bos>", "K", "eras", "▁is", "▁a")


def test_fewshot_mistake_story(real_model):
    prompt = find_sample("fewshot-mistake").render().text
    result = real_model.generate(prompt, GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",)))
    assert "Recommendation" in result.text
    assert result.stop_reason == "stop_sequence"
    explanation = real_model.salience(prompt, result.text)
    start = explanation.target_token_span[0]
    for values in explanation.scores.values():
        assert np.isfinite(values).all()
        assert np.all(values[start:] == 0) and np.any(values[:start] != 0)

    # Explain the Recommendation line: the first example's mismatched lines light up.
    line = result.text.index("Recommendation")
    focused = real_model.salience(
        prompt, result.text, char_span=(len(prompt) + line, len(prompt) + len(result.text))
    )
    segments = [s for s in segment_payload(focused, "sentences") if not s["in_target"] and s["text"].strip()]
    top = sorted(segments, key=lambda s: -s["grad_l2"])[:3]
    first_example = prompt[: prompt.index("Taste-likes: I've a sweet-tooth\nTaste-dislikes", 60)]
    assert any(s["end"] <= len(first_example) and "onion" in prompt[: s["end"]].lower() for s in top)


def test_fixed_prompt_changes_the_answer(real_model):
    prompt = find_sample("fewshot-fixed").render().text
    result = real_model.generate(prompt, GenerationSettings(max_new_tokens=48, stop_sequences=("\n\n",)))
    assert "Recommendation" in result.text


def test_cli_explain_json(tmp_path):
    prompt = find_sample("fewshot-mistake").render().text
    (tmp_path / "prompt.txt").write_text(prompt)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "explain",
            "--prompt-file",
            str(tmp_path / "prompt.txt"),
            "--target",
            " it has cheese in it.\nRecommendation: You have to try it.",
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout)
    n = len(payload["tokens"])
    assert payload["tokens"][0] == "<bos>"
    scores = payload["scores"]
    assert payload["methods"] == ["deletion_estimate"]  # the page's first colours, by default
    assert len(payload["offsets"]) == len(scores["deletion_estimate"]) == n
    start, end = payload["target_token_span"]
    assert end == n and not any(scores["deletion_estimate"][start:])
    assert all(np.isfinite(scores["deletion_estimate"]))
    assert payload["diagnostics"]["deletion_estimate"]["checked"]  # some sentences deleted for real


def test_runs_of_spaces_use_gemmas_whitespace_pieces(real_model):
    """Gemma's pieces for 2-31 spaces (ids 138-167) are used as Gemma's own tokenizer uses them
    (the GGUF stores them with raw spaces; format 1 of the cache could never match them)."""
    code = real_model.tokenize("print(y)  # prints", add_bos=False)
    assert code.tokens[3:6] == (")", "▁▁", "#") and code.ids[4] == 138
    assert real_model.tokenize("x    y", add_bos=False).ids == (
        real_model.tokenizer.token_id("x"),
        140,
        real_model.tokenizer.token_id("y"),
    )
    assert real_model.tokenize(" " * 31, add_bos=False).ids == (167,)
    assert real_model.tokenize(" " * 40, add_bos=False).ids == (167, 145)  # 31 + 9 spaces
    sentence = real_model.tokenize("End.  Next", add_bos=False)
    assert sentence.tokens == ("End", ".", "▁▁", "Next") and sentence.ids[2] == 138
    indented = "def f():\n        return 1\n"
    pieces = real_model.tokenize(indented, add_bos=False)
    assert 144 in pieces.ids  # eight spaces of indentation, one piece
    for tokens, text in ((code, "print(y)  # prints"), (pieces, indented)):
        assert "".join(text[start:end] for start, end in tokens.offsets) == text
        assert real_model.tokenizer.decode(tokens.ids) == text


def test_turn_markers_in_text_are_gemmas_turn_tokens(real_model):
    """Chosen behaviour (Gemma's own tokenizer does the same): literal ``<start_of_turn>`` /
    ``<end_of_turn>`` text is the turn marker, so the chat template works; ``<bos>``, ``<eos>``
    and ``<pad>`` typed as text stay text."""
    chat = real_model.tokenize("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    assert chat.ids[:2] == (2, 105) and chat.tokens.count("<end_of_turn>") == 1
    assert chat.ids.count(105) == 2 and 106 in chat.ids
    assert chat.offsets[1] == (0, len("<start_of_turn>"))
    assert len(real_model.tokenize("<bos>", add_bos=False)) > 1
    assert 1 not in real_model.tokenize("text <eos> more", add_bos=False).ids


def test_decoding_logits_match_keras_hub(real_model):
    from keras_hub_reference import assert_decoding_matches

    assert_decoding_matches(real_model, steps=3, tolerance=2e-3, prompt="def f(x):\n    return  x  # twice\n")
