"""Eyeriss-style energy estimation (Yang et al. 2017): row-stationary mapping search,
access counts per memory level, sparsity and bitwidth.  See docs/estimation.md."""

from estimation.estimate import LayerEstimate, NetworkEstimate, estimate_layer, estimate_network
from estimation.eyeriss_config import ConfigError, EyerissConfig
from estimation.row_stationary import MappingError, RSMapping, access_counts, search_mapping

__all__ = ["EyerissConfig", "ConfigError", "RSMapping", "MappingError", "LayerEstimate", "NetworkEstimate",
           "estimate_layer", "estimate_network", "access_counts", "search_mapping"]
