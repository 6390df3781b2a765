"""The model: Keras backend set-up, GGUF import, the embedded preset, loading, the compiled
forward passes, the in-process `LanguageModel`, batched decoding and tokenizing, and the engine
interface every model answers (`engine`: `EngineCalls`, `SalienceRequest`).

The only subpackage that imports TensorFlow, Keras and KerasHub — and only inside its modules
(`forward`, `loader`, `gguf_import`), never here. May import `salience.attribution`,
`salience.prompts` and `salience.core`."""

__all__ = [  # the public modules; importing the package imports none of them
    "backend",
    "batch_generation",
    "decoding",
    "embedded",
    "engine",
    "forward",
    "gguf_import",
    "language_model",
    "loader",
    "tokenizing",
]
