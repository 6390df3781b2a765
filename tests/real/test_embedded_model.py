"""The real embedded Gemma 3 270M: the seed's tokenization, generation and salience."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from salience.explain import segment_payload
from salience.samples import find_sample
from salience.types import GenerationSettings

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
    assert len(payload["offsets"]) == len(payload["grad_l2"]) == len(payload["grad_dot_input"]) == n
    start, end = payload["target_token_span"]
    assert end == n and not any(payload["grad_l2"][start:])
    assert all(np.isfinite(payload["grad_dot_input"]))
