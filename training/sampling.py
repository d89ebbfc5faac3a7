"""Sample-time latent transforms: what a prior does to the latents when images are generated outside training.

A transform is a class named by a `dict(class_name=..., **kwargs)` spec, built as `cls(**kwargs)` and called
as `transform(z, c, *, G, D) -> (z, c)` under `torch.no_grad()` (G: the generator images are made with,
usually G_ema; D: the snapshot's discriminator). A run's specs (from the loss plugins' `sample_transform_kwargs()`)
are stored in every network snapshot under 'sample_transform_kwargs', so that `generate.py`,
`style_mixing.py`, the metrics and the training image grids rebuild them from the snapshot alone; each of
them can switch them off (`--prior-sampling=false`). Several transforms chain in their listed order.
Snapshots without the key (all official ones) sample plain N(0, I) latents, as before.
"""

import torch

import dnnlib

SNAPSHOT_KEY = 'sample_transform_kwargs'

#----------------------------------------------------------------------------

class SampleTransform:
    """The chained transforms of one snapshot, bound to its networks. Callable as `t(z, c) -> (z, c)`; an empty
    chain returns its inputs unchanged (and draws no random numbers)."""

    def __init__(self, specs=(), G=None, D=None):
        self.specs = [dict(spec) for spec in (specs or [])]
        for spec in self.specs:
            if 'class_name' not in spec:
                raise ValueError(f'sample transform spec {spec!r} has no class_name')
        self.transforms = [dnnlib.util.construct_class_by_name(**spec) for spec in self.specs]
        self.G, self.D = G, D
        if self.transforms and D is None:
            names = ', '.join(spec['class_name'] for spec in self.specs)
            raise ValueError(f'the sample-time transform ({names}) needs the snapshot\'s discriminator D, which is missing; '
                             f'pass a full network snapshot, or switch the transform off')

    def __len__(self):
        return len(self.transforms)

    def __call__(self, z, c):
        if not self.transforms:
            return z, c
        with torch.no_grad():
            for transform in self.transforms:
                z, c = transform(z, c, G=self.G, D=self.D)
        return z, c

#----------------------------------------------------------------------------
# The transform of a snapshot dict (as loaded by legacy.load_network_pkl);
# enabled=False or a snapshot without specs gives the identity. G defaults to
# the snapshot's G_ema; D to its D, moved to G's device.

def load_sample_transform(snapshot, enabled=True, G=None, D=None):
    specs = (snapshot or {}).get(SNAPSHOT_KEY) or []
    if not enabled or not specs:
        return SampleTransform()
    G = G if G is not None else snapshot.get('G_ema')
    D = D if D is not None else snapshot.get('D')
    if D is not None and G is not None:
        device = next(iter(G.parameters()), torch.zeros([])).device
        D = D.to(device).eval().requires_grad_(False)
    return SampleTransform(specs, G=G, D=D)

# Images from latents through a transform: G(transform(z, c)).
def sample(G, z, c, transform=None, **G_kwargs):
    if transform is not None:
        z, c = transform(z, c)
    return G(z, c, **G_kwargs)

#----------------------------------------------------------------------------
