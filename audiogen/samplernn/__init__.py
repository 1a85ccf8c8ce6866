"""SampleRNN: the model (frame tiers + sample-level MLP, TBPTT training) and its compiled sampler."""
from audiogen.samplernn.model import SampleRNN
from audiogen.samplernn.sampler import generate

__all__ = ["SampleRNN", "generate"]
