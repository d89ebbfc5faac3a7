"""Unit tests for the prior plugin interface: registry errors, composition rules in PriorLoss, and validation of the command-line options (priors/registry.py, base.py, loss.py, cli.py)."""

import click
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import priors  # noqa: F401  (registers the built-in priors)
from priors import base, cli, registry
from priors.loss import PriorLoss
from torch_utils import training_stats
from training.networks import Discriminator, Generator

@pytest.fixture(autouse=True)
def _restore_registry():
    saved = dict(registry._priors)
    yield
    registry._priors.clear()
    registry._priors.update(saved)

#----------------------------------------------------------------------------
# Registry.

def test_builtin_priors_are_registered():
    assert {'none', 'gmm'} <= set(registry.list_priors())
    assert registry.list_priors() == sorted(registry.list_priors())
    assert isinstance(registry.build_prior('none'), base.NoPrior)


def test_unknown_prior_lists_the_registered_names():
    with pytest.raises(ValueError, match=f'Unknown prior "nope". Registered priors: {", ".join(registry.list_priors())}$'):
        registry.build_prior('nope')


def test_registering_a_name_twice_is_refused():
    @registry.register_prior('twice')
    class First(base.Prior):
        pass
    with pytest.raises(ValueError, match=r'Prior "twice" is already registered by .*First'):
        @registry.register_prior('twice')
        class Second(base.Prior):
            pass


def test_register_checks_the_class_and_the_name():
    with pytest.raises(TypeError, match=r'register_prior\("plain"\): .* is not a subclass of priors.base.Prior'):
        registry.register_prior('plain')(dict)
    with pytest.raises(ValueError, match=r'non-empty string without commas, got \'a,b\''):
        registry.register_prior('a,b')


def test_unknown_option_names_the_prior():
    with pytest.raises(ValueError, match=r'Prior "gmm" does not take option \'nope\''):
        registry.build_prior('gmm', nope=1)


def test_gmm_option_values_are_checked():
    with pytest.raises(ValueError, match=r'Prior "gmm": weight must be >= 0, got -0.5'):
        registry.build_prior('gmm', weight=-0.5)
    with pytest.raises(ValueError, match=r'Prior "gmm": resample_rule must be one of nearest, argmax, got \'far\''):
        registry.build_prior('gmm', resample_rule='far')
    with pytest.raises(ValueError, match=r'Prior "gmm": lazy must be an integer >= 1, got 0'):
        registry.build_prior('gmm', lazy=0)

#----------------------------------------------------------------------------
# Composition rules.

def _register_dummies():
    # 'shift' adds 1 to z, 'scale' doubles it; both add a per-sample loss; 'drive' drives the sampler.
    @registry.register_prior('shift')
    class Shift(base.Prior):
        def transform_latents(self, z, c, *, step, role, batch):
            return z + 1, c
        def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
            return torch.full([img.shape[0]], 1.0) if step == 'Gmain' else None
        def on_progress(self, cur_nimg):
            return dict(shift_seen=cur_nimg)
        def state_dict(self):
            return dict(value=1)
        def load_state_dict(self, state):
            self.loaded = state

    @registry.register_prior('scale')
    class Scale(base.Prior):
        def transform_latents(self, z, c, *, step, role, batch):
            return z * 2, c
        def extra_loss(self, step, img, c, logits, ws, *, batch=None, outputs=None):
            return torch.tensor(0.5) if step == 'Gmain' else None
        def on_progress(self, cur_nimg):
            return dict(shift_seen=0) if getattr(self, 'clash', False) else None

    for name in ('drive', 'drive2'):
        @registry.register_prior(name)
        class Drive(base.Prior):
            def sampler_kwargs(self):
                return dict(class_name='priors.sampler.PriorResampler')
            def D_kwargs_update(self):
                return dict(architecture='orig')


def test_check_composition_rules():
    _register_dummies()
    build = lambda *names: [registry.build_prior(n) for n in names]
    assert base.check_composition(build('shift', 'drive')) == 1
    assert base.check_composition(build('shift', 'scale')) is None
    with pytest.raises(ValueError, match=r'Prior "shift" is listed 2 times; list each prior once'):
        base.check_composition(build('shift', 'shift'))
    with pytest.raises(ValueError, match=r'Prior "none" \(the baseline\) cannot be combined with other priors, got none,shift'):
        base.check_composition(build('none', 'shift'))
    with pytest.raises(ValueError, match=r'At most one prior may drive the data sampler, but drive and drive2 both do'):
        base.check_composition(build('drive', 'drive2'))
    with pytest.raises(ValueError, match=r'Priors "drive" and "drive2" both change D_kwargs.architecture'):
        base.merge_updates([(p.name, p.D_kwargs_update()) for p in build('drive', 'drive2')], 'D_kwargs')


def _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, names, **kwargs):
    torch.manual_seed(0)
    G, D = Generator(**tiny_G_kwargs), Discriminator(**tiny_D_kwargs)
    loss = PriorLoss(device='cpu', G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, r1_gamma=1,
                     prior_kwargs=[dict(name=n) for n in names], **kwargs)
    loss.setup(dnnlib.EasyDict(G=G, G_ema=G, D=D, augment_pipe=None, dataset_kwargs=None, random_seed=0, rank=0, num_gpus=1,
                               run_dir=None, batch_size=4, batch_gpu=4, device=torch.device('cpu')))
    return loss


def test_prior_loss_chains_latents_in_order_and_adds_losses(tiny_G_kwargs, tiny_D_kwargs):
    _register_dummies()
    z, c = torch.ones([3, 8]), torch.zeros([3, 0])
    where = dict(step='Gmain', role='main', batch=None)
    assert torch.equal(_tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['shift', 'scale']).transform_latents(z, c, **where)[0], torch.full([3, 8], 4.0))
    assert torch.equal(_tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['scale', 'shift']).transform_latents(z, c, **where)[0], torch.full([3, 8], 3.0))

    loss = _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['shift', 'scale'])
    training_stats.reset()
    collector = training_stats.Collector(regex='Loss/G/prior|Prior/.*')
    total = loss.extra_loss('Gmain', torch.zeros([3, 3, 16, 16]), c, None, None)
    assert torch.equal(total, torch.full([3], 1.5))
    assert loss.extra_loss('Dreal', torch.zeros([3, 3, 16, 16]), c, None, None) is None
    collector.update()
    assert collector.mean('Loss/G/prior') == 1.5 and collector.num('Loss/G/prior') == 3
    assert collector.mean('Prior/shift/loss') == 1.0 and collector.mean('Prior/scale/loss') == 0.5
    training_stats.reset()


def test_prior_loss_feedback_and_state(tiny_G_kwargs, tiny_D_kwargs):
    _register_dummies()
    loss = _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['shift', 'scale'])
    assert loss.on_progress(12) == dict(shift_seen=12)
    state = loss.state_dict()
    assert set(state) == {'pretrained', 'priors'} and state['priors'] == dict(shift=dict(value=1), scale={})
    assert set(loss.rank_state_dict()) == {'pl_mean', 'priors'}  # pl_mean is per process
    other = _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['shift', 'scale'])
    other.load_state_dict(state)
    assert other.priors[0].loaded == dict(value=1) and other.pretrained

    loss.priors[1].clash = True
    with pytest.raises(ValueError, match=r'Priors "shift" and "scale" both return "shift_seen" from on_progress\(\)'):
        loss.on_progress(16)
    with pytest.raises(ValueError, match=r'the snapshot was trained with priors \[\'scale\', \'shift\'\] but this run uses \[\'shift\'\]'):
        _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['shift']).load_state_dict(state)


def test_prior_loss_refuses_two_sampler_drivers(tiny_G_kwargs, tiny_D_kwargs):
    _register_dummies()
    with pytest.raises(ValueError, match=r'At most one prior may drive the data sampler'):
        _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['drive', 'drive2'])


def test_prior_loss_with_none_matches_stylegan2_state(tiny_G_kwargs, tiny_D_kwargs):
    loss = _tiny_loss(tiny_G_kwargs, tiny_D_kwargs, ['none'])
    assert loss.on_progress(0) is None
    assert loss.extra_loss('Gmain', torch.zeros([2, 3, 16, 16]), torch.zeros([2, 0]), None, None) is None
    assert loss.state_dict()['priors'] == dict(none={})

#----------------------------------------------------------------------------
# Command-line options and configure().

@click.command()
@cli.prior_options
def _command(**opts):
    c = _base_config()
    cli.configure(c, dict(opts, data='data.zip', cfg=None))
    print(repr(dict(c)))

def _base_config():
    return dnnlib.EasyDict(
        random_seed=3,
        training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='data.zip', use_labels=False,
                                            max_size=100, xflip=False, resolution=16),
        G_kwargs=dnnlib.EasyDict(class_name='training.networks.Generator', z_dim=8),
        D_kwargs=dnnlib.EasyDict(class_name='training.networks.Discriminator'),
        loss_kwargs=dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
    )

def _configure(**opts):
    c = _base_config()
    defaults = dict(prior=['none'], data='data.zip', cfg=None)
    return cli.configure(c, dict(defaults, **opts))


def test_prior_none_leaves_the_config_untouched():
    assert _configure() == _base_config()
    assert _configure(prior=[]) == _base_config()
    assert _configure(prior='none') == _base_config()


def test_gmm_writes_loss_and_sampler_config():
    c = _configure(prior=['gmm'], prior_weight=0.2, resample_alpha=3)
    assert c.loss_kwargs.class_name == 'priors.loss.PriorLoss' and c.loss_kwargs.r1_gamma == 1
    assert 'random_seed' not in c.loss_kwargs and 'dataset_kwargs' not in c.loss_kwargs  # the loop's context carries them
    (entry,) = c.loss_kwargs.prior_kwargs
    assert entry.name == 'gmm' and entry.weight == 0.2 and entry.resample_alpha == 3 and entry.feature == 'inception'
    assert (entry.components, entry.pca, entry.theta, entry.theta_quantile, entry.lazy) == (7, 0.98, None, 0.1, 1)
    assert (entry.resample, entry.resample_kimg, entry.resample_num, entry.resample_rule) == (True, 4, 1000, 'nearest')
    assert c.sampler_kwargs == dict(class_name='priors.sampler.PriorResampler')
    assert c.G_kwargs == _base_config().G_kwargs and c.D_kwargs == _base_config().D_kwargs


def test_gmm_demo_defaults_and_resample_off():
    c = _configure(prior=['gmm'], data=None)
    (entry,) = c.loss_kwargs.prior_kwargs
    assert (entry.feature, entry.resample_kimg, entry.resample_num) == ('tiny', 0.5, 256)
    c = _configure(prior=['gmm'], resample=False)
    assert c.loss_kwargs.prior_kwargs[0].resample is False and 'sampler_kwargs' not in c


@pytest.mark.parametrize('opts, message', [
    (dict(prior_weight=0.5),                              r'--prior-weight only applies to --prior=gmm, but --prior=none; add --prior=gmm'),
    (dict(prior=['none', 'gmm']),                         r'--prior=none,gmm: "none" \(the baseline\) cannot be combined'),
    (dict(prior=['gmm', 'gmm']),                          r'--prior=gmm,gmm: "gmm" is listed 2 times'),
    (dict(prior=['gmm'], prior_theta=-3.0, prior_theta_quantile=0.2),
                                                          r'--prior-theta=-3 and --prior-theta-quantile=0.2 both set the threshold of Eq. 5; give only one'),
    (dict(prior=['gmm'], resample=False, resample_alpha=3.0),
                                                          r'--resample-alpha has no effect with --resample=0'),
    (dict(prior=['gmm'], resample=False, prior_weight=0.0),
                                                          r'does nothing; enable one of them or use --prior=none'),
    (dict(prior=['gmm'], prior_pca='1.5'),                r'--prior-pca: pca as a variance fraction must be in \(0, 1\], got 1.5'),
    (dict(prior=['gmm'], prior_feature='vgg'),            r'--prior-feature: unknown extractor "vgg"; valid names: identity, inception, resnet101, tiny'),
    (dict(prior=['gmm'], prior_components=101),           r'--prior-components=101 is more than the 100 training images'),
    (dict(prior=['gmm'], prior_file='/nonexistent/p.pt'), r"--prior-file: Prior file '/nonexistent/p.pt' does not exist; .*--out=\S*; "
                                                          r"or drop --prior-file to build a prior for this run$"),
    (dict(prior=['gmm'], prior_file='p.pt', prior_components=4),
                                                          r'--prior-components only applies when the prior is built'),
])
def test_option_validation_messages(opts, message):
    with pytest.raises(click.ClickException, match=message):
        _configure(**opts)


def test_cli_parses_and_rejects_unknown_priors():
    runner = CliRunner()
    result = runner.invoke(_command, ['--prior=gmm', '--prior-weight=0.3', '--resample-kimg=2'])
    assert result.exit_code == 0, result.output
    assert "'class_name': 'priors.loss.PriorLoss'" in result.output and "'weight': 0.3" in result.output
    result = runner.invoke(_command, ['--prior=gmm,nope'])
    assert result.exit_code == 2 and f'unknown prior "nope"; registered priors: {", ".join(registry.list_priors())}\n' in result.output
    result = runner.invoke(_command, ['--prior-weight=-1'])
    assert result.exit_code == 2 and '-1.0 is not in the range x>=0' in result.output
    result = runner.invoke(_command, ['--help'])
    for text in ('Eq. 3', 'Eq. 5', 'Eq. 8', '[default: none]', 'demo: tiny'):
        assert text in ' '.join(result.output.split())  # wrapped lines joined

#----------------------------------------------------------------------------
