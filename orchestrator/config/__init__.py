"""Study configuration: the models (one module per concept) and the YAML loader with file:line errors."""

from .budget import Budget
from .design import AdaptiveSeeds, Analysis, Component, Design, Sweep, Tier, Tiers
from .loader import load_config, load_yaml, parse_config
from .metrics import Metric, Metrics
from .resources import FaultTolerance, Reproducibility, Resources
from .search_space import SearchSpace
from .study import NAME_RE, StudyConfig, json_schema
from .tracking import Storage, Tracking, WandbSettings
from .trainable import ScriptTrainable, resolve_callable
from .tuning import ScheduleAt, Tuning

__all__ = [
    "NAME_RE", "AdaptiveSeeds", "Analysis", "Budget", "Component", "Design", "FaultTolerance", "Metric", "Metrics",
    "Reproducibility", "Resources", "ScheduleAt", "ScriptTrainable", "SearchSpace", "Storage", "StudyConfig",
    "Sweep", "Tier", "Tiers", "Tracking", "Tuning", "WandbSettings", "json_schema", "load_config", "load_yaml",
    "parse_config", "resolve_callable",
]
