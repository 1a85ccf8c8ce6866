"""audiogen.cli"""
