"""The engines Tarjama can run, by name: adding one is a module, one line here and its name in
`settings.ENGINES` (the flags' choices; settings sits below the engines, so it cannot read this table,
and a test holds the two equal).

Each module named here provides the functions of `engines.EngineModule`, and imports its framework only
inside them.
"""

ENGINE_MODULES: dict[str, str] = {
    "ctranslate2": "tarjama.server.engines.ctranslate2_engine",
    "torch": "tarjama.server.engines.torch_engine",
}
