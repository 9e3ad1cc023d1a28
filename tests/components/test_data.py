"""Data sets against theory: the Gaussians' Bayes error, and label noise that flips exactly its fraction."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import tiny_config
from dlcli.components.data import load_dataset
from dlcli.components.datasets import gaussians_bayes_error
from dlcli.config.load import experiment_from_dict


# ---- the Bayes error -----------------------------------------------------------------------------


@pytest.mark.parametrize("classes, separation, sigma", [(3, 2.0, 1.0), (4, 3.0, 1.5), (2, 1.0, 0.8)])
def test_gaussians_bayes_error_matches_monte_carlo_of_the_nearest_mean_classifier(classes, separation, sigma):
    n, dim = 1_000_000, 2
    rng = np.random.default_rng(12345)
    means = np.zeros((classes, dim))
    means[:, 0] = (np.arange(classes) - (classes - 1) / 2) * separation  # on a line, `separation` apart
    y = rng.integers(0, classes, size=n)
    x = means[y] + sigma * rng.standard_normal((n, dim))
    # equal priors, shared isotropic covariance: the Bayes classifier picks the nearest mean
    nearest = ((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    estimate = float((nearest != y).mean())
    expected = gaussians_bayes_error(classes, separation, sigma)
    std = math.sqrt(estimate * (1 - estimate) / n)
    assert abs(expected - estimate) < 5 * std, (expected, estimate, std)


# ---- label noise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("classes, n_train", [(2, 103), (3, 1000)])
def test_label_noise_flips_exactly_the_fraction_to_other_classes(classes, n_train):
    def data(noise):
        config = tiny_config(data={"name": "gaussians", "n_train": n_train, "n_test": 200, "label_noise": noise,
                                   "params": {"classes": classes, "dim": 2, "separation": 2.0, "sigma": 1.0}})
        experiment = experiment_from_dict(config)
        return load_dataset(experiment.data, experiment.seed)

    clean, noisy = data(0.0), data(0.2)
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)
    np.testing.assert_array_equal(clean.x_test, noisy.x_test)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)  # test labels untouched
    changed = clean.y_train != noisy.y_train
    # every chosen label moves to another class, so exactly round(0.2·n) labels differ
    assert changed.sum() == round(0.2 * n_train)
    assert set(noisy.y_train.tolist()) <= set(range(classes))
    if classes == 3:
        # the new class is drawn among the others: both others occur
        moves = (noisy.y_train[changed] - clean.y_train[changed]) % classes
        assert set(moves.tolist()) == {1, 2}
