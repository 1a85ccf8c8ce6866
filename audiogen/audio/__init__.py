"""Audio decoding, resampling, writing and quantization."""
from audiogen.audio.io import load_audio, save_wav
from audiogen.audio.quantize import dequantize, quantize, silence_level
