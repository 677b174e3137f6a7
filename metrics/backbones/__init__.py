"""Feature extractors for the metrics: named, with recorded weights hash and preprocessing."""

from metrics.backbones.base import Backbone
from metrics.backbones.registry import available_backbones, build_backbone, register_backbone
from metrics.backbones.resize import RESIZE_POLICIES

__all__ = ["RESIZE_POLICIES", "Backbone", "available_backbones", "build_backbone", "register_backbone"]
