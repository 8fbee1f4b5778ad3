"""The engines Tarjama can run, by name: adding one is a module and one line here.

Each module named here provides, and imports its framework only inside them:
- `cuda_devices() -> int`: the GPUs its own library sees (`--device auto` asks only that library);
- `open_translation(model, settings) -> Engine` (engines.base.Engine);
- `open_summary(model, settings) -> SummaryEngine` (engines.summary_engines.SummaryEngine);
- `prepare(model, settings) -> str | None`: what `tarjama models download` does beyond fetching
  (CTranslate2 converts), and where the result is.
"""

ENGINE_MODULES = {
    "ctranslate2": "tarjama.server.engines.ctranslate2_engine",
    "torch": "tarjama.server.engines.torch_engine",
}
