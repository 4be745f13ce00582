"""leadgate's engine: ruleset files compiled onto durable_rules, evaluated into decisions.

Pure: lead facts + ruleset source + evaluation time in, a decision out. It knows nothing of HTTP or
storage, and it is the only package that imports durable_rules.
"""

from .compiler import check_source, compile_source, digest_of
from .errors import EngineError, EvaluationError, FactsError, Problem, RulesetError, UnknownRuleset
from .facts import CheckedFacts
from .registry import Deployment, Registry
from .runtime import CompiledRuleset, Evaluation

__all__ = [
    "CheckedFacts",
    "CompiledRuleset",
    "Deployment",
    "EngineError",
    "Evaluation",
    "EvaluationError",
    "FactsError",
    "Problem",
    "Registry",
    "RulesetError",
    "UnknownRuleset",
    "check_source",
    "compile_source",
    "digest_of",
]
