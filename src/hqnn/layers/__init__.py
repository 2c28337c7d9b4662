"""Classical building blocks shared by the models: the Self-Proliferate (ghost) module, the two
readings of SP&A-Net's self-attention, the SP&A block, multi-step spiking layers (weighted-phase
encoder, integrate-and-fire neuron with arctan surrogate) and the classical twin of a quantum layer.
"""

from hqnn.layers.attention import (
    ATTENTION_KINDS,
    ChannelLayerNorm,
    GlobalContextAttention,
    PixelGateAttention,
    keras_hard_sigmoid,
    make_attention,
)
from hqnn.layers.ghost import SelfProliferate
from hqnn.layers.keras_init import init_like_keras
from hqnn.layers.spa_block import SPABlock, keras_batch_norm
from hqnn.layers.spiking import (
    ATanSpike,
    IFNeuron,
    TimeDistributed,
    WeightedPhaseEncoder,
    atan_spike,
    weighted_phase_encode,
)
from hqnn.layers.twin import ClassicalTwin

__all__ = [
    "ATTENTION_KINDS",
    "ATanSpike",
    "ChannelLayerNorm",
    "ClassicalTwin",
    "GlobalContextAttention",
    "IFNeuron",
    "PixelGateAttention",
    "SPABlock",
    "SelfProliferate",
    "TimeDistributed",
    "WeightedPhaseEncoder",
    "atan_spike",
    "init_like_keras",
    "keras_batch_norm",
    "keras_hard_sigmoid",
    "make_attention",
    "weighted_phase_encode",
]
