"""audiogen.musicvae"""
