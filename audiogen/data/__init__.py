"""audiogen.data"""
