"""Circuit templates: embeddings, trainable layers, entangling patterns, data re-uploading, and the
seed systems' circuits (:mod:`hqnn.templates.recipes`).

A template is a small frozen object called on a circuit (``circuit.add(template)``); trainable ones
have ``shape(...)`` giving the weight shape and validate their weights when applied. Names and
conventions follow PennyLane's templates.
"""

from hqnn.templates import noisy_recipes, recipes
from hqnn.templates.embeddings import AngleEmbedding
from hqnn.templates.entanglers import PATTERNS, Entangler, entangler_pairs
from hqnn.templates.layers import BasicEntanglerLayers, StronglyEntanglingLayers
from hqnn.templates.reuploading import DataReuploading

__all__ = [
    "AngleEmbedding",
    "BasicEntanglerLayers",
    "DataReuploading",
    "Entangler",
    "PATTERNS",
    "StronglyEntanglingLayers",
    "entangler_pairs",
    "noisy_recipes",
    "recipes",
]
