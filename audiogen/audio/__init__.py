"""Audio decoding, resampling, writing and quantization."""
from audiogen.audio.quantize import dequantize, quantize, silence_level
