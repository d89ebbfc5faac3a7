"""Safe loading by default and the --trust-pickle opt-in (issue 20): torch_utils.safe_load and the scripts' flags.

Without --trust-pickle no file runs code when loaded (tests/unit/test_bad_inputs.py gives a hostile file to every
file option of every script). Here: the opt-in does what its help says (the same file's code runs, a fork's
network pickle with embedded source loads), it is scoped to one command, --safe-load is still accepted, and the
files that must load safely still do (plain CIFAR-10 batches, toy snapshots, state dicts, TorchScript).
"""

import io
import os
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import legacy
from torch_utils import persistence
from torch_utils import safe_load

#----------------------------------------------------------------------------

class _Payload:
    """Unpickles as open(path, 'w'): loading it creates the file."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _commands():
    import build_prior, build_rf, calc_metrics, dataset_tool, generate, missing_modes, projector, style_mixing, train # pylint: disable=multiple-imports
    return {'train.py': train.main, 'generate.py': generate.generate_images, 'style_mixing.py': style_mixing.generate_style_mix,
            'calc_metrics.py': calc_metrics.main, 'missing_modes.py': missing_modes.main, 'build_prior.py': build_prior.main,
            'build_rf.py': build_rf.main, 'legacy.py': legacy.convert_network_pickle, 'dataset_tool.py': dataset_tool.convert_dataset,
            'projector.py': projector.run_projection}


def _tiny_snapshot():
    from training import networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                               synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None)).eval()
        D = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=0,
                                   conv_clamp=None).eval()
    return dict(training_set_kwargs=None, G=G, D=D, G_ema=G, augment_pipe=None)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('script', ['train.py', 'generate.py', 'style_mixing.py', 'calc_metrics.py', 'missing_modes.py',
                                    'build_prior.py', 'build_rf.py', 'legacy.py', 'dataset_tool.py', 'projector.py'])
def test_every_script_offers_the_opt_in(script):
    result = CliRunner().invoke(_commands()[script], ['--help'], terminal_width=400)
    assert result.exit_code == 0, result.output
    text = ' '.join(result.output.split())
    assert '--trust-pickle' in text and 'Only for files you trust' in text
    if script != 'build_rf.py':  # build_rf.py never had it
        assert '--safe-load' in text  # still accepted, as a no-op


def test_opt_in_runs_the_file_and_is_scoped_to_the_command(tmp_path):
    import generate
    marker = tmp_path / 'ran'
    hostile = tmp_path / 'hostile.pkl'
    hostile.write_bytes(pickle.dumps(dict(G=_Payload(str(marker)))))
    args = ['--network', str(hostile), '--seeds=0', '--outdir', str(tmp_path / 'out'), '--device=cpu']
    for extra in ([], ['--safe-load'], ['--safe-load', '0']):
        result = CliRunner().invoke(generate.generate_images, args + extra)
        assert result.exit_code != 0 and 'refusing the global' in result.output
        assert not marker.exists()
    result = CliRunner().invoke(generate.generate_images, args + ['--trust-pickle'])
    assert result.exit_code != 0 and 'unpickled in full' in result.output  # it ran, and the message says so
    assert marker.exists()
    assert not safe_load.pickles_trusted()  # the next command is safe again
    marker.unlink()
    result = CliRunner().invoke(generate.generate_images, args)
    assert not marker.exists()


def test_trusted_pickles_restores_the_setting():
    assert not safe_load.pickles_trusted()
    with safe_load.trusted_pickles():
        assert safe_load.pickles_trusted()
        with safe_load.trusted_pickles(False):
            assert not safe_load.pickles_trusted()
        assert safe_load.pickles_trusted()
    assert not safe_load.pickles_trusted()


def test_fork_pickle_with_embedded_source_loads_only_when_trusted(tmp_path):
    # A third-party fork's class, unknown here: its pickle carries the source, which only the trusted path executes.
    marker = tmp_path / 'fork_ran'
    src = (f'import torch\nopen({str(marker)!r}, "w").close()\n'
           f'class ForkNet(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n')
    meta = dict(type='class', version=6, module_src=src, class_name='ForkNet',
                state=dict(training=False, _parameters={}, _buffers={}, _modules={}, _init_args=(), _init_kwargs={}))
    class Forged:
        def __reduce__(self):
            return (persistence._reconstruct_persistent_obj, (meta,)) # pylint: disable=protected-access
    data = pickle.dumps(dict(_tiny_snapshot(), augment_pipe=Forged()))
    with pytest.raises(legacy.NetworkPickleError, match=r'refusing to load unknown class ForkNet in safe mode.*--trust-pickle'):
        legacy.load_network_pkl(io.BytesIO(data))
    assert not marker.exists()
    with safe_load.trusted_pickles():
        loaded = legacy.load_network_pkl(io.BytesIO(data))
    assert type(loaded['augment_pipe']).__name__ == 'ForkNet' and marker.exists()


def test_plain_files_load_in_safe_mode(tmp_path):
    # torch.save() files of plain data and state dicts.
    state = dict(step=3, weights=torch.arange(4.0), settings=dict(sigma=3.5))
    torch.save(state, tmp_path / 'state.pt')
    loaded = safe_load.load_torch_file(tmp_path / 'state.pt')
    assert loaded['step'] == 3 and torch.equal(loaded['weights'], state['weights'])
    torch.save(torch.nn.Linear(2, 3).state_dict(), tmp_path / 'sd.pt')
    assert set(safe_load.load_torch_file(tmp_path / 'sd.pt')) == {'weight', 'bias'}

    # TorchScript files (their code runs in the TorchScript interpreter, not as Python).
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(tmp_path / 'script.pt'))
    net = safe_load.load_module_file(tmp_path / 'script.pt')
    assert net(torch.zeros([1, 2])).shape == (1, 3)

    # A CIFAR-10 batch as the official archive holds it (protocol 2, NumPy arrays, lists).
    batch = {'data': np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), 'labels': [3, 7], 'batch_label': 'training batch 1 of 5'}
    got = safe_load.load_plain_pickle(io.BytesIO(pickle.dumps(batch, protocol=2)), encoding='latin1')
    assert got['labels'] == [3, 7] and np.array_equal(got['data'], batch['data'])


def test_toy_snapshot_loads_in_safe_mode():
    # The toy MLPs hold torch.nn.Linear / ModuleList children, which safe mode rebuilds without running file code.
    from training import toy_networks
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = toy_networks.ToyGenerator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2).eval()
        D = toy_networks.ToyDiscriminator(c_dim=0, img_resolution=1, img_channels=2).eval()
    loaded = legacy.load_network_pkl(io.BytesIO(pickle.dumps(dict(G=G, D=D, G_ema=G))), safe=True)
    x = torch.randn([5, 2, 1, 1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded['D'](x, torch.zeros([5, 0])), D(x, torch.zeros([5, 0])), rtol=0, atol=0)


@pytest.mark.parametrize('kind', ['hostile', 'text', 'empty', 'truncated'])
def test_wrong_files_are_one_line_errors(tmp_path, kind):
    path = tmp_path / 'f.pt'
    marker = tmp_path / 'ran'
    if kind == 'hostile':
        torch.save(_Payload(str(marker)), path)
    elif kind == 'text':
        path.write_text('every line here is text\n')  # 'e' = byte 101: torch.load's "KeyError: 101"
    elif kind == 'empty':
        path.write_bytes(b'')
    else:
        torch.save(dict(a=torch.zeros(100)), path)
        path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(safe_load.FileLoadError) as info:
        safe_load.load_torch_file(path, what='state file')
    message = str(info.value)
    assert '\n' not in message and f'state file "{path}"' in message
    assert {'hostile': '--trust-pickle', 'text': 'wrong file kind', 'empty': 'is empty', 'truncated': 'truncated'}[kind] in message
    assert not marker.exists()

#----------------------------------------------------------------------------
