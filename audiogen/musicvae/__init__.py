"""audiogen.musicvae: MusicVAE (Roberts et al., ICML 2018) and its sampler."""
from audiogen.musicvae.model import MusicVAE
from audiogen.musicvae.sampler import interpolate, reconstruct, sample, slerp

__all__ = ["MusicVAE", "sample", "interpolate", "reconstruct", "slerp"]
