"""Model specs: local presets load for real; Kaggle failures become clear messages."""

import numpy as np
import pytest
from tiny_models import tiny_gemma

from salience.core.errors import CredentialsError, ModelLoadError, UnsupportedModelError
from salience.model import loader as loading


@pytest.fixture(scope="module")
def gemma_preset(tmp_path_factory, spm_proto):
    directory = tmp_path_factory.mktemp("preset") / "tiny_gemma2"
    tiny_gemma(spm_proto, seed=2, soft_cap=30.0).save_to_preset(str(directory))
    return directory


@pytest.mark.slow  # over ~5 s: left out of the fast loop
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

    def offline(handle, dtype=None):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(loading, "_from_preset", offline)
    with pytest.raises(CredentialsError, match="no Kaggle credentials.*kaggle.json"):
        loading.load_model("kaggle:gemma_instruct_2b_en")
    with pytest.raises(CredentialsError, match="no Kaggle credentials"):
        loading.load_model("gemma2_instruct_2b_en")


def _http_error(status: int):
    import requests
    from kagglehub.exceptions import KaggleApiHTTPError

    response = requests.Response()
    response.status_code = status
    response.url = "https://www.kaggle.com/api/v1/models/keras/gemma"
    return KaggleApiHTTPError(f"{status} Client Error", response=response)


def _raising(error):
    def load(handle, dtype=None):
        raise error

    return load


@pytest.fixture
def kaggle_credentials(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")


def _wrapped(error):
    """As KerasHub re-raises a kagglehub error: the original is the cause."""
    try:
        try:
            raise error
        except Exception as inner:
            raise ValueError("Could not download the preset") from inner
    except ValueError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (_http_error(401), CredentialsError, "refused.*HTTP 401.*credentials"),
        (_wrapped(_http_error(403)), CredentialsError, "refused.*HTTP 403.*licence"),
        (_http_error(404), ModelLoadError, "Kaggle has no preset"),
        (ValueError("Unknown preset identifier 'gemma_nope'"), ModelLoadError, "Kaggle has no preset"),
        (_wrapped(ConnectionError("Max retries exceeded")), ModelLoadError, "Cannot reach Kaggle.*network"),
        (TimeoutError("timed out"), ModelLoadError, "Cannot reach Kaggle"),
        (RuntimeError("HDF5 file is truncated"), ModelLoadError, "RuntimeError: HDF5 file is truncated"),
    ],
)
def test_kaggle_failures_name_their_cause(monkeypatch, kaggle_credentials, error, kind, message):
    monkeypatch.setattr(loading, "_from_preset", _raising(error))
    with pytest.raises(kind, match=message) as raised:
        loading.load_model("kaggle:gemma3_instruct_1b")
    if kind is not CredentialsError:  # only a credentials problem is called one
        assert not isinstance(raised.value, CredentialsError)
        assert "credentials" not in str(raised.value)


def test_unknown_specs():
    with pytest.raises(ModelLoadError, match="Unknown model 'llama'"):
        loading.load_model("llama")
    with pytest.raises(ModelLoadError, match="Name a Kaggle preset"):
        loading.load_model("kaggle:")
    with pytest.raises(ModelLoadError, match="does not exist"):
        loading.load_model("gguf:/nonexistent/file.gguf")
