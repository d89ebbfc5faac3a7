"""--masked-score: 'sigmoid' (default) scores s = sigmoid(D's output); 'output' takes D's output as it is, for a critic that already ends in a sigmoid (Table 1), so the weighted pmf is proportional to D(G(z)) as Eq. 2 and Eq. 7 write it."""

import pytest
import torch

import dnnlib
import harness
from priors.masked import cli as masked_cli
from priors.masked import prior as masked

_Mapping, _Synthesis = harness.IdentityMapping, harness.PointSynthesis  # z -> the 1x1 image z

def _critic(img, c):  # a sigmoid critic: its output is already a probability
    return torch.sigmoid(3 * img[:, :1, 0, 0])

def _pool_pmf(**kwargs):
    prior = masked.MaskedPrior(mode='weighted', **kwargs)
    ctx = dnnlib.EasyDict(device=torch.device('cpu'), G_mapping=_Mapping(), G_synthesis=_Synthesis(), score=_critic,
                          random_seed=1, rank=0, num_gpus=1, batch_size=4, batch_gpu=4)
    prior.setup(ctx)
    prior.transform_latents(torch.zeros([4, 3]), torch.zeros([4, 0]), step='Gmain', role='main', batch=None)
    z_pool, _, pmf = prior._pool['Gmain']  # pylint: disable=protected-access
    return z_pool, pmf

def test_output_score_weights_by_the_critic_output_itself():
    z_pool, pmf = _pool_pmf(score='output')
    d = torch.sigmoid(3 * z_pool[:, 0]).double()
    assert torch.allclose(pmf, d / d.sum())
    z_pool, pmf_default = _pool_pmf()
    s = torch.sigmoid(torch.sigmoid(3 * z_pool[:, 0]).double())
    assert torch.allclose(pmf_default, s / s.sum())
    assert not torch.allclose(pmf, pmf_default)

def test_sampling_time_uses_the_same_score():
    prior = masked.MaskedPrior(mode='weighted', score='output')
    kwargs = prior.sample_transform_kwargs()
    assert kwargs['score'] == 'output' and 'score' not in masked.MaskedPrior(mode='weighted').sample_transform_kwargs()
    transform = dnnlib.util.construct_class_by_name(**kwargs)
    assert transform.score == 'output'
    G = dnnlib.EasyDict(mapping=_Mapping(), synthesis=_Synthesis())
    D = lambda img, c: _critic(img, c)
    z = torch.randn([3, 3], generator=torch.Generator().manual_seed(0))
    out_output, _ = transform(z, torch.zeros([3, 0]), G=G, D=D)
    out_sigmoid, _ = masked.MaskedSampleTransform(mode='weighted')(z, torch.zeros([3, 0]), G=G, D=D)
    assert out_output.shape == z.shape and out_sigmoid.shape == z.shape

def test_option_reaches_the_kwargs_and_bad_values_are_refused():
    c = dnnlib.EasyDict(training_set_kwargs=dnnlib.EasyDict(class_name='training.toy_data.ToyDataset', path='toy:ring8'))
    assert masked_cli.prior_kwargs(dict(prior=['masked']), c).score == 'sigmoid'
    assert masked_cli.prior_kwargs(dict(prior=['masked'], masked_score='output'), c).score == 'output'
    with pytest.raises(ValueError, match='score must be one of sigmoid, output'):
        masked.MaskedPrior(score='logit')
    with pytest.raises(ValueError, match=r'needs D outputs in \[0, 1\]'):
        masked.score_latents(_Mapping(), _Synthesis(), lambda img, c: img[:, :1, 0, 0] - 5, torch.zeros([2, 3]), torch.zeros([2, 0]), 2, 'output')
