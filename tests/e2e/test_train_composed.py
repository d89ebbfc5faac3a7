"""--prior=masked,posterior end to end on CPU (issue 18 item 7): the masked selection scores with P2GAN's realness at
training and at sampling time, through train.py, the snapshot and the sample-time transform."""

import pytest
import torch

import harness
from training import sampling
from training import training_loop

pytestmark = pytest.mark.slow

ARGS = ['--prior=masked,posterior', '--cfg=stylegan', *harness.TRAIN_ARGS, '--tick=0.008', '--snap=1', '--post-dim=3',
        '--post-pretrain-kimg=0.004', '--masked-pool=2', '--seed=1', '--kimg=0.008']

# The snapshot grids (up to 32 x 32 images, each drawn through the masked selection) are not under test here: 4 x 2.
def _small_grid(setup):
    def grid(training_set, random_seed=0):
        _size, images, labels = setup(training_set=training_set, random_seed=random_seed)
        return (4, 2), images[:8], labels[:8]
    return grid

def test_masked_with_a_head_owner_trains_and_samples_with_its_realness(tmp_path, monkeypatch):
    monkeypatch.setattr(training_loop, 'setup_snapshot_image_grid', _small_grid(training_loop.setup_snapshot_image_grid))
    data = harness.tiny_dataset(tmp_path / 'synth16.zip', num_images=16)
    run_dir = harness.train(str(tmp_path / 'runs'), '--data', data, *ARGS)
    stats = harness.read_stats(run_dir)
    assert stats[-1]['Prior/masked/score_Gmain']['num'] > 0 and stats[-1]['Prior/posterior/M_c']['num'] > 0

    snapshot = harness.load(harness.snapshot_path(run_dir))
    (spec,) = snapshot[sampling.SNAPSHOT_KEY]
    assert spec['realness'] == dict(class_name='priors.posterior.prior.PosteriorRealness', code_dim=3, p_a=[-5.0, 1.0],
                                    p_b=[5.0, 3.0], sigma_act='raw')
    transform = sampling.load_sample_transform(snapshot)
    G = snapshot['G_ema']
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
    img = sampling.sample(G, z, torch.zeros([2, G.c_dim]), transform, noise_mode='const')
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()

#----------------------------------------------------------------------------
