"""The `--prior=gmm` options of issue 18 (priors/gmm/cli.py), off by default: --resample-labels, --resample-max-ratio and
--prior-quality-scale reach GMMPrior, and their bad values are one-line errors."""

import click
import pytest

import dnnlib
from priors import registry
from priors.gmm import cli as gmm_cli

def _kwargs(**opts):
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip', max_size=None))
    return gmm_cli.prior_kwargs(dict(dict(data='x.zip', cfg='stylegan'), **opts), c)

def test_issue18_options_are_off_by_default():
    kw = _kwargs()
    assert (kw.resample_labels, kw.resample_max_ratio, kw.quality_scale) == (False, 0, 'none')

def test_issue18_options_reach_the_prior():
    kw = _kwargs(resample_labels=True, resample_max_ratio=3.0, prior_quality_scale='spread')
    assert (kw.resample_labels, kw.resample_max_ratio, kw.quality_scale) == (True, 3.0, 'spread')
    prior = registry.build_prior('gmm', **kw)
    assert (prior.resample_labels, prior.resample_max_ratio, prior.quality_scale) == (True, 3.0, 'spread')

def test_issue18_option_errors():
    with pytest.raises(click.ClickException, match=r'--resample-max-ratio=0.5 must be 0 \(off\) or > 1'):
        _kwargs(resample_max_ratio=0.5)
    with pytest.raises(click.ClickException, match=r'--resample-labels has no effect with --resample=0'):
        _kwargs(resample=False, resample_labels=True)
