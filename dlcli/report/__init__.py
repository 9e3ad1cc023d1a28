"""What a person sees: console tables and progress (rich), figures (matplotlib), and the one number
formatter. Nothing else prints or draws.
"""
