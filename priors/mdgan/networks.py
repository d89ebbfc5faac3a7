"""MDGAN's extra networks (Che et al. 2017, §3.1, §3.3, Appendix B): the encoder E: X -> Z and the diffusion-step discriminator D2, both built from the run's D, and the D-feature tap for the D-feature distance.

E is "shaped like D" (spec §3.5): the same class and constructor arguments as
the run's discriminator, unconditional, with a z_dim-wide linear output layer
(`out_dim`, the network extension protocol), without minibatch standard
deviation (E(x) must not depend on the other images of the batch) and without
a prior's feature extractor inside D. For StyleGAN2 that is D's blocks and
epilogue; for the toy lab's MLP D it is the same MLP. The paper's E is the
"inverse" of its DCGAN G (Appendix B); D's shape is our choice, since the
StyleGAN2 synthesis network has no natural inverse and D's blocks already map
images to a vector.

D2 is a second discriminator of the same class and arguments as D, with
fresh weights.
"""

import contextlib
import inspect

import torch

from torch_utils import persistence  # noqa: F401  (E and D2 are instances of D's persistent class)

#----------------------------------------------------------------------------
# The module inside a DistributedDataParallel wrapper, or the module itself.

def unwrap(module):
    return getattr(module, 'module', module)

#----------------------------------------------------------------------------
# A fresh module of D's class, built from D's recorded constructor arguments
# with `overrides` (top-level kwargs; dicts given as values replace, keys
# given as 'a.b' set a leaf inside a dict kwarg). The weights are drawn under
# torch.manual_seed(seed) inside a forked RNG, so the caller's global streams
# are untouched. Placed on D's device, train mode, requires_grad False.

def build_like(D, seed, **overrides):
    D = unwrap(D)
    if not (hasattr(D, 'init_args') and hasattr(D, 'init_kwargs')):
        raise TypeError(f'mdgan: cannot rebuild the discriminator {type(D).__name__}: it is not a '
                        f'@persistence.persistent_class, so its constructor arguments are unknown')
    args, kwargs = D.init_args, dict(D.init_kwargs)
    for key, value in overrides.items():
        head, _, leaf = key.partition('.')
        if leaf:
            kwargs[head] = dict(kwargs.get(head) or {}, **{leaf: value})
        else:
            kwargs[key] = value
    device = next((t.device for t in D.parameters()), torch.device('cpu'))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = type(D)(*args, **kwargs)
    return module.train().requires_grad_(False).to(device)

# True when the constructor of D's class takes a keyword argument `name`.
def _takes_kwarg(D, name):
    return name in inspect.signature(type(unwrap(D)).__init__).parameters or name in unwrap(D).init_kwargs

#----------------------------------------------------------------------------
# The encoder E: D's architecture with a z_dim-wide output. Returns a module
# E(img, c) -> [N, z_dim]; c is ignored (E is unconditional, the label of a
# real image goes to G unchanged).

def build_encoder(D, z_dim, seed):
    overrides = dict(c_dim=0, out_dim=int(z_dim))
    if _takes_kwarg(D, 'feature_kwargs'):
        overrides['feature_kwargs'] = None
    if _takes_kwarg(D, 'epilogue_kwargs'):
        overrides['epilogue_kwargs.mbstd_num_channels'] = 0
    return build_like(D, seed, **overrides)

# The diffusion-step discriminator D2: D's class and arguments, fresh weights.
def build_twin(D, seed):
    return build_like(D, seed)

#----------------------------------------------------------------------------
# E's output range (--mdgan-e-out). 'linear': E's output is G's input z as it is (z ~ N(0, I) everywhere in
# the code base; a toy G with --z-dist=uniform01 or uniform turns it into its latent through the normal CDF
# Phi). 'support': E's raw output e is first squashed into the support of G's latent distribution, as the
# paper's encoder of U[0, 1] noise would output (spec §3.6.14: sigmoid into [0, 1]), and handed to G as the
# N(0, I) input that maps onto it: sigmoid(e) for uniform01, tanh(e) for uniform (then Phi^-1), e itself for
# normal. G's latent is then sigmoid(e) or tanh(e), whose gradient decays like exp(-|e|), not like Phi's
# exp(-e^2 / 2): measured on the App. C ring, a linear E drifts to |z| > 3 within 1,000 G steps and E's gradient
# through Phi falls 10^4-fold (docs/mdgan.md).
E_OUTPUTS = ('linear', 'support')
_SUPPORT_EPS = 1e-6  # keeps Phi^-1 finite in float32 (|z| <= 4.75)

def encoder_latent(e, z_dist, e_out):
    """G's N(0, I) input z for E's raw output e [N, z_dim] (see E_OUTPUTS)."""
    if e_out == 'linear' or z_dist == 'normal':
        return e
    if e_out != 'support':
        raise ValueError(f'mdgan: e_out must be one of {", ".join(E_OUTPUTS)}, got {e_out!r}')
    if z_dist == 'uniform01':
        u = torch.sigmoid(e)
    elif z_dist == 'uniform':
        u = (torch.tanh(e) + 1) * 0.5
    else:
        raise ValueError(f'mdgan: --mdgan-e-out=support knows the latent distributions normal, uniform and uniform01, got {z_dist!r}')
    return torch.special.ndtri(u.clamp(_SUPPORT_EPS, 1 - _SUPPORT_EPS))

#----------------------------------------------------------------------------
# The D-feature distance of §3.1 (Larsen et al.'s "learned similarity"): the
# input of D's output layer, i.e. the last torch.nn.Linear or fully connected
# layer (a module with a 2-D `weight` whose name ends in 'out', or failing
# that, the last such module). For StyleGAN2's D that is the epilogue's fc
# output [N, C] (before the label projection); for an MLP D, its last hidden
# layer.

def output_layer(D):
    D = unwrap(D)
    dense = [(name, m) for name, m in D.named_modules() if isinstance(getattr(m, 'weight', None), torch.Tensor)
             and m.weight.ndim == 2 and not list(m.children())]
    if not dense:
        raise ValueError(f'mdgan: --mdgan-distance=dfeat needs a dense output layer in D, but {type(D).__name__} has none; '
                         f'use --mdgan-distance=pixel or a feature extractor')
    named_out = [pair for pair in dense if pair[0].split('.')[-1] == 'out']
    return (named_out or dense)[-1][1]

# Context manager: D's features of every forward call inside it, appended to the yielded list.
@contextlib.contextmanager
def tap_features(layer):
    captured = []
    handle = layer.register_forward_pre_hook(lambda _module, inputs: captured.append(inputs[0]))
    try:
        yield captured
    finally:
        handle.remove()

#----------------------------------------------------------------------------
