"""priors.cli: each prior's own command-line options (a section per prior in --help, refused unless the prior is
selected), and configure() composing the priors' D/G/loss kwargs updates at the leaves and their sample transforms.
Uses two throw-away priors registered here with cli modules of their own, removed after each test."""

import json
import sys
import types

import click
import pytest
from click.testing import CliRunner

import dnnlib
import train
from priors import base
from priors import cli
from priors import registry

#----------------------------------------------------------------------------
# Two test-only priors, 'tcli_a' and 'tcli_b', each with one option. What their update hooks return is set
# per test through the class attribute `updates` ({hook name: dict}).

class _Prior(base.Prior):
    updates = {}

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def D_kwargs_update(self):
        return self.updates.get('D_kwargs_update')

    def G_kwargs_update(self):
        return self.updates.get('G_kwargs_update')

    def loss_kwargs_update(self):
        return self.updates.get('loss_kwargs_update')

    def sample_transform_kwargs(self):
        return self.updates.get('sample_transform_kwargs')

class _PriorA(_Prior):
    updates = {}

class _PriorB(_Prior):
    updates = {}

def _cli_module(name, flag, title):
    module = types.ModuleType(f'_test_prior_cli_{name}')
    module.TITLE = title
    module.OPTIONS = [cli.option(flag, type=click.FloatRange(min=0), metavar='FLOAT', help=f'{name}: a scale  [default: 1]')]
    key = flag[2:].replace('-', '_')
    module.prior_kwargs = lambda opts, c: dict(scale=opts.get(key) if opts.get(key) is not None else 1.0)
    return module

@pytest.fixture
def test_priors():
    modules = [_cli_module('tcli_a', '--ta-scale', 'Test prior A'), _cli_module('tcli_b', '--tb-scale', 'Test prior B')]
    for module in modules:
        sys.modules[module.__name__] = module
    registry.register_prior('tcli_a', cli=modules[0].__name__)(_PriorA)
    registry.register_prior('tcli_b', cli=modules[1].__name__)(_PriorB)
    _PriorA.updates, _PriorB.updates = {}, {}
    yield _PriorA, _PriorB
    for name in ('tcli_a', 'tcli_b'):
        registry.unregister_prior(name)
    for module in modules:
        del sys.modules[module.__name__]
    assert 'tcli_a' not in registry.list_priors()

def _base_config():
    return dnnlib.EasyDict(
        random_seed=3,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='data.zip', use_labels=False,
                                            max_size=100, xflip=False, resolution=16),
        G_kwargs=dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=8,
                                 synthesis_kwargs=dnnlib.EasyDict(channel_base=256, channel_max=8)),
        D_kwargs=dnnlib.EasyDict(class_name='training.networks.Discriminator', epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=4)),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
    )

def _configure(**opts):
    return cli.configure(_base_config(), dict(dict(prior=['none'], data='data.zip', cfg=None), **opts))

def _help_sections(text):
    # Section heading -> its text, for click's "Heading:" lines at column 0.
    sections, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(' ') and line.endswith(':'):
            current = line[:-1]
            sections[current] = ''
        elif current is not None:
            sections[current] += line + '\n'
    return sections

#----------------------------------------------------------------------------

def test_each_prior_lists_its_options_in_its_own_help_section(test_priors):
    @click.command(cls=cli.PriorCommand)
    @cli.prior_options
    def command(**opts):
        pass
    sections = _help_sections(CliRunner().invoke(command, ['--help']).output)
    a, b, gmm = (sections[f'Options of --prior={name} ({title})'] for name, title in
                 [('tcli_a', 'Test prior A'), ('tcli_b', 'Test prior B'), ('gmm', 'PriorGAN, Gu et al. 2020: quality loss Eq. 5, resampling Eq. 6-8')])
    assert '--ta-scale' in a and '--tb-scale' not in a and 'tcli_a: a scale' in a
    assert '--tb-scale' in b and '--ta-scale' not in b
    assert '--prior-file' in gmm and '--resample-rule' in gmm and '--ta-scale' not in gmm
    assert '--prior LIST' in sections['Options'] and '--ta-scale' not in sections['Options'] and '--prior-weight' not in sections['Options']


def test_train_help_has_a_gmm_section():
    sections = _help_sections(CliRunner().invoke(train.main, ['--help']).output)
    (gmm,) = [text for heading, text in sections.items() if heading.startswith('Options of --prior=gmm')]
    for flag in ('--prior-file', '--prior-feature', '--prior-weight', '--resample', '--resample-rule'):
        assert flag in gmm and flag + ' ' not in sections['Options']
    assert '--outdir' in sections['Options'] and '--prior LIST' in sections['Options']


@pytest.mark.parametrize('prior, message', [
    (['none'],   r'--ta-scale only applies to --prior=tcli_a, but --prior=none; add --prior=tcli_a or drop --ta-scale'),
    (['tcli_b'], r'--ta-scale only applies to --prior=tcli_a, but --prior=tcli_b; add tcli_a to --prior or drop --ta-scale'),
])
def test_option_of_an_unselected_prior_is_refused(test_priors, prior, message):
    with pytest.raises(click.ClickException, match=message):
        _configure(prior=prior, ta_scale=2.0)
    c = _configure(prior=['tcli_a', 'tcli_b'], ta_scale=2.0)
    assert [(e.name, e.scale) for e in c.loss_kwargs.prior_kwargs] == [('tcli_a', 2.0), ('tcli_b', 1.0)]


def test_option_refused_through_the_command_line(test_priors):
    @click.command(cls=cli.PriorCommand)
    @cli.prior_options
    def command(**opts):
        cli.configure(_base_config(), dict(opts, data='data.zip', cfg=None))
    result = CliRunner().invoke(command, ['--prior=gmm', '--tb-scale=3'])
    assert result.exit_code == 1 and '--tb-scale only applies to --prior=tcli_b, but --prior=gmm; add tcli_b to --prior' in result.output


def test_kwargs_updates_of_two_priors_merge_at_the_leaves(test_priors):
    A, B = test_priors
    A.updates = dict(D_kwargs_update={'epilogue_kwargs.mbstd_num_channels': 2},
                     G_kwargs_update={'synthesis_kwargs.side_kwargs': dict(class_name='torch.nn.Identity')},
                     sample_transform_kwargs=dict(class_name='torch.nn.Identity', tag='a'))
    B.updates = dict(D_kwargs_update={'out_dim': 6, 'epilogue_kwargs.extra': 1},
                     loss_kwargs_update={'r1_gamma': 0.5, 'extra_kwargs.w': 2},
                     sample_transform_kwargs=dict(class_name='torch.nn.Identity', tag='b'))
    c = _configure(prior=['tcli_a', 'tcli_b'])
    base_c = _base_config()
    assert c.D_kwargs == dict(base_c.D_kwargs, out_dim=6, epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=2, extra=1))
    assert c.G_kwargs == dict(base_c.G_kwargs, synthesis_kwargs=dict(channel_base=256, channel_max=8,
                                                                        side_kwargs=dict(class_name='torch.nn.Identity')))
    assert (c.loss_kwargs.r1_gamma, c.loss_kwargs.extra_kwargs.w, c.loss_kwargs.class_name) == (0.5, 2, 'priors.loss.PriorLoss')
    assert [t.tag for t in c.sample_transform_kwargs] == ['a', 'b']  # in --prior order
    # Updated sub-dicts are copies: nothing leaks into dicts the caller still holds.
    held = _base_config()
    epilogue = held.D_kwargs.epilogue_kwargs
    cli.configure(held, dict(prior=['tcli_a', 'tcli_b'], data='data.zip'))
    assert held.D_kwargs.epilogue_kwargs.mbstd_num_channels == 2 and epilogue == dict(mbstd_group_size=4)


def test_no_update_hooks_leave_g_and_d_alone_and_omit_sample_transforms(test_priors):
    c = _configure(prior=['tcli_a'])
    assert json.dumps(c.G_kwargs) == json.dumps(_base_config().G_kwargs) and json.dumps(c.D_kwargs) == json.dumps(_base_config().D_kwargs)
    assert 'sample_transform_kwargs' not in c and 'sampler_kwargs' not in c
    assert json.dumps(_configure(prior=['none'])) == json.dumps(_base_config())


@pytest.mark.parametrize('update_a, update_b, message', [
    ({'epilogue_kwargs.mbstd_num_channels': 2}, {'epilogue_kwargs.mbstd_num_channels': 3},
     r'Priors "tcli_a" and "tcli_b" both change D_kwargs.epilogue_kwargs.mbstd_num_channels'),
    ({'epilogue_kwargs': dict(x=1)}, {'epilogue_kwargs.y': 2},
     r'Priors "tcli_a" and "tcli_b" both change D_kwargs.epilogue_kwargs'),
])
def test_a_leaf_set_by_two_priors_is_refused(test_priors, update_a, update_b, message):
    A, B = test_priors
    A.updates, B.updates = dict(D_kwargs_update=update_a), dict(D_kwargs_update=update_b)
    with pytest.raises(click.ClickException, match=r'--prior=tcli_a,tcli_b: ' + message):
        _configure(prior=['tcli_a', 'tcli_b'])


def test_bad_updates_are_refused(test_priors):
    A, _B = test_priors
    A.updates = dict(loss_kwargs_update={'class_name': 'x.Y'})
    with pytest.raises(click.ClickException, match=r'may not change loss_kwargs.class_name'):
        _configure(prior=['tcli_a'])
    A.updates = dict(sample_transform_kwargs=dict(class_name='nowhere.Transform'))
    with pytest.raises(click.ClickException, match=r'sample_transform_kwargs\[0\].class_name="nowhere.Transform" cannot be found'):
        _configure(prior=['tcli_a'])


def test_two_priors_declaring_one_flag_are_refused(test_priors):
    sys.modules['_test_prior_cli_tcli_b'].OPTIONS = [cli.option('--ta-scale', type=float)]
    with pytest.raises(ValueError, match=r'Priors "tcli_a" and "tcli_b" both declare the option --ta-scale'):
        cli.prior_options(lambda **opts: None)

#----------------------------------------------------------------------------
