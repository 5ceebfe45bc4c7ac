"""embedbench: evaluate text-embedding models for retrieval, encoding each text once.

Public API (imported lazily so `embedbench --help` stays fast):
    evaluate(model, suite=..., dataset=..., precisions=..., dims=...) -> list[Result]
    load_plan(name_or_file) -> EvalPlan;  evaluate_plan(plan, results_dir=...) -> list[Result]
    read_results(results_dir) -> list[Result]
    Encoder, NestedEncoder, SearchModel, EncoderMeta   (the plugin contract)
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "embedbench.engine.runner",
    "evaluate_plan": "embedbench.engine.plans",
    "load_plan": "embedbench.plans",
    "EvalPlan": "embedbench.plans",
    "read_results": "embedbench.results",
    "Result": "embedbench.results",
    "Encoder": "embedbench.encoders.protocol",
    "NestedEncoder": "embedbench.encoders.protocol",
    "SearchModel": "embedbench.encoders.protocol",
    "EncoderMeta": "embedbench.encoders.protocol",
    "EncodeSettings": "embedbench.encoders.settings",
    "EmbedbenchError": "embedbench.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'embedbench' has no attribute {name!r}")
