"""audiogen.midi"""
