"""Toy data and toy networks where they apply (issue 20, item 3): accepted by calc_metrics.py --data and the toy metric,
while the image-only options and metrics are refused before any work (tests/unit/test_bad_inputs.py)."""

import pickle

import pytest
import torch
from click.testing import CliRunner

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def toy_snapshot(tmp_path_factory):
    from training import toy_networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2).eval()
        D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2).eval()
    kwargs = dict(class_name='training.toy_data.ToyDataset', path='toy:ring8,n=256', use_labels=False, max_size=None, xflip=False)
    path = tmp_path_factory.mktemp('toy') / 'toy.pkl'
    path.write_bytes(pickle.dumps(dict(training_set_kwargs=kwargs, G=G, D=D, G_ema=G, augment_pipe=None)))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize('data', ['toy:ring8,n=512'])
def test_toy_metric_on_a_toy_network_with_toy_data(toy_snapshot, data):
    import calc_metrics
    args = ['--network', toy_snapshot, '--metrics=toy2k', '--device=cpu', '--verbose=0'] + ([f'--data={data}'] if data else [])
    result = CliRunner().invoke(calc_metrics.main, args)
    assert result.exit_code == 0, result.output[-2000:]
    assert 'toy2k' in result.output


def test_generate_draws_points_of_a_toy_network(toy_snapshot, tmp_path):
    import generate
    result = CliRunner().invoke(generate.generate_images, ['--network', toy_snapshot, '--seeds=0-3', '--outdir', str(tmp_path), '--device=cpu'])
    assert result.exit_code == 0, result.output[-2000:]
    assert (tmp_path / 'points.npy').is_file()

#----------------------------------------------------------------------------
