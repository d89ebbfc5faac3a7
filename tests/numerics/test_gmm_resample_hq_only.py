"""PriorGAN's f^g over the high-quality generated images only (issue 18, off by default): with --resample-hq-only a
generated point between the modes (log p < log theta) fills no group, so a mode that G misses shows its deficit in
Eq. 8 even when G's smear lands in its Voronoi cell."""

import numpy as np
import pytest
import torch

import dnnlib
from priors.gmm import cli as gmm_cli
from priors.gmm.prior import GMMPrior
from torch_utils import training_stats
from training import toy_data

class _PointsG:
    """A 'generator' that cycles through fixed 2-D points, one per sample."""
    z_dim, c_dim = 2, 0
    def __init__(self, points):
        self.points = torch.tensor(np.asarray(points), dtype=torch.float32)
        self.mapping, self.synthesis = self._mapping, self._synthesis
        self.calls = 0
    def _mapping(self, z, c, **kwargs):
        return z[:, None, :]
    def _synthesis(self, ws, **kwargs):
        idx = (torch.arange(ws.shape[0]) + self.calls) % len(self.points)
        self.calls += ws.shape[0]
        return self.points[idx].reshape(-1, 2, 1, 1)

def test_the_option_reaches_the_prior_and_is_off_by_default():
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip', max_size=None))
    kw = lambda **o: gmm_cli.prior_kwargs(dict(dict(data='x.zip', cfg='stylegan'), **o), c)
    assert kw().resample_hq_only is False and kw(resample_hq_only=True).resample_hq_only is True

@pytest.mark.parametrize('hq_only', [False, True])
def test_points_between_modes_fill_no_group(hq_only, tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    dataset_kwargs = toy_data.toy_dataset_kwargs('toy:ring8,rare=0.1,n=400')
    modes = dnnlib.util.construct_class_by_name(**dataset_kwargs).toy_modes
    # 10 points on mode 3, 30 points half-way between mode 0 and mode 1 (in mode 0's or mode 1's cell, no mode's support).
    between = 0.5 * (modes.centres[0] + modes.centres[1])
    G = _PointsG([modes.centres[3]] * 10 + [between] * 30)
    prior = GMMPrior(feature='identity', components=8, pca=None, cache_dir=str(tmp_path), resample_num=40, resample_min_per_component=0,
                     resample_ema=0, resample_labels=True, resample_hq_only=hq_only)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G=G, G_ema=G, G_mapping=G, G_synthesis=G, rank=0, num_gpus=1, random_seed=0,
                          dataset_kwargs=dataset_kwargs, run_dir=None)
    prior.setup(ctx)
    counts = prior._generated_counts(update_idx=0).numpy()
    if hq_only:
        assert counts.tolist() == [0, 0, 0, 10, 0, 0, 0, 0]
    else:
        assert counts.sum() == 40 and counts[3] == 10 and counts[0] + counts[1] == 30
    training_stats.reset()

def test_no_point_above_theta_leaves_the_real_frequencies(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    dataset_kwargs = toy_data.toy_dataset_kwargs('toy:ring8,rare=0.1,n=400')
    G = _PointsG([[0.0, 0.0]])                                         # the centre of the ring: below theta
    prior = GMMPrior(feature='identity', components=8, pca=None, cache_dir=str(tmp_path), resample_num=40, resample_min_per_component=0,
                     resample_ema=0, resample_labels=True, resample_hq_only=True, resample_kimg=1)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G=G, G_ema=G, G_mapping=G, G_synthesis=G, rank=0, num_gpus=1, random_seed=0,
                          dataset_kwargs=dataset_kwargs, run_dir=None)
    prior.setup(ctx)
    prior._update_weights(1000)
    assert np.isfinite(prior.freqs.numpy()).all()
    np.testing.assert_allclose(prior.freqs.numpy(), prior.real_freqs.numpy(), atol=1e-12)
    training_stats.reset()
