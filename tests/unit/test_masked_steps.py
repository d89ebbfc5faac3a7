"""--masked-steps: 'both' (default, §3.1) selects the latents of the D and the G step; 'G' only those of the G step, so D trains on the plain prior."""

import pytest
import torch

import dnnlib
import harness
from priors.masked import cli as masked_cli
from priors.masked import prior as masked

_Mapping, _Synthesis = harness.IdentityMapping, harness.PointSynthesis  # z -> the 1x1 image z

def _prior(**kwargs):
    prior = masked.MaskedPrior(**kwargs)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G_mapping=_Mapping(), G_synthesis=_Synthesis(), score=lambda img, c: img[:, :1, 0, 0],
                          random_seed=1, rank=0, num_gpus=1, batch_size=4, batch_gpu=4)
    prior.setup(ctx)
    return prior

def _changed(prior, step):
    z = torch.full([4, 3], -5.0)  # a latent that scores low: any selection replaces it with one from the pre-sample
    out, _ = prior.transform_latents(z, torch.zeros([4, 0]), step=step, role='main', batch=None)
    return not torch.equal(out, z)

def test_both_steps_by_default_and_only_G_with_steps_G():
    both = _prior()
    assert _changed(both, 'Gmain') and _changed(both, 'Dgen')
    g_only = _prior(steps='G')
    assert _changed(g_only, 'Gmain') and not _changed(g_only, 'Dgen')

def test_option_reaches_the_kwargs_and_bad_values_are_refused():
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.toy_data.ToyDataset', path='toy:ring8'))
    assert masked_cli.prior_kwargs(dict(prior=['masked']), c).steps == 'both'
    assert masked_cli.prior_kwargs(dict(prior=['masked'], masked_steps='G'), c).steps == 'G'
    with pytest.raises(ValueError, match='steps must be one of both, G'):
        masked.MaskedPrior(steps='D')
