"""The parts a run is made of: data sets and their preparation, models, losses, optimizers,
schedules, early stopping; `prepare` puts them together and checks them, and `RunLog` writes a run's files.

(The layer the architecture calls *train*; the name `dlcli.train` is the public training function.)
"""
