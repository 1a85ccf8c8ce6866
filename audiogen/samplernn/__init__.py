"""audiogen.samplernn"""
