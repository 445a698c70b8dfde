"""nmcompiler's network IR: data model, verification, save/load, reference simulator.

Imports nothing of nmcompiler's own and needs only numpy (docs/architecture.md#import-rules).
"""

from . import errors
from .connectivity import (
    CONNECTIVITY_TYPES,
    AvgPool2d,
    Conv2d,
    Dense,
    OneToOne,
    Sparse,
    SumPool2d,
    conv_output_shape,
    pool_output_shape,
)
from .io import FORMAT_VERSION, load, save
from .models import IF, LI, LIF, MODEL_TYPES, RF, Reset
from .network import Input, Network, Output, Population, Probe, Projection
from .simulate import SimResult, simulate
from .verify import verify, zero_delay_order

__version__ = "0.1.0"

__all__ = [
    "errors",
    "Network",
    "Population",
    "Input",
    "Projection",
    "Output",
    "Probe",
    "LIF",
    "IF",
    "LI",
    "RF",
    "Reset",
    "MODEL_TYPES",
    "Dense",
    "Sparse",
    "OneToOne",
    "Conv2d",
    "SumPool2d",
    "AvgPool2d",
    "CONNECTIVITY_TYPES",
    "conv_output_shape",
    "pool_output_shape",
    "verify",
    "zero_delay_order",
    "simulate",
    "SimResult",
    "save",
    "load",
    "FORMAT_VERSION",
]
