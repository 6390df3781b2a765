"""The model: Keras backend set-up, GGUF import, the embedded preset, loading, the compiled
forward passes, the in-process `LanguageModel`, batched decoding and tokenizing.

The only subpackage that imports TensorFlow, Keras and KerasHub — and only inside its modules
(`forward`, `loader`, `gguf_import`), never here. May import `salience.attribution`,
`salience.prompts` and `salience.core`."""
