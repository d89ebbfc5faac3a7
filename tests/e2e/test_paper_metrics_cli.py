"""End-to-end tests of the papers' metrics: train_classifier.py on scikit-learn's digits, several new metrics added to a run folder by calc_metrics.py in one generator pass, and the noisy-D missing-mode count (library and missing_modes.py, with resume)."""

import json
import pickle

import numpy as np
import pytest
import torch

import calc_metrics
import harness
import missing_modes
import train_classifier
from metrics import backbones
from metrics import classifier as classifier_module
from metrics import metric_utils
from metrics import noisy_discriminator
from metrics import paper_metrics

pytestmark = pytest.mark.slow

#----------------------------------------------------------------------------
# Helpers.

_run = harness.invoke
_write_dataset = harness.write_dataset


@pytest.fixture(scope='module')
def digits_zip(tmp_path_factory):
    # scikit-learn's bundled 8x8 digits (1797 images, 10 classes), 0..16 scaled to 0..255.
    import sklearn.datasets
    digits = sklearn.datasets.load_digits()
    path = str(tmp_path_factory.mktemp('digits') / 'digits.zip')
    _write_dataset(path, np.clip(digits.images * 16, 0, 255).astype(np.uint8)[:, :, :, None], digits.target)
    return path

#----------------------------------------------------------------------------
# train_classifier.py.

def test_train_classifier_on_digits(digits_zip, tmp_path):
    out = str(tmp_path / 'digits-classifier.pt')
    result = _run(train_classifier.main, ['--data', digits_zip, '--out', out, '--epochs', '8', '--lr', '3e-3', '--width', '16', '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert '1797 images of [1, 8, 8], 10 classes; 1617 train, 180 test' in result.output
    accuracy = float(result.output.split('Test accuracy: ')[1].split()[0])
    assert accuracy >= 0.85
    probs = classifier_module.load_classifier(out)
    assert probs.test_accuracy == pytest.approx(accuracy, abs=1e-4) and probs.train_class_counts.sum() == 1617
    # The same seed gives the same file contents.
    again = str(tmp_path / 'again.pt')
    _run(train_classifier.main, ['--data', digits_zip, '--out', again, '--epochs', '8', '--lr', '3e-3', '--width', '16', '--device', 'cpu'])
    first, second = (torch.load(p, weights_only=True)['state_dict'] for p in (out, again))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_train_classifier_needs_labels(tmp_path):
    path = str(tmp_path / 'unlabelled.zip')
    _write_dataset(path, np.zeros([4, 8, 8, 3], np.uint8))
    result = _run(train_classifier.main, ['--data', path, '--out', str(tmp_path / 'c.pt')])
    assert result.exit_code != 0 and 'has no class labels' in result.output

#----------------------------------------------------------------------------
# calc_metrics.py: several of the new metrics, one generator pass, results in the run folder.

@pytest.fixture
def run_dir(tmp_path, tiny_G_kwargs, tiny_D_kwargs, monkeypatch, metric_env):
    data = harness.noise_dataset(tmp_path / 'tiny.zip', num_images=32, labels=np.arange(32) % 3)
    run = tmp_path / 'runs' / '00000-tiny'
    harness.write_snapshot(str(run), data, tiny_G_kwargs, tiny_D_kwargs, num_images=32)

    # Offline detectors: a random stand-in for Inception/VGG16, a tiny ResNet state_dict, a small classifier.
    metric_env()
    resnet = str(tmp_path / 'tiny-resnet.pth')
    torch.manual_seed(1)
    torch.save(backbones.ResNetFeatures(blocks=(1, 1, 1, 1), base_width=4).state_dict(), resnet)
    monkeypatch.setenv('SG2ADA_DETECTOR_RESNET101_63FE2227', resnet)
    net = classifier_module.SmallClassifier(16, 3, 3, width=4)
    classifier_module._init_weights(net, torch.Generator().manual_seed(0))
    classifier_module.save_classifier(str(tmp_path / 'clf.pt'), net, np.ones(3, np.int64), 0.5)
    for name, value in dict(FID5K_NUM_GEN=20, FID5K_NUM_REAL=24, IS5K_NUM_GEN=8, IS5K_NUM_RUNS=3, MODE_NUM_GEN=24,
                            MISS_NUM_GEN=40, MSSSIM_NUM_PAIRS=12, DC_NUM_GEN=24, FID_R101_NUM_GEN=24, R101_RESIZE=32).items():
        monkeypatch.setattr(paper_metrics, name, value)
    metric_utils.reset_detector_cache()
    return run


METRICS = ['fid5k', 'is5k', 'mode10k', 'miss100k', 'msssim10k', 'dc50k5_full', 'fid5k_r101']


def test_new_metrics_share_one_generator_pass(run_dir, monkeypatch):
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    clf = str(run_dir.parent.parent / 'clf.pt')
    generated = harness.count_generated(monkeypatch)

    def evaluate(metrics):
        generated.clear()
        result = _run(calc_metrics.main, ['--network', pkl, '--metrics', ','.join(metrics), '--classifier', clf,
                                          '--device', 'cpu', '--verbose', 'false'])
        assert result.exit_code == 0, result.output
        lines = {m: (run_dir / f'metric-{m}.jsonl').read_text().splitlines() for m in metrics}
        return list(generated), {m: json.loads(v[-1])['results'] for m, v in lines.items()}

    calls, together = evaluate(METRICS)
    assert calls == [64]  # one batch of the pass covers the 40 images of the longest metric (miss100k)
    for metric in METRICS:
        assert all(name.startswith(metric) and np.isfinite(value) for name, value in together[metric].items())
        assert json.loads((run_dir / f'metric-{metric}.jsonl').read_text().splitlines()[-1])['snapshot_pkl'] == 'network-snapshot-000000.pkl'

    # Alone, each metric generates the same images and gives the same numbers.
    for metric in ['mode10k', 'msssim10k', 'fid5k_r101']:
        calls_alone, alone = evaluate([metric])
        assert calls_alone == [64] and alone[metric] == together[metric]


def test_classifier_metric_without_classifier_is_a_usage_error(run_dir, monkeypatch):
    monkeypatch.delenv('SG2ADA_CLASSIFIER', raising=False)
    pkl = str(run_dir / 'network-snapshot-000000.pkl')
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'mode10k', '--device', 'cpu', '--verbose', 'false'])
    assert result.exit_code != 0 and 'mode10k need a classifier: pass --classifier=PATH' in result.output
    result = _run(calc_metrics.main, ['--network', pkl, '--metrics', 'mode10k', '--classifier', 'nope.pt', '--device', 'cpu'])
    assert result.exit_code != 0 and result.output.startswith('Error: --classifier: ') and 'file not found: "nope.pt"' in result.output

#----------------------------------------------------------------------------
# Noisy D: a generator that misses the bright mode.

def _two_mode_images(num, seed):
    # Even items dark (30), odd items bright (225), with a little pixel noise.
    rng = np.random.default_rng(seed)
    values = np.where(np.arange(num) % 2 == 0, 30, 225)[:, None, None, None]
    return np.clip(values + rng.normal(0, 10, [num, 16, 16, 3]), 0, 255).astype(np.uint8)


class _TwoModeG(torch.nn.Module):
    # Dark images only (missing the bright mode), or dark and bright by the sign of z[0].
    def __init__(self, both_modes):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 8, 0, 16, 3
        self.both_modes = both_modes

    def forward(self, z, c, **kwargs):
        level = torch.where(z[:, :1] > 0, 0.75, -0.75) if self.both_modes else torch.full_like(z[:, :1], -0.75)
        return (level + 0.08 * z[:, 1:4]).reshape(-1, 3, 1, 1).expand(-1, 3, 16, 16)


@pytest.mark.parametrize('both_modes', [False, True])
def test_noisy_d_finds_the_missed_mode(tmp_path, tiny_D_kwargs, both_modes):
    from training.networks import Discriminator
    train, test = str(tmp_path / 'train.zip'), str(tmp_path / 'test.zip')
    _write_dataset(train, _two_mode_images(32, 0))
    _write_dataset(test, _two_mode_images(20, 1))
    D_star = noisy_discriminator.fresh_discriminator(Discriminator(**tiny_D_kwargs), seed=0)
    trainer = noisy_discriminator.NoisyDTrainer(D_star, _TwoModeG(both_modes), dict(class_name='training.dataset.ImageFolderDataset', path=train),
                                                sigma=1.0, batch_size=16)
    for _ in range(40):
        trainer.train_step()
    p = noisy_discriminator.real_probabilities(trainer.D, dict(class_name='training.dataset.ImageFolderDataset', path=test), batch_size=16)
    curve = dict(noisy_discriminator.missing_mode_curve(p))
    if both_modes:
        assert curve[0.9] == 0  # nothing is missing
    else:
        # Optimal D*: P(real) = 1 on the bright mode, p_d / (p_d + p_g) = 0.5 / 1.5 = 1/3 on the dark one.
        assert curve[0.9] == 10 and np.all(p[1::2] > 0.9)
        assert np.all(np.abs(p[0::2] - 1 / 3) < 0.1)


def test_missing_modes_cli_resumes_exactly(tmp_path, tiny_G_kwargs, tiny_D_kwargs):
    from training.networks import Discriminator, Generator
    train, test = str(tmp_path / 'train.zip'), str(tmp_path / 'test.zip')
    _write_dataset(train, _two_mode_images(16, 0))
    _write_dataset(test, _two_mode_images(10, 1))
    torch.manual_seed(0)
    pkl = str(tmp_path / 'snapshot.pkl')
    with open(pkl, 'wb') as f:
        G = Generator(**tiny_G_kwargs).eval()
        pickle.dump(dict(G=G, G_ema=G, D=Discriminator(**tiny_D_kwargs).eval(), augment_pipe=None,
                         training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=train)), f)
    args = ['--network', pkl, '--test-data', test, '--batch', '8', '--sigma', '2', '--device', 'cpu']

    # 6 steps straight, against 4 steps (the state is saved every 2 steps) then resumed to 6.
    straight = _run(missing_modes.main, args + ['--outdir', str(tmp_path / 'a'), '--kimg', '0.048', '--snap-kimg', '0.016'])
    assert straight.exit_code == 0, straight.output
    assert 'tau      missing' in straight.output
    _run(missing_modes.main, args + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.032', '--snap-kimg', '0.016'])
    resumed = _run(missing_modes.main, args + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.048', '--snap-kimg', '0.016'])
    assert 'Resuming at 0.032 kimg' in resumed.output
    a, b = (torch.load(str(tmp_path / d / missing_modes.STATE_FILE), weights_only=True) for d in 'ab')
    assert a['step'] == b['step'] == 6
    assert all(torch.equal(a['D'][k], b['D'][k]) for k in a['D'])
    result = json.loads((tmp_path / 'a' / missing_modes.RESULT_FILE).read_text())
    assert result['num_test'] == 10 and [row['threshold'] for row in result['curve']][4] == 0.9
    assert result == dict(json.loads((tmp_path / 'b' / missing_modes.RESULT_FILE).read_text()))

    # Other settings in the same folder are refused.
    other = _run(missing_modes.main, args[:-4] + ['--sigma', '3', '--device', 'cpu', '--outdir', str(tmp_path / 'a'), '--kimg', '0.048'])
    assert other.exit_code != 0 and 'was made with other settings' in other.output

#----------------------------------------------------------------------------
