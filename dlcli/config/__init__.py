"""The config layer: the schema of an experiment, the one way a config file is read, and sweep specs.

Nothing here imports torch: validating a config is fast, and `dlcli --help` stays fast.
"""
