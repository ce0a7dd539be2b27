"""freshness's own settings, from the environment (the shared Settings cover the platform)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gongkai.rules import DEFAULT_RULE_SETS, RuleSet, load_rule_sets

ENV_RULE_SETS = "GONGKAI_FRESHNESS_RULE_SETS"
ENV_TICK = "GONGKAI_FRESHNESS_TICK_SECONDS"
ENV_WARN = "GONGKAI_FRESHNESS_WARN_DAYS"


class ConfigError(ValueError):
    """A freshness setting is wrong; the message names the variable."""


@dataclass(frozen=True)
class FreshnessConfig:
    #: Shipped rule-set names or paths to YAML files, in reporting order.
    rule_sets: tuple[str, ...] = DEFAULT_RULE_SETS
    #: How often the clock tick looks for deadlines that passed (it acts once per new day).
    tick_seconds: float = 60.0
    #: Overrides every rule's warning window (working days before the due date).
    warn_working_days: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FreshnessConfig:
        env = os.environ if env is None else env
        cfg = cls()
        raw = env.get(ENV_RULE_SETS, "").strip()
        if raw:
            refs = tuple(r.strip() for r in raw.split(",") if r.strip())
            if not refs:
                raise ConfigError(f"{ENV_RULE_SETS}: name at least one rule set")
            cfg = replace(cfg, rule_sets=refs)
        raw = env.get(ENV_TICK, "").strip()
        if raw:
            try:
                tick = float(raw)
            except ValueError:
                tick = 0.0
            if not 0.05 <= tick <= 86400:
                raise ConfigError(f"{ENV_TICK}: seconds from 0.05 to 86400, got {raw!r}")
            cfg = replace(cfg, tick_seconds=tick)
        raw = env.get(ENV_WARN, "").strip()
        if raw:
            if not raw.isdigit() or int(raw) > 60:
                raise ConfigError(f"{ENV_WARN}: working days from 0 to 60, got {raw!r}")
            cfg = replace(cfg, warn_working_days=int(raw))
        return cfg

    def load_rule_sets(self) -> tuple[RuleSet, ...]:
        """The configured rule sets, validated (raises RuleSetError naming the problem)."""
        return with_warning(load_rule_sets(self.rule_sets), self.warn_working_days)


def with_warning(rule_sets: Sequence[RuleSet], days: int | None) -> tuple[RuleSet, ...]:
    """The same rule sets with every rule's warning window set to ``days`` (None: unchanged)."""
    if days is None:
        return tuple(rule_sets)
    out = []
    for rs in rule_sets:
        rules = {r.id: replace(r, warn_working_days=days) for r in rs.rules}
        by_column = {c: tuple(rules[r.id] for r in rs_) for c, rs_ in rs.rules_by_column.items()}
        out.append(replace(rs, rules=tuple(rules.values()), rules_by_column=by_column))
    return tuple(out)
