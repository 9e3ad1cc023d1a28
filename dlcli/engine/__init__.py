"""The engine: the epoch loop, and the models it trains behind one interface (`Trainable`): one
model alone (`SingleModel`) or a stack of same-shape models (`ModelStack`). `grouping` is the one
place that decides what trains together.
"""
