"""Bad input to every CLI and to the Python API (issue 15): each case must fail with one clear line that names
the thing at fault (the option, file or argument), never with a traceback, and never silently or dangerously.

Every case is classified the same way:
  clear      failed with one "Error: ..." line (CLI) or a ValueError/TypeError (API) naming the thing
  traceback  an uncaught exception, or a message that does not name the thing (cryptic)
  silent     exit code 0 / no exception, or a payload file written by a hostile input (dangerous)
The test asserts "clear" (for --gpus on CPU, a note instead of silence). Set BAD_INPUTS_REPORT=<file> to
append "<case>\t<class>" lines, which is how the counts in the issue's closing note were measured.
"""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

#----------------------------------------------------------------------------
# Inputs shared by the cases, made once.

class _Payload:
    """Unpickles as open(path, 'w'): loading it writes a file, so running it is observable."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _png(path, size=16, mode='RGB', color=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.Image.new(mode, (size, size), color if mode == 'L' else (color, 50, 200)).save(path)


def _image_folder(root, bad=None):
    for i in range(4):
        _png(os.path.join(root, f'img{i}.png'), color=40 * i)
    if bad is not None:
        bad(os.path.join(root, 'z_bad.png'))  # sorts last: not the image that fixes the dataset shape
    return root


def _truncated_png(path):
    _png(path)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def _tiny_networks(z_dim=8):
    from training import networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = networks.Generator(z_dim=z_dim, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                               synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None)).eval()
        D = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=0,
                                   conv_clamp=None).eval()
    return G, D


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad_inputs')
    paths = dict(root=str(root))
    paths['good'] = _image_folder(str(root / 'good'))
    paths['corrupt'] = _image_folder(str(root / 'corrupt'), lambda p: open(p, 'wb').write(b'not an image at all'))
    paths['other_size'] = _image_folder(str(root / 'other_size'), lambda p: _png(p, size=32))
    paths['other_channels'] = _image_folder(str(root / 'other_channels'), lambda p: _png(p, mode='L'))
    paths['truncated'] = _image_folder(str(root / 'truncated'), _truncated_png)
    paths['empty_dir'] = str(root / 'empty_dir')
    os.makedirs(paths['empty_dir'])
    paths['file'] = str(root / 'a_file.txt')
    with open(paths['file'], 'w') as f:
        f.write('just text\n')

    # Snapshots: a tiny one, one with NaN weights, one of another architecture (z_dim), a list, a hostile one.
    G, D = _tiny_networks()
    snapshot = dict(training_set_kwargs=None, G=G, D=D, G_ema=G, augment_pipe=None)
    paths['net'] = str(root / 'net.pkl')
    with open(paths['net'], 'wb') as f:
        pickle.dump(snapshot, f)
    bad_G, _ = _tiny_networks()
    with torch.no_grad():
        next(bad_G.synthesis.parameters()).fill_(float('nan'))
    paths['nan_net'] = str(root / 'nan_net.pkl')
    with open(paths['nan_net'], 'wb') as f:
        pickle.dump(dict(snapshot, G=bad_G, G_ema=bad_G), f)
    paths['list_pkl'] = str(root / 'list.pkl')
    with open(paths['list_pkl'], 'wb') as f:
        pickle.dump([1, 2, 3], f)
    paths['npy'] = str(root / 'w.npy')
    np.save(paths['npy'], np.zeros([1, G.num_ws, G.w_dim], dtype=np.float32))
    paths['nan_npz'] = str(root / 'w_nan.npz')
    np.savez(paths['nan_npz'], w=np.full([1, G.num_ws, G.w_dim], np.nan, dtype=np.float32))

    # Datasets as zips: a good one, and dataset_tool sources with partial and string labels.
    from training.synthetic import make_synthetic_dataset
    paths['zip'] = make_synthetic_dataset(str(root / 'tiny.zip'), num_images=8, resolution=16, num_modes=2)
    paths['partial_labels'] = _image_folder(str(root / 'partial_labels'))
    with open(os.path.join(paths['partial_labels'], 'dataset.json'), 'w') as f:
        json.dump({'labels': [['img0.png', 0], ['img1.png', 1]]}, f)
    paths['string_labels'] = _image_folder(str(root / 'string_labels'))
    with open(os.path.join(paths['string_labels'], 'dataset.json'), 'w') as f:
        json.dump({'labels': [[f'img{i}.png', 'cat'] for i in range(4)]}, f)
    return paths


def _hostile_pickle(inputs, name):
    """A pickle that writes <name>.pwned when unpickled; returns (pickle path, payload path)."""
    target = os.path.join(inputs['root'], name + '.pwned')
    path = os.path.join(inputs['root'], name + '.pkl')
    with open(path, 'wb') as f:
        pickle.dump(dict(G=_Payload(target)), f)
    return path, target


def _hostile_module_file(inputs, name):
    """A torch.save() file whose unpickling writes <name>.pwned (what a pickled nn.Module can do)."""
    target = os.path.join(inputs['root'], name + '.pwned')
    path = os.path.join(inputs['root'], name + '.pt')
    torch.save(_Payload(target), path)
    return path, target

#----------------------------------------------------------------------------
# Running a case and classifying what happened.

class Outcome:
    def __init__(self, failed, message, traceback):
        self.failed, self.message, self.traceback = failed, message, traceback


def _cli(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return Outcome(True, repr(result.exception), True)
    return Outcome(result.exit_code != 0, errors[-1] if errors else result.output[-300:], 'Traceback' in result.output)


def _api(fn):
    try:
        fn()
    except (ValueError, TypeError) as err:
        return Outcome(True, f'{type(err).__name__}: {err}', False)
    except Exception as err: # pylint: disable=broad-except
        return Outcome(True, f'{type(err).__name__}: {err}', True)
    return Outcome(False, '', False)


def classify(outcome, thing, payload=None):
    if payload is not None and os.path.exists(payload):
        return 'silent'  # dangerous: the file's code ran
    if not outcome.failed:
        return 'silent'
    if outcome.traceback or thing.lower() not in outcome.message.lower() or '\n' in outcome.message.strip() or len(outcome.message) < 40:
        return 'traceback'
    return 'clear'

#----------------------------------------------------------------------------
# The cases: (id, thing the message must name, runner(inputs, tmp_path) -> (Outcome, payload path or None)).

def _train(*args):
    import train
    return _cli(train.main, ['--dry-run', '--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2', *args])

def _gen(*args):
    import generate
    return _cli(generate.generate_images, ['--device=cpu', *args])

def _mix(*args):
    import style_mixing
    return _cli(style_mixing.generate_style_mix, ['--device=cpu', '--styles=0-5', *args])

def _metrics(*args):
    import calc_metrics
    return _cli(calc_metrics.main, ['--device=cpu', '--verbose=0', *args])

def _tool(*args):
    import dataset_tool
    return _cli(dataset_tool.convert_dataset, list(args))

def _prior(*args):
    import build_prior
    return _cli(build_prior.main, ['--device=cpu', '--feature=tiny', '--components=2', *args])

def _convert(*args):
    import legacy
    return _cli(legacy.convert_network_pickle, list(args))


def _with_payload(make, run):
    def case(i, t):
        path, target = make(i, os.path.basename(os.path.dirname(str(t))))  # the test's own tmp_path name
        return run(i, t, path), target
    return case


def _gmm_nan(method):
    from priors.gmm.mixture import GaussianMixture
    x = torch.randn(40, 2, dtype=torch.float64)
    gmm = GaussianMixture(n_components=2, random_state=0).fit(x)
    bad = x[:3].clone()
    bad[1, 0] = float('nan')
    return lambda: getattr(gmm, method)(bad)


def _pca_nan():
    from priors.gmm.pca import PCA
    x = torch.randn(20, 3, dtype=torch.float64)
    pca = PCA(n_components=2).fit(x)
    bad = x[:2].clone()
    bad[0, 2] = float('inf')
    return lambda: pca.transform(bad)


def _network(cls, **overrides):
    from training import networks
    if cls == 'G':
        kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                      synthesis_kwargs=dict(channel_base=256, channel_max=16))
        kwargs.update(overrides)
        return lambda: networks.Generator(**kwargs)
    kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    kwargs.update(overrides)
    return lambda: networks.Discriminator(**kwargs)


def _text_mode_load(inputs):
    import legacy
    def load():
        with open(inputs['net'], 'r', encoding='latin-1') as f:
            legacy.load_network_pkl(f)
    return load


def _in_file(inputs, *parts):
    return os.path.join(inputs['file'], *parts)


CASES = [
    # train.py: non-finite floats.
    ('train-kimg-nan',          '--kimg',       lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--kimg=nan'), None)),
    ('train-glr-inf',           '--glr',        lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--glr=inf'), None)),
    ('train-dlr-nan',           '--dlr',        lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--dlr=nan'), None)),
    ('train-gamma-inf',         '--gamma',      lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--gamma=inf'), None)),
    ('train-tick-nan',          '--tick',       lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--tick=nan'), None)),
    ('train-target-nan',        '--target',     lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--target=nan'), None)),
    ('train-prior-weight-nan',  '--prior-weight', lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--prior=gmm', '--prior-weight=nan'), None)),
    ('train-prior-theta-inf',   '--prior-theta', lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--prior=gmm', '--prior-theta=inf'), None)),
    # train.py: ranges and output folder.
    ('train-seed-too-large',    '--seed',       lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', f'--seed={2**32}'), None)),
    ('train-outdir-is-file',    '--outdir',     lambda i, t: (_train(f'--outdir={i["file"]}', f'--data={i["zip"]}'), None)),
    ('train-outdir-under-file', '--outdir',     lambda i, t: (_train(f'--outdir={_in_file(i, "runs")}', f'--data={i["zip"]}'), None)),
    # train.py: bad images that are not the first file are found at start-up.
    ('train-data-corrupt',      'z_bad.png',    lambda i, t: (_train(f'--outdir={t}', f'--data={i["corrupt"]}'), None)),
    ('train-data-other-size',   'z_bad.png',    lambda i, t: (_train(f'--outdir={t}', f'--data={i["other_size"]}'), None)),
    ('train-data-other-channels', 'z_bad.png',  lambda i, t: (_train(f'--outdir={t}', f'--data={i["other_channels"]}'), None)),
    ('train-data-truncated',    'z_bad.png',    lambda i, t: (_train(f'--outdir={t}', f'--data={i["truncated"]}'), None)),
    # train.py: --resume of the wrong kind.
    ('train-resume-hostile-safe', '--resume',   _with_payload(_hostile_pickle, lambda i, t, p: _train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={p}', '--safe-load'))),
    ('train-resume-not-network', '--resume',    lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={i["list_pkl"]}'), None)),
    ('train-resume-other-arch', '--resume',     lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={i["net"]}'), None)),
    ('train-resume-text-file',  '--resume',     lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={i["file"]}'), None)),
    ('train-resume-empty-folder', '--resume',   lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={i["empty_dir"]}'), None)),
    # generate.py.
    ('generate-trunc-nan',      '--trunc',      lambda i, t: (_gen(f'--network={i["net"]}', '--seeds=0', f'--outdir={t}', '--trunc=nan'), None)),
    ('generate-seed-too-large', '--seeds',      lambda i, t: (_gen(f'--network={i["net"]}', f'--seeds={2**32}', f'--outdir={t}'), None)),
    ('generate-outdir-is-file', '--outdir',     lambda i, t: (_gen(f'--network={i["net"]}', '--seeds=0', f'--outdir={i["file"]}'), None)),
    ('generate-projected-w-npy', '--projected-w', lambda i, t: (_gen(f'--network={i["net"]}', f'--projected-w={i["npy"]}', f'--outdir={t}'), None)),
    ('generate-projected-w-text', '--projected-w', lambda i, t: (_gen(f'--network={i["net"]}', f'--projected-w={i["file"]}', f'--outdir={t}'), None)),
    ('generate-projected-w-nan', '--projected-w', lambda i, t: (_gen(f'--network={i["net"]}', f'--projected-w={i["nan_npz"]}', f'--outdir={t}'), None)),
    ('generate-network-text',   '--network',    lambda i, t: (_gen(f'--network={i["file"]}', '--seeds=0', f'--outdir={t}'), None)),
    ('generate-network-glob-none', '--network', lambda i, t: (_gen(f'--network={os.path.join(i["root"], "nothing-*")}', '--seeds=0', f'--outdir={t}'), None)),
    ('generate-network-empty-folder', '--network', lambda i, t: (_gen(f'--network={i["empty_dir"]}', '--seeds=0', f'--outdir={t}'), None)),
    ('generate-network-nan-weights', '--network', lambda i, t: (_gen(f'--network={i["nan_net"]}', '--seeds=0', f'--outdir={t}'), None)),
    ('generate-network-hostile-safe', '--network', _with_payload(_hostile_pickle, lambda i, t, p: _gen(f'--network={p}', '--seeds=0', f'--outdir={t}', '--safe-load'))),
    ('generate-network-not-network', 'unpickled in full', lambda i, t: (_gen(f'--network={i["list_pkl"]}', '--seeds=0', f'--outdir={t}'), None)),
    # style_mixing.py.
    ('style-mixing-trunc-inf',  '--trunc',      lambda i, t: (_mix(f'--network={i["net"]}', '--rows=0', '--cols=1', f'--outdir={t}', '--trunc=inf'), None)),
    ('style-mixing-rows-too-large', '--rows',   lambda i, t: (_mix(f'--network={i["net"]}', f'--rows={2**40}', '--cols=1', f'--outdir={t}'), None)),
    ('style-mixing-outdir-under-file', '--outdir', lambda i, t: (_mix(f'--network={i["net"]}', '--rows=0', '--cols=1', f'--outdir={_in_file(i, "out")}'), None)),
    # calc_metrics.py.
    ('calc-metrics-network-empty-folder', '--network', lambda i, t: (_metrics(f'--network={i["empty_dir"]}', '--metrics=fid50k_full', f'--data={i["zip"]}'), None)),
    ('calc-metrics-data-corrupt', 'z_bad.png',  lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=fid50k_full', f'--data={i["corrupt"]}'), None)),
    ('calc-metrics-prior-file-text', 'is corrupt', lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=qs10k', f'--data={i["zip"]}', f'--prior-file={i["file"]}'), None)),
    ('calc-metrics-prior-file-network', '--prior-file', lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=qs10k', f'--data={i["zip"]}', f'--prior-file={i["net"]}'), None)),
    # dataset_tool.py.
    ('dataset-tool-dest-exists', '--dest',      lambda i, t: (_tool('--source', i['good'], '--dest', i['zip']), None)),
    ('dataset-tool-dest-under-file', '--dest',  lambda i, t: (_tool('--source', i['good'], '--dest', _in_file(i, 'x.zip')), None)),
    ('dataset-tool-partial-labels', 'no label', lambda i, t: (_tool('--source', i['partial_labels'], '--dest', os.path.join(str(t), 'o.zip')), None)),
    ('dataset-tool-string-labels', "'cat'",     lambda i, t: (_tool('--source', i['string_labels'], '--dest', os.path.join(str(t), 'o.zip')), None)),
    ('dataset-tool-corrupt-image', 'z_bad.png', lambda i, t: (_tool('--source', i['corrupt'], '--dest', os.path.join(str(t), 'o.zip')), None)),
    # build_prior.py.
    ('build-prior-reg-covar-nan', '--reg-covar', lambda i, t: (_prior(f'--data={i["zip"]}', f'--out={t}/p.pt', '--reg-covar=nan'), None)),
    ('build-prior-pca-nan',     '--pca',        lambda i, t: (_prior(f'--data={i["zip"]}', f'--out={t}/p.pt', '--pca=nan'), None)),
    ('build-prior-out-under-file', '--out',     lambda i, t: (_prior(f'--data={i["zip"]}', f'--out={_in_file(i, "p.pt")}'), None)),
    ('build-prior-data-truncated', 'z_bad.png', lambda i, t: (_prior(f'--data={i["truncated"]}', f'--out={t}/p.pt'), None)),
    ('build-prior-feature-hostile-safe', '--feature', _with_payload(_hostile_module_file, lambda i, t, p: _prior(f'--data={i["zip"]}', f'--out={t}/p.pt', f'--feature={p}', '--safe-load'))),
    # legacy.py convert_network_pickle.
    ('convert-dest-under-file', '--dest',       lambda i, t: (_convert('--source', i['net'], '--dest', _in_file(i, 'o.pkl')), None)),
    ('convert-source-empty-folder', '--source', lambda i, t: (_convert('--source', i['empty_dir'], '--dest', os.path.join(str(t), 'o.pkl')), None)),
    # Python API.
    ('gmm-predict-nan',         'predict',      lambda i, t: (_api(_gmm_nan('predict')), None)),
    ('gmm-score-samples-nan',   'score_samples', lambda i, t: (_api(_gmm_nan('score_samples')), None)),
    ('gmm-predict-proba-nan',   'predict_proba', lambda i, t: (_api(_gmm_nan('predict_proba')), None)),
    ('pca-transform-inf',       'transform',    lambda i, t: (_api(_pca_nan()), None)),
    ('generator-img-channels-0', 'img_channels', lambda i, t: (_api(_network('G', img_channels=0)), None)),
    ('generator-w-dim-0',       'w_dim',        lambda i, t: (_api(_network('G', w_dim=0)), None)),
    ('generator-z-dim-negative', 'z_dim',       lambda i, t: (_api(_network('G', z_dim=-1)), None)),
    ('generator-channel-base-tiny', 'channel_base', lambda i, t: (_api(_network('G', synthesis_kwargs=dict(channel_base=4, channel_max=16))), None)),
    ('discriminator-img-channels-0', 'img_channels', lambda i, t: (_api(_network('D', img_channels=0)), None)),
    ('discriminator-channel-max-0', 'channel_max', lambda i, t: (_api(_network('D', channel_max=0)), None)),
    ('load-network-pkl-text-mode', 'text mode', lambda i, t: (_api(_text_mode_load(i)), None)),
]


@pytest.mark.parametrize('case_id,thing,run', CASES, ids=[case[0] for case in CASES])
def test_bad_input_gives_one_clear_line(inputs, tmp_path, case_id, thing, run):
    outcome, payload = run(inputs, tmp_path / 'out')
    kind = classify(outcome, thing, payload)
    report = os.environ.get('BAD_INPUTS_REPORT')
    if report:
        with open(report, 'a') as f:
            f.write(f'{case_id}\t{kind}\t{outcome.message[:200]!r}\n')
    assert kind == 'clear', f'{case_id}: {kind}: {outcome.message}'
    if payload is not None:
        assert not os.path.exists(payload)


def test_gpus_above_the_cpu_cores_is_announced(inputs, tmp_path):
    # Without CUDA, --gpus=N starts N CPU processes; more than the cores must not pass without a word.
    if torch.cuda.is_available():
        pytest.skip('with CUDA, --gpus counts devices')
    gpus = (os.cpu_count() or 1) + 1
    import train
    result = CliRunner().invoke(train.main, ['--dry-run', f'--outdir={tmp_path}', f'--data={inputs["zip"]}', '--cbase=256', '--cmax=16',
                                             '--map=2', f'--batch={2 * gpus}', '--mbstd-group=2', f'--gpus={gpus}'])
    kind = 'clear' if result.exit_code == 0 and f'--gpus={gpus} starts {gpus} CPU processes' in result.output else 'silent'
    report = os.environ.get('BAD_INPUTS_REPORT')
    if report:
        with open(report, 'a') as f:
            f.write(f'train-gpus-above-cores\t{kind}\t\n')
    assert kind == 'clear', result.output[-2000:]

#----------------------------------------------------------------------------
