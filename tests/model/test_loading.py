"""Model specs: local presets load for real; Kaggle failures become clear messages."""

import numpy as np
import pytest
from tiny_models import tiny_gemma

from salience import loading
from salience.errors import CredentialsError, ModelLoadError, UnsupportedModelError


@pytest.fixture(scope="module")
def gemma_preset(tmp_path_factory, spm_proto):
    directory = tmp_path_factory.mktemp("preset") / "tiny_gemma2"
    tiny_gemma(spm_proto, seed=2, soft_cap=30.0).save_to_preset(str(directory))
    return directory


def test_local_preset_loads_and_explains(gemma_preset):
    for spec in (f"preset:{gemma_preset}", str(gemma_preset)):
        model = loading.load_model(spec)
        assert model.family == "gemma" and model.name == "tiny_gemma2"
        result = model.salience("Taste-likes: Cheese.", " Avoid.", precision="float32")
        start = result.target_token_span[0]
        assert np.isfinite(result.scores["grad_l2"]).all() and result.scores["grad_l2"][:start].any()
        assert model.generate("Cheese").stop_reason in ("max_new_tokens", "end_of_text")


def test_preset_of_the_wrong_kind(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "task.json").write_text('{"class_name": "BertTextClassifier"}')
    with pytest.raises(UnsupportedModelError, match="only causal language models"):
        loading.load_model(f"preset:{tmp_path}")


def test_kaggle_without_credentials_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / ".kaggle"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    def offline(handle):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(loading, "_from_preset", offline)
    with pytest.raises(CredentialsError, match="no Kaggle credentials.*kaggle.json"):
        loading.load_model("kaggle:gemma_instruct_2b_en")
    with pytest.raises(CredentialsError, match="no Kaggle credentials"):
        loading.load_model("gemma2_instruct_2b_en")


def test_kaggle_with_credentials_but_no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.setattr(loading, "_from_preset", lambda handle: (_ for _ in ()).throw(OSError("timed out")))
    with pytest.raises(CredentialsError, match="check the network"):
        loading.load_model("kaggle:gemma3_instruct_1b")


def test_unknown_specs():
    with pytest.raises(ModelLoadError, match="Unknown model 'llama'"):
        loading.load_model("llama")
    with pytest.raises(ModelLoadError, match="Name a Kaggle preset"):
        loading.load_model("kaggle:")
    with pytest.raises(ModelLoadError, match="does not exist"):
        loading.load_model("gguf:/nonexistent/file.gguf")
