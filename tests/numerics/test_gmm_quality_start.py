"""The late start of PriorGAN's quality loss (issue 18, off by default): --prior-quality-start-kimg reaches GMMPrior, and
the Eq. 5 term is absent from G's step before that many images and present from then on."""

import numpy as np
import pytest
import torch

import dnnlib
from priors import registry
from priors.gmm import GaussianMixture
from priors.gmm import cli as gmm_cli
from priors.gmm.prior import GMMPrior
from torch_utils import training_stats

def _kwargs(**opts):
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip', max_size=None))
    return gmm_cli.prior_kwargs(dict(dict(data='x.zip', cfg='stylegan'), **opts), c)

def test_quality_start_reaches_the_prior_and_is_off_by_default():
    assert _kwargs().quality_start_kimg == 0
    kw = _kwargs(prior_quality_start_kimg=2.5)
    assert kw.quality_start_kimg == 2.5
    assert registry.build_prior('gmm', **kw).quality_start_nimg == 2500
    with pytest.raises(ValueError, match='quality_start_kimg must be >= 0'):
        GMMPrior(quality_start_kimg=-1)

class _GMMOnly:
    """A prior file without PCA: a one-component GMM on the raw 2-D points."""
    def __init__(self):
        self.gmm = GaussianMixture(n_components=1, random_state=0)
        self.gmm.fit(torch.tensor(np.random.default_rng(0).normal(0, 0.05, size=[400, 2]), dtype=torch.float64))
    def project(self, features):
        return features
    def log_prob(self, features):
        return self.gmm.log_prob(features)

def _g_loss(prior, cur_nimg):
    prior.on_progress(cur_nimg)
    img = torch.full([4, 2, 1, 1], 1.0)           # far below theta: a large Eq. 5 term when it applies
    return prior.extra_loss('Gmain', img, None, None, None)

@pytest.mark.parametrize('start_kimg', [0, 3])
def test_quality_loss_is_off_before_the_start(start_kimg):
    prior = GMMPrior(weight=0.1, loss_form='paper', resample=False, quality_start_kimg=start_kimg)
    prior.prior, prior.extractor, prior.log_theta, prior.num_dims = _GMMOnly(), lambda img: img.reshape(len(img), -1), 1e9, 2
    before = [_g_loss(prior, nimg) for nimg in (0, 1000, 2999)]
    after = [_g_loss(prior, nimg) for nimg in (3000, 5000)]
    training_stats.reset()
    for loss in (before if start_kimg == 0 else []) + after:
        assert loss is not None and bool((loss > 0).all())
    if start_kimg > 0:
        assert all(loss is None for loss in before)
