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
    _more_inputs(root, paths)
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


#----------------------------------------------------------------------------
# Inputs of the issue 20 cases: toy snapshots and point files, hostile files of every kind, labelled data.

def _toy_networks():
    from training import toy_networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2).eval()
        D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2).eval()
    return G, D


def _more_inputs(root, paths):
    from training.synthetic import make_synthetic_dataset
    G, D = _toy_networks()
    toy_kwargs = dict(class_name='training.toy_data.ToyDataset', path='toy:ring8,n=256', use_labels=False, max_size=None, xflip=False)
    paths['toy_net'] = str(root / 'toy_net.pkl')
    with open(paths['toy_net'], 'wb') as f:
        pickle.dump(dict(training_set_kwargs=toy_kwargs, G=G, D=D, G_ema=G, augment_pipe=None), f)
    paths['labelled_zip'] = make_synthetic_dataset(str(root / 'labelled.zip'), num_images=16, resolution=16, num_modes=2, cond=True)

    # Point sets that must be refused (or, for the float64 one, checked after the cast).
    points = lambda name, array: (np.save(str(root / name), array), str(root / name))[1]
    paths['npy_1e300'] = points('huge.npy', np.full([64, 2], 1e300, dtype=np.float64))
    paths['npy_complex'] = points('complex.npy', (np.ones([64, 2]) + 1j).astype(np.complex128))
    paths['npy_strings'] = points('strings.npy', np.array([['a', 'b']] * 8))
    paths['npy_empty'] = points('empty.npy', np.zeros([0, 2], dtype=np.float32))
    paths['csv_empty'] = str(root / 'empty.csv')
    open(paths['csv_empty'], 'w').close()
    rng = np.random.default_rng(0)
    for key, meta in [('modes_nan', dict(centres=[[0, 0], [float('nan'), 1]], stds=0.1)),
                      ('modes_inf_std', dict(centres=[[0, 0], [1, 1]], stds=[0.1, float('inf')])),
                      ('modes_zero_std', dict(centres=[[0, 0], [1, 1]], stds=[0.1, 0.0])),
                      ('modes_lengths', dict(centres=[[0, 0], [1, 1]], stds=[0.1, 0.1, 0.1])),
                      ('modes_zero_weights', dict(centres=[[0, 0], [1, 1]], stds=0.1, weights=[0, 0])),
                      ('modes_folder', None)]:
        paths[key] = points(key + '.npy', rng.standard_normal([64, 2]))
        side = str(root / (key + '.modes.json'))
        if meta is None:
            os.makedirs(side)
        else:
            with open(side, 'w') as f:
                f.write(json.dumps(meta).replace('NaN', 'NaN').replace('Infinity', 'Infinity'))

    # dataset.json labels: a class index that would need a huge one-hot table, and vectors that overflow float32.
    for key, label in [('labels_class_huge', lambda k: 10**12 if k == 3 else k % 2), ('labels_inf', lambda k: [1e300 if k == 2 else 0.5, 0.0])]:
        paths[key] = _image_folder(str(root / key))
        with open(os.path.join(paths[key], 'dataset.json'), 'w') as f:
            json.dump({'labels': [[f'img{k}.png', label(k)] for k in range(4)]}, f)

    # Files of the wrong kind.
    paths['text_e'] = str(root / 'e_text.pt')       # starts with 'e' (byte 101): torch.load's "KeyError: 101"
    with open(paths['text_e'], 'w') as f:
        f.write('everything here is text\n')


def _hostile_torch_file(inputs, name):
    """A torch.save() zip whose unpickling writes <name>.pwned (what a pickled nn.Module can do)."""
    return _hostile_module_file(inputs, name)


def _hostile_cifar(inputs, name):
    """A cifar-10-python.tar.gz whose first batch unpickles as the payload."""
    import tarfile
    target = os.path.join(inputs['root'], name + '.pwned')
    folder = os.path.join(inputs['root'], name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'cifar-10-python.tar.gz')
    data = pickle.dumps(dict(data=_Payload(target), labels=[0]), protocol=2)
    with tarfile.open(path, 'w:gz') as tar:
        info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path, target


def _state_file(kind):
    """Runner of missing_modes.py whose --outdir holds a bad noisy-d-state.pt."""
    def run(i, t):
        os.makedirs(t, exist_ok=True)
        state = os.path.join(str(t), 'noisy-d-state.pt')
        target = None
        if kind == 'hostile':
            target = os.path.join(str(t), 'state.pwned')
            torch.save(_Payload(target), state)
        elif kind == 'truncated':
            torch.save(dict(step=3, settings={}), state)
            with open(state, 'rb') as f:
                data = f.read()
            with open(state, 'wb') as f:
                f.write(data[:len(data) // 2])
        else:
            torch.save([1, 2, 3], state)
        return _mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4'), target
    return run


def _proj(*args):
    import projector
    return _cli(projector.run_projection, ['--device=cpu', '--num-steps=1', '--save-video=false', *args])


def _hostile_npz(inputs, name):
    """A projector-style .npz whose "w" is an object array: np.load would unpickle it (and write <name>.pwned)."""
    target = os.path.join(inputs['root'], name + '.pwned')
    path = os.path.join(inputs['root'], name + '.npz')
    w = np.empty([1], dtype=object)
    w[0] = _Payload(target)
    np.savez(path, w=w)
    return path, target


def _toy_train(*args):
    import train
    return _cli(train.main, ['--dry-run', '--cfg=toy', *args])


def _toy_run(*args):
    """A real (not dry) toy run of a few steps."""
    import train
    return _cli(train.main, ['--cfg=toy', '--kimg=0.002', '--batch=8', '--tick=0.002', '--snap=1000', '--workers=1', *args])


def _mm(*args):
    import missing_modes
    return _cli(missing_modes.main, ['--device=cpu', *args])


def _tc(*args):
    import train_classifier
    return _cli(train_classifier.main, list(args))


def _rf(*args):
    import build_rf
    return _cli(build_rf.main, ['--cbase=256', '--cmax=16', '--map=2', '--batch=4', '--mbstd-group=2', '--rf-ae-kimg=0.004', *args])


def _with_hostile(make, run):
    """Case whose runner gets a hostile file of `make`'s kind in place of a file option."""
    def case(i, t):
        path, target = make(i, os.path.basename(os.path.dirname(str(t))))
        return run(i, t, path), target
    return case


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
    ('generate-network-not-network', 'not a network snapshot', lambda i, t: (_gen(f'--network={i["list_pkl"]}', '--seeds=0', f'--outdir={t}'), None)),
    # With --trust-pickle the whole file is unpickled (code may have run): the message says so.
    ('generate-network-not-network-trusted', 'unpickled in full', lambda i, t: (_gen(f'--network={i["list_pkl"]}', '--seeds=0', f'--outdir={t}', '--trust-pickle'), None)),
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
    # ---- issue 20 ----
    # 1. Hostile files on every file option, WITHOUT any flag: safe loading is the default.
    ('train-resume-hostile',    '--resume',     _with_hostile(_hostile_pickle, lambda i, t, p: _train(f'--outdir={t}', f'--data={i["zip"]}', f'--resume={p}'))),
    ('generate-network-hostile', '--network',   _with_hostile(_hostile_pickle, lambda i, t, p: _gen(f'--network={p}', '--seeds=0', f'--outdir={t}'))),
    ('style-mixing-network-hostile', '--network', _with_hostile(_hostile_pickle, lambda i, t, p: _mix(f'--network={p}', '--rows=0', '--cols=1', f'--outdir={t}'))),
    ('calc-metrics-network-hostile', '--network', _with_hostile(_hostile_pickle, lambda i, t, p: _metrics(f'--network={p}', '--metrics=fid50k_full', f'--data={i["zip"]}'))),
    ('missing-modes-network-hostile', '--network', _with_hostile(_hostile_pickle, lambda i, t, p: _mm(f'--network={p}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}'))),
    ('convert-source-hostile',  '--source',     _with_hostile(_hostile_pickle, lambda i, t, p: _convert('--source', p, '--dest', os.path.join(str(t), 'o.pkl')))),
    ('build-prior-feature-hostile', '--feature', _with_hostile(_hostile_torch_file, lambda i, t, p: _prior(f'--data={i["zip"]}', f'--out={t}/p.pt', f'--feature={p}'))),
    ('build-prior-feature-hostile-pkl', '--feature', _with_hostile(_hostile_pickle, lambda i, t, p: _prior(f'--data={i["zip"]}', f'--out={t}/p.pt', f'--feature={p}'))),
    ('train-prior-feature-hostile', '--prior-feature', _with_hostile(_hostile_torch_file, lambda i, t, p: _toy_run(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=gmm', f'--prior-feature={p}'))),
    ('train-mdgan-distance-hostile', '--mdgan-distance', _with_hostile(_hostile_torch_file, lambda i, t, p: _toy_run(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=mdgan', f'--mdgan-distance={p}'))),
    ('train-rf-ae-hostile',     '--rf-ae',      _with_hostile(_hostile_torch_file, lambda i, t, p: _toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=rf', f'--rf-ae={p}'))),
    ('train-prior-file-hostile', '--prior-file', _with_hostile(_hostile_torch_file, lambda i, t, p: _toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=gmm', f'--prior-file={p}'))),
    ('calc-metrics-prior-file-hostile', '--prior-file', _with_hostile(_hostile_torch_file, lambda i, t, p: _metrics(f'--network={i["net"]}', '--metrics=qs10k', f'--data={i["zip"]}', f'--prior-file={p}'))),
    ('calc-metrics-classifier-hostile', '--classifier', _with_hostile(_hostile_torch_file, lambda i, t, p: _metrics(f'--network={i["net"]}', '--metrics=mode10k', f'--data={i["zip"]}', f'--classifier={p}'))),
    ('missing-modes-state-hostile', 'noisy-d-state.pt', _state_file('hostile')),
    ('dataset-tool-cifar-hostile', '--source',  _with_hostile(_hostile_cifar, lambda i, t, p: _tool('--source', p, '--dest', os.path.join(str(t), 'o.zip')))),
    ('projector-network-hostile', '--network', _with_hostile(_hostile_pickle, lambda i, t, p: _proj(f'--network={p}', f'--target={i["good"]}/img0.png', f'--outdir={t}'))),
    ('generate-projected-w-hostile', '--projected-w', _with_hostile(_hostile_npz, lambda i, t, p: _gen(f'--network={i["net"]}', f'--projected-w={p}', f'--outdir={t}'))),
    # 4. Wrong file kinds and corrupt state files: one line naming the option (or the file, and "delete it").
    ('train-rf-ae-text',        '--rf-ae',      lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=rf', f'--rf-ae={i["text_e"]}'), None)),
    ('train-prior-file-text',   '--prior-file', lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=gmm', f'--prior-file={i["text_e"]}'), None)),
    ('calc-metrics-classifier-text', '--classifier', lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=mode10k', f'--data={i["zip"]}', f'--classifier={i["text_e"]}'), None)),
    ('calc-metrics-classifier-network', '--classifier', lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=mode10k', f'--data={i["zip"]}', f'--classifier={i["net"]}'), None)),
    ('build-prior-feature-text', '--feature',   lambda i, t: (_prior(f'--data={i["zip"]}', f'--out={t}/p.pt', f'--feature={i["text_e"]}'), None)),
    ('train-prior-feature-text', '--prior-feature', lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=gmm', f'--prior-feature={i["text_e"]}'), None)),
    ('train-mdgan-distance-text', '--mdgan-distance', lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,n=256', '--prior=mdgan', f'--mdgan-distance={i["text_e"]}'), None)),
    ('missing-modes-outdir-under-file', '--outdir', lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={_in_file(i, "mm")}'), None)),
    ('missing-modes-network-text', '--network', lambda i, t: (_mm(f'--network={i["file"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}'), None)),
    ('missing-modes-state-truncated', 'delete it', _state_file('truncated')),
    ('missing-modes-state-not-a-state', 'noisy-d-state.pt', _state_file('list')),
    ('missing-modes-device-cuda', '--device',   lambda i, t: (_cli(__import__('missing_modes').main, [f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4', '--device=cuda:7']), None)),
    ('train-classifier-device-cuda', '--device', lambda i, t: (_tc(f'--data={i["labelled_zip"]}', f'--out={t}/c.pt', '--device=cuda:7', '--epochs=1'), None)),
    # 2. Numbers: finite and in range after every cast.
    ('toy-npy-float64-1e300',   'huge.npy',     lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["npy_1e300"]}'), None)),
    ('toy-npy-complex',         'complex.npy',  lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["npy_complex"]}'), None)),
    ('toy-npy-strings',         'strings.npy',  lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["npy_strings"]}'), None)),
    ('toy-npy-empty',           'empty.npy',    lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["npy_empty"]}'), None)),
    ('toy-csv-empty',           'empty.csv',    lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["csv_empty"]}'), None)),
    ('toy-spec-radius-inf',     'radius',       lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,radius=inf'), None)),
    ('toy-spec-radius-1e300',   'radius',       lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,radius=1e300'), None)),
    ('toy-spec-std-nan',        'std',          lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,std=nan'), None)),
    ('toy-spec-spacing-inf',    'spacing',      lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:grid25,spacing=inf'), None)),
    ('toy-spec-rare-nan',       'rare',         lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,rare=nan'), None)),
    ('toy-spec-n-huge',         'n=2000000000', lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8,n=2000000000'), None)),
    ('toy-modes-nan-centre',    'modes_nan.modes.json', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_nan"]}'), None)),
    ('toy-modes-inf-std',       'modes_inf_std.modes.json', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_inf_std"]}'), None)),
    ('toy-modes-zero-std',      'modes_zero_std.modes.json', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_zero_std"]}'), None)),
    ('toy-modes-lengths',       'lengths must match', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_lengths"]}'), None)),
    ('toy-modes-zero-weights',  'modes_zero_weights.modes.json', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_zero_weights"]}'), None)),
    ('toy-modes-folder',        'modes_folder.modes.json', lambda i, t: (_toy_train(f'--outdir={t}', f'--data={i["modes_folder"]}'), None)),
    ('train-labels-class-huge', 'out of range', lambda i, t: (_train(f'--outdir={t}', f'--data={i["labels_class_huge"]}', '--cond=1'), None)),
    ('train-labels-inf',        'img2.png',     lambda i, t: (_train(f'--outdir={t}', f'--data={i["labels_inf"]}', '--cond=1'), None)),
    ('missing-modes-sigma-nan', '--sigma',      lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4', '--sigma=nan'), None)),
    ('missing-modes-sigma-inf', '--sigma',      lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4', '--sigma=inf'), None)),
    ('missing-modes-kimg-inf',  '--kimg',       lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--batch=4', '--kimg=inf'), None)),
    ('missing-modes-lr-nan',    '--lr',         lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4', '--lr=nan'), None)),
    ('missing-modes-snap-kimg-nan', '--snap-kimg', lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}', '--kimg=0.008', '--batch=4', '--snap-kimg=nan'), None)),
    ('train-classifier-lr-nan', '--lr',         lambda i, t: (_tc(f'--data={i["labelled_zip"]}', f'--out={t}/c.pt', '--lr=nan', '--epochs=1'), None)),
    ('train-classifier-test-frac-nan', '--test-frac', lambda i, t: (_tc(f'--data={i["labelled_zip"]}', f'--out={t}/c.pt', '--test-frac=nan', '--epochs=1'), None)),
    ('dataset-tool-digits-rare-frac-nan', '--digits-rare-frac', lambda i, t: (_tool('--source=digits', '--digits-rare-frac=nan', '--dest', os.path.join(str(t), 'o.zip')), None)),
    ('build-prior-holdout-nan', '--holdout',    lambda i, t: (_prior(f'--data={i["zip"]}', f'--out={t}/p.pt', '--holdout=nan'), None)),
    ('train-masked-presample-huge', '--masked-presample', lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--prior=masked', '--masked-presample=1e12'), None)),
    ('train-masked-pool-huge',  '--masked-pool', lambda i, t: (_train(f'--outdir={t}', f'--data={i["zip"]}', '--prior=masked', '--masked-pool=100000'), None)),
    # 3. Applicability, checked before any work.
    ('calc-metrics-miss100k-toy', '--metrics',  lambda i, t: (_metrics(f'--network={i["toy_net"]}', '--metrics=miss100k'), None)),
    ('calc-metrics-msssim10k-toy', '--metrics', lambda i, t: (_metrics(f'--network={i["toy_net"]}', '--metrics=msssim10k'), None)),
    ('calc-metrics-fid5k-toy',  '--metrics',    lambda i, t: (_metrics(f'--network={i["toy_net"]}', '--metrics=fid5k'), None)),
    ('calc-metrics-toy2k-image', '--metrics',   lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=toy2k', f'--data={i["zip"]}'), None)),
    ('generate-grid-toy',       '--grid',       lambda i, t: (_gen(f'--network={i["toy_net"]}', '--seeds=0-3', '--grid=2x2', f'--outdir={t}'), None)),
    ('generate-class-toy',      '--class',      lambda i, t: (_gen(f'--network={i["toy_net"]}', '--seeds=0-3', '--class=1', f'--outdir={t}'), None)),
    ('generate-projected-w-toy', 'toy network', lambda i, t: (_gen(f'--network={i["toy_net"]}', f'--projected-w={i["npy"]}', f'--outdir={t}'), None)),
    ('style-mixing-toy',        'toy network',          lambda i, t: (_cli(__import__('style_mixing').generate_style_mix, ['--device=cpu', f'--network={i["toy_net"]}', '--rows=0', '--cols=1', f'--outdir={t}']), None)),
    ('train-mirror-toy',        '--mirror',     lambda i, t: (_toy_train(f'--outdir={t}', '--data=toy:ring8', '--mirror=1'), None)),
    ('build-rf-out-folder',     '--out',        lambda i, t: (_rf(f'--data={i["zip"]}', f'--out={i["empty_dir"]}', '--device=cpu'), None)),
    ('build-rf-out-under-file', '--out',        lambda i, t: (_rf(f'--data={i["zip"]}', f'--out={_in_file(i, "ae.pt")}', '--device=cpu'), None)),
    ('train-classifier-out-folder', '--out',    lambda i, t: (_tc(f'--data={i["labelled_zip"]}', f'--out={i["empty_dir"]}', '--epochs=1', '--device=cpu'), None)),
    ('train-classifier-out-under-file', '--out', lambda i, t: (_tc(f'--data={i["labelled_zip"]}', f'--out={_in_file(i, "c.pt")}', '--epochs=1', '--device=cpu'), None)),
    ('build-prior-data-toy',    'toy data',          lambda i, t: (_prior('--data=toy:ring8', f'--out={t}/p.pt'), None)),
    ('train-classifier-data-toy', 'toy data',        lambda i, t: (_tc('--data=toy:ring8', f'--out={t}/c.pt', '--epochs=1', '--device=cpu'), None)),
    ('missing-modes-data-toy',  'toy data',     lambda i, t: (_mm(f'--network={i["net"]}', f'--test-data={i["zip"]}', '--data=toy:ring8', f'--outdir={t}'), None)),
    ('projector-toy',           'toy network',  lambda i, t: (_proj(f'--network={i["toy_net"]}', f'--target={i["good"]}/img0.png', f'--outdir={t}'), None)),
    ('calc-metrics-data-toy-image-net', 'toy data', lambda i, t: (_metrics(f'--network={i["net"]}', '--metrics=fid50k_full', '--data=toy:ring8'), None)),
    ('missing-modes-network-toy', 'toy network', lambda i, t: (_mm(f'--network={i["toy_net"]}', f'--test-data={i["zip"]}', f'--data={i["zip"]}', f'--outdir={t}'), None)),
    ('build-rf-device-cuda',    '--device',     lambda i, t: (_rf(f'--data={i["zip"]}', '--device=cuda:7'), None)),
    ('missing-modes-test-data-toy', 'toy data',      lambda i, t: (_mm(f'--network={i["net"]}', '--test-data=toy:ring8', f'--data={i["zip"]}', f'--outdir={t}'), None)),
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
