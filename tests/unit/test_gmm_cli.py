"""The `--prior=gmm` options of issue 14 (priors/gmm/cli.py): the paper's per-dataset presets, the loss form, the
held-out and covariance settings of the built prior, and the f^g estimate's options, as GMMPrior kwargs."""

import click
import pytest

import dnnlib
from priors import registry
from priors.gmm import cli as gmm_cli
from priors.gmm import prior as gmm_prior
from priors.gmm import prior_file

#----------------------------------------------------------------------------

def _kwargs(**opts):
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='x.zip', max_size=None))
    return gmm_cli.prior_kwargs(dict(dict(data='x.zip', cfg='stylegan'), **opts), c)

def test_defaults_are_the_issue_14_behaviour():
    kw = _kwargs()
    assert (kw.components, kw.resample_alpha, kw.holdout, kw.covariance, kw.loss_form) == (7, 7, 0.1, 'full', 'per_dim')
    assert (kw.resample_ema, kw.resample_min_per_component) == (0.9, 50)
    assert (kw.resample_net, kw.resample_noise, kw.resample_pixels) == ('G_ema', 'random', 'uint8')
    registry.build_prior('gmm', **kw)   # every kwarg is one GMMPrior takes


@pytest.mark.parametrize('preset, components, alpha', [('cifar10', 35, 3), ('ffhq', 70, 7), ('lsun-cat', 7, 7), ('lsun-bird', 7, 7)])
def test_presets_are_the_papers_settings(preset, components, alpha):
    kw = _kwargs(prior_preset=preset)
    assert (kw.components, kw.resample_alpha) == (components, alpha)
    # Explicit options win over the preset.
    kw = _kwargs(prior_preset=preset, prior_components=5, resample_alpha=1.5)
    assert (kw.components, kw.resample_alpha) == (5, 1.5)


def test_preset_must_match_a_given_prior_file(monkeypatch):
    loaded = dnnlib.EasyDict(num_components=7, extractor=dict(spec=dict(name='tiny')))
    monkeypatch.setattr(prior_file, 'load_prior', lambda *args, **kwargs: loaded)
    kw = _kwargs(prior_file='p.pt', prior_preset='lsun-cat')
    assert kw.prior_file.endswith('p.pt') and kw.resample_alpha == 7
    with pytest.raises(click.ClickException, match=r'--prior-preset=ffhq means 70 components but the prior file p.pt has 7; '
                                                   r'rebuild it with build_prior.py --preset=ffhq'):
        _kwargs(prior_file='p.pt', prior_preset='ffhq')
    with pytest.raises(click.ClickException, match=r'--prior-holdout only applies when the prior is built'):
        _kwargs(prior_file='p.pt', prior_holdout=0.2)


def test_v1_options_and_their_checks():
    kw = _kwargs(prior_loss_form='paper', prior_holdout=0.0, prior_covariance='diag', resample_ema=0.0, resample_min_per_component=0,
                 resample_net='G', resample_noise='const', resample_pixels='float')
    assert (kw.loss_form, kw.holdout, kw.covariance, kw.resample_ema, kw.resample_min_per_component) == ('paper', 0.0, 'diag', 0.0, 0)
    assert (kw.resample_net, kw.resample_noise, kw.resample_pixels) == ('G', 'const', 'float')
    registry.build_prior('gmm', **kw)
    with pytest.raises(click.ClickException, match=r'--resample-net has no effect with --resample=0'):
        _kwargs(resample=False, resample_net='G')


def test_presets_table_in_the_docs_matches_the_code():
    import os
    with open(os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'priors.md'), encoding='utf-8') as f:
        text = f.read()
    for name, preset in gmm_prior.PRESETS.items():
        assert f'| `{name}` | ' in text and f' | {preset.components} | {preset.resample_alpha} |' in text, name

#----------------------------------------------------------------------------
