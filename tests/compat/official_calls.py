"""The calls behind the fixture reference arrays (fixtures README), shared by the compat tests."""

import numpy as np
import torch

TOL = 1e-4  # max abs difference allowed for every array (fixtures README)

#----------------------------------------------------------------------------

def max_diff(tensor, array):
    """Max abs difference between a tensor and a reference array of the same shape, in float64."""
    assert tuple(tensor.shape) == array.shape
    return float(np.abs(tensor.detach().cpu().numpy().astype(np.float64) - array).max())

#----------------------------------------------------------------------------
# Make the official calls (all, or those named in `keys`) on the whole stored batch and compare each
# result with its stored array. Returns {array name: tensor}.

def check_official_outputs(ref, G_ema, G, D, keys=None, tol=TOL):
    z, c = torch.from_numpy(ref['z']), torch.from_numpy(ref['c'])
    calls = dict(
        ws_psi1=lambda: G_ema.mapping(z, c, truncation_psi=1),
        ws_psi07=lambda: G_ema.mapping(z, c, truncation_psi=0.7),
        img_const_psi1=lambda: G_ema(z, c, truncation_psi=1, noise_mode='const'),
        img_const_psi07=lambda: G_ema(z, c, truncation_psi=0.7, noise_mode='const'),
        img_none_psi1=lambda: G_ema(z, c, truncation_psi=1, noise_mode='none'),
        synth_const_from_ws07=lambda: G_ema.synthesis(torch.from_numpy(ref['ws_psi07']), noise_mode='const'),
        G_img_const_psi1=lambda: G(z, c, truncation_psi=1, noise_mode='const'),
        D_logits=lambda: D(torch.from_numpy(ref['img_const_psi1']), c),
        D_logits_psi07=lambda: D(torch.from_numpy(ref['img_const_psi07']), c),
    )
    with torch.no_grad():
        results = {key: call() for key, call in calls.items() if keys is None or key in keys}
    for key, value in results.items():
        assert max_diff(value, ref[key]) <= tol, key
    return results
