"""The StyleGAN2-ADA training loop (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"), with exact resume."""

import contextlib
import copy
import json
import os
import pickle
import random
import time

import numpy as np
import PIL.Image
import psutil
import torch

import dnnlib
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.image_grid import save_image_grid  # noqa: F401  (official name: training_loop.save_image_grid)
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from training import resume as resume_module
from training import sampling
from training import toy_lab
from training.loss import PhaseBatch
from training.loss import profile_range

RESUME_STATE_VERSION = resume_module.RESUME_STATE_VERSION  # Layout version of the 'resume_state' snapshot entry.

#----------------------------------------------------------------------------
# EMA decay per step for G_ema: the weight of the old average after one batch,
# so that it halves every ema_kimg thousand images. With ema_rampup, the
# half-life is capped at cur_nimg * ema_rampup early in training.

def ema_beta(batch_size, ema_kimg, ema_rampup, cur_nimg):
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))

#----------------------------------------------------------------------------
# Pick the images of the snapshot grid. Returns ((gw, gh), images uint8
# [gw*gh, C, H, W], labels [gw*gh, label_dim]). Without labels the grid is a
# seeded random selection; with labels every row shows one label value.

def setup_snapshot_image_grid(training_set, random_seed=0):
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(7680 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(4320 // training_set.image_shape[1], 4, 32))
    num = len(training_set)

    if not training_set.has_labels:
        order = np.arange(num)
        rnd.shuffle(order)
        picks = [order[i % num] for i in range(gw * gh)]
    else:
        # Group by label (in a canonical order), shuffle each group, deal gw items per row.
        groups = dict()
        for idx in range(num):
            key = tuple(training_set.get_details(idx).raw_label.flat[::-1])
            groups.setdefault(key, []).append(idx)
        keys = sorted(groups)
        for key in keys:
            rnd.shuffle(groups[key])
        picks = []
        for y in range(gh):
            members = groups[keys[y % len(keys)]]
            picks += [members[x % len(members)] for x in range(gw)]
            groups[keys[y % len(keys)]] = members[gw:] + members[:gw]

    images, labels = zip(*[training_set[i] for i in picks])
    return (gw, gh), np.stack(images), np.stack(labels)

#----------------------------------------------------------------------------
# Grid of G_ema images (constant noise) for the fixed grid latents and labels.

def _save_fakes(G_ema, grid, fname, transform=None):
    with torch.no_grad():
        fakes = [sampling.sample(G_ema, z, c, transform=transform, noise_mode='const').cpu() for z, c in zip(grid.z, grid.c)]
    save_image_grid(torch.cat(fakes), fname, drange=[-1, 1], grid_size=grid.size)

# Write reals.png and fakes_init.png; returns the grid (size, latents, labels) for later fakes.
# Grid images are generated batch_gpu at a time, or more for small images
# (up to 2**16 pixels per call): many tiny calls are slow, and images of a
# no-grad, constant-noise G do not depend on their batch.
def _export_initial_grids(run_dir, training_set, G_ema, batch_gpu, device, transform=None):
    print('Exporting sample images...')
    size, reals, labels = setup_snapshot_image_grid(training_set=training_set)
    save_image_grid(reals, os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=size)
    z = torch.randn([labels.shape[0], G_ema.z_dim], device=device)
    chunk = max(batch_gpu, 2**16 // (training_set.resolution ** 2))
    grid = dnnlib.EasyDict(size=size, z=z.split(chunk), c=torch.from_numpy(labels).to(device).split(chunk))
    _save_fakes(G_ema, grid, os.path.join(run_dir, 'fakes_init.png'), transform)
    return grid

#----------------------------------------------------------------------------
# Random number generator states of this process (python, numpy, torch CPU,
# and the CUDA device in use), to save and restore for exact resume.

def _get_rng_state(device):
    state = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state

def _set_rng_state(state, device):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)

# Run a block without changing what the training RNGs draw afterwards.
@contextlib.contextmanager
def _preserve_rng(device):
    state = _get_rng_state(device)
    try:
        yield
    finally:
        _set_rng_state(state, device)

#----------------------------------------------------------------------------
# Times one phase: CUDA events on a GPU, the wall clock elsewhere.

class _PhaseTimer:
    def __init__(self, device):
        self.device = device
        self.elapsed_ms = None  # duration of the latest run; None = has not run since read
        self._start = None

    def start(self):
        if self.device.type == 'cuda':
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record(torch.cuda.current_stream(self.device))
        else:
            self._start = time.perf_counter()

    def stop(self):
        if self.device.type == 'cuda':
            end = torch.cuda.Event(enable_timing=True)
            end.record(torch.cuda.current_stream(self.device))
            end.synchronize()
            self.elapsed_ms = self._start.elapsed_time(end)
        else:
            self.elapsed_ms = (time.perf_counter() - self._start) * 1000

#----------------------------------------------------------------------------
# Device of this process; seeds (the one place that seeds the global RNGs);
# cuDNN/TF32 flags; the custom gradient ops the loss needs.

def _init_process(device, random_seed, num_gpus, rank, cudnn_benchmark, allow_tf32):
    if device is None:
        device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
    seed = misc.rank_seed(random_seed, rank, num_gpus)
    torch.manual_seed(seed)
    np.random.seed(seed)
    for flags in (torch.backends.cuda.matmul, torch.backends.cudnn):
        flags.allow_tf32 = allow_tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    grid_sample_gradfix.enabled = conv2d_gradfix.enabled = True
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.set_device(device)  # object collectives on NCCL use the current device
    return device

#----------------------------------------------------------------------------
# The same object on every rank: each rank's `obj` in a list indexed by rank.

def _gather_objects(obj, num_gpus):
    if num_gpus == 1:
        return [obj]
    gathered = [None] * num_gpus
    torch.distributed.all_gather_object(gathered, obj)
    return gathered

# Rank 0's object on every rank.
def _broadcast_object(obj, num_gpus):
    if num_gpus == 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]

#----------------------------------------------------------------------------
# The training_loop() arguments that describe the run (JSON-safe), recorded in
# every snapshot so that a resume can compare its options.

def _run_options(args):
    skip = ('abort_fn', 'progress_fn', 'metric_fn', 'device', 'rank', 'run_dir')
    return json.loads(json.dumps({k: v for k, v in args.items() if k not in skip}, default=str))

#----------------------------------------------------------------------------
# Dataset, sampler and an endless iterator over batches of this rank.

def _setup_data(training_set_kwargs, data_loader_kwargs, sampler_kwargs, random_seed, batch_size, num_gpus, rank, device, sampler_state):
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    sampler_kwargs = dict(sampler_kwargs if sampler_kwargs is not None else dict(class_name='torch_utils.misc.InfiniteSampler'))
    sampler = dnnlib.util.construct_class_by_name(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed, **sampler_kwargs)
    if sampler_state is not None:
        sampler.load_state_dict(sampler_state)
    if toy_lab.is_toy_dataset(training_set) and data_loader_kwargs.get('num_workers', 0) == 0:
        data_iter = toy_lab.ToyBatches(training_set, sampler, batch_size // num_gpus)  # one gather per batch, no DataLoader
        if rank == 0:
            print()
            print('Num images: ', len(training_set))
            print('Image shape:', training_set.image_shape)
            print('Label shape:', training_set.label_shape)
            print()
        return training_set, sampler, data_iter
    loader_kwargs = dict(data_loader_kwargs)
    if device.type != 'cuda':
        loader_kwargs['pin_memory'] = False  # pinning needs an accelerator
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)  # only valid with worker processes
    loader = torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_size // num_gpus, **loader_kwargs)
    if rank == 0:
        print()
        print('Num images: ', len(training_set))
        print('Image shape:', training_set.image_shape)
        print('Label shape:', training_set.label_shape)
        print()
    return training_set, sampler, iter(loader)

#----------------------------------------------------------------------------
# G, D and G_ema for the dataset's shape, training mode, no gradients.

def _build_networks(G_kwargs, D_kwargs, training_set, device):
    common = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    return G, D, G_ema

# Print the layer tables of G and D (in eval mode, so that w_avg is not touched).
def _print_summaries(G, D, batch_gpu, device):
    G.eval(), D.eval()
    with torch.no_grad():
        z = torch.zeros([batch_gpu, G.z_dim], device=device)
        c = torch.zeros([batch_gpu, G.c_dim], device=device)
        img = misc.print_module_summary(G, [z, c])
        misc.print_module_summary(D, [img, c])
    G.train(), D.train()

#----------------------------------------------------------------------------
# Augmentation pipe and ADA controller (None when disabled).

def _build_augment(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg, batch_size, device):
    if augment_kwargs is None or (augment_p == 0 and ada_target is None):
        return None, None
    augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
    augment_pipe.p.copy_(torch.as_tensor(augment_p))
    ada = None
    if ada_target is not None:
        from training.augment import AdaptiveP
        ada = AdaptiveP(target=ada_target, batch_size=batch_size, ada_kimg=ada_kimg, interval=ada_interval)
    return augment_pipe, ada

#----------------------------------------------------------------------------
# Training phases. With a regularisation interval I, the main and the lazy
# regularisation phase share an optimizer whose lr and betas are rescaled by
# I / (I + 1); with None, one phase does both every step.

def _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device):
    phases = []
    for prefix, module, opt_kwargs, reg_interval in [('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)]:
        opt_kwargs = dnnlib.EasyDict(opt_kwargs)
        if reg_interval is None:
            schedule = [('both', 1)]
        else:
            ratio = reg_interval / (reg_interval + 1)
            opt_kwargs.lr = opt_kwargs.lr * ratio
            if 'betas' in opt_kwargs:  # Adam; RMSprop and SGD have none
                opt_kwargs.betas = [beta ** ratio for beta in opt_kwargs.betas]
            schedule = [('main', 1), ('reg', reg_interval)]
        opt = dnnlib.util.construct_class_by_name(module.parameters(), **opt_kwargs)
        for suffix, interval in schedule:
            phases.append(dnnlib.EasyDict(name=prefix + suffix, opt_key=prefix, module=module, opt=opt, params=list(module.parameters()),
                                          interval=interval, timer=_PhaseTimer(device), accumulate=None))
    return phases

# The loss's extra phases (training.loss.ExtraPhase) after the built-in ones: a
# module of its own gets an optimizer keyed by the phase name; 'G' / 'D' reuse
# that network's optimizer. Returns (phases, {name: module} of the own modules).
def _setup_extra_phases(extra, phases, G, D, device):
    own, by_net = dict(), {'G': (G, phases[0].opt), 'D': (D, phases[-1].opt)}
    result = []
    for spec in extra:
        if not isinstance(spec.interval, int) or spec.interval < 1:
            raise ValueError(f'Extra phase "{spec.name}": interval must be an integer >= 1, got {spec.interval!r}')
        if isinstance(spec.module, str):
            if spec.module not in by_net:
                raise ValueError(f'Extra phase "{spec.name}": module must be an nn.Module, "G" or "D", got {spec.module!r}')
            module, opt = by_net[spec.module]
            opt_key = spec.module
        else:
            module = spec.module.to(device).requires_grad_(False)
            if spec.opt_kwargs is None:
                raise ValueError(f'Extra phase "{spec.name}" trains its own module and needs opt_kwargs (class_name, lr, ...)')
            opt = dnnlib.util.construct_class_by_name(module.parameters(), **spec.opt_kwargs)
            opt_key = spec.name
            own[spec.name] = module
        result.append(dnnlib.EasyDict(name=spec.name, opt_key=opt_key, module=module, opt=opt, params=list(module.parameters()), interval=spec.interval,
                                      timer=_PhaseTimer(device), accumulate=spec.accumulate))
    return result, own

#----------------------------------------------------------------------------
# Copy rank 0's parameters and buffers to every rank.

def _broadcast_modules(modules, num_gpus):
    if num_gpus == 1:
        return
    for module in modules:
        if module is not None:
            for tensor in misc.params_and_buffers(module):
                torch.distributed.broadcast(tensor.data, src=0)

#----------------------------------------------------------------------------
# A run whose weights became NaN or infinite. Raised on every rank at the end of
# the tick, before that tick's snapshot is written.

class TrainingDivergedError(RuntimeError):
    pass

# (module name, tensor name) of the first non-finite parameter or buffer of G,
# D, G_ema or the augment pipe on any rank, or None. A collective call.
def _find_non_finite(modules, num_gpus, device):
    found = None
    for module_name, module in modules.items():
        if module is None:
            continue
        for name, tensor in misc.named_params_and_buffers(module):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                found = (module_name, name)
                break
        if found is not None:
            break
    if num_gpus > 1:
        flag = torch.tensor([0.0 if found is None else 1.0], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if found is None and flag.item() > 0:
            found = ('another rank', 'a parameter')
    return found

def _divergence_message(found, cur_nimg, last_snapshot_pkl):
    module_name, name = found
    last = (f'the last good snapshot is "{last_snapshot_pkl}" (resume from it with --resume=PATH)'
            if last_snapshot_pkl is not None else 'no snapshot was written before it')
    return (f'training diverged at kimg {cur_nimg / 1000:g}: {module_name} tensor "{name}" holds NaN or infinite values, '
            f'so no snapshot was written for this tick; {last}. Lower the learning rates (--glr, --dlr) or raise '
            f'--gamma before resuming')

#----------------------------------------------------------------------------
# Average gradients over ranks (one all-reduce of all of them), then replace
# NaN/inf by finite values as the official loop does.

def _reduce_gradients(module, num_gpus, params=None):
    params = [p for p in (module.parameters() if params is None else params) if p.numel() > 0]
    if num_gpus > 1:
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])
        torch.distributed.all_reduce(flat)
        flat /= num_gpus
        for p, grad in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(grad.reshape(p.shape))
    grads = [p.grad for p in params if p.grad is not None]
    if grads and all(g.is_cpu and g.dtype is torch.float32 for g in grads):
        # One fused finiteness check (it multiplies by 1.0: exact) instead of one nan_to_num per tensor.
        found = torch.zeros([])
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones([]))
        if found.item() == 0:
            return
    for g in grads:
        misc.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5, out=g)

#----------------------------------------------------------------------------
# One phase: zero grads, accumulate over the rounds of this rank's batch, sync, step.

def _run_phase(phase, loss, real_img, real_c, gen_z, gen_c, num_gpus):
    phase.timer.start()
    phase.opt.zero_grad(set_to_none=True)
    for p in phase.params:  # = phase.module.requires_grad_(True), without walking the module tree every step
        p.requires_grad_(True)
    rounds = list(zip(real_img, real_c, gen_z, gen_c))
    for round_idx, (r_img, r_c, g_z, g_c) in enumerate(rounds):
        if phase.accumulate is not None:
            phase.accumulate(PhaseBatch(r_img, r_c, g_z, g_c), gain=phase.interval)
        else:
            loss.accumulate_gradients(phase=phase.name, real_img=r_img, real_c=r_c, gen_z=g_z, gen_c=g_c,
                                      sync=(round_idx == len(rounds) - 1), gain=phase.interval)
    for p in phase.params:
        p.requires_grad_(False)
    with profile_range(phase.name + '_opt'):
        _reduce_gradients(phase.module, num_gpus, phase.params)
        phase.opt.step()
    phase.timer.stop()

#----------------------------------------------------------------------------
# The steps of one iteration as groups of phases; each group shares one real
# batch and one latent draw (one per phase). With one G and one D step: a single
# group of all phases, G then D (d-first: D then G), then the loss's extra phases,
# i.e. one real batch per iteration as in the official loop. With more steps: one
# group per step, each with its own real batch and latents, in step order; the
# extra phases join the last group.

def _step_groups(phases, num_builtin, G_steps, D_steps, step_order):
    if step_order not in ('g-first', 'd-first'):
        raise ValueError(f'step_order must be "g-first" or "d-first", got {step_order!r}')
    for name, value in dict(G_steps=G_steps, D_steps=D_steps).items():
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
    builtin, extra = phases[:num_builtin], phases[num_builtin:]
    by_net = dict(G=[p for p in builtin if p.opt_key == 'G'], D=[p for p in builtin if p.opt_key == 'D'])
    order = ('G', 'D') if step_order == 'g-first' else ('D', 'G')
    if G_steps == 1 and D_steps == 1:
        return [by_net[order[0]] + by_net[order[1]] + extra]
    steps = dict(G=G_steps, D=D_steps)
    groups = [list(by_net[net]) for net in order for _ in range(steps[net])]
    groups[-1] = groups[-1] + extra
    return groups

# Learning-rate factor at cur_nimg (a pure function of it, so an exact resume continues the schedule):
#   linear  1 - cur_nimg / total_nimg (to 0 at the end of the run)
#   step    rate ** floor(epochs seen / epochs), one epoch = dataset_size real images (P²GAN §4.1: 0.9 every 50 epochs)
def lr_decay_factor(lr_decay_kwargs, cur_nimg, total_nimg, dataset_size):
    if not lr_decay_kwargs:
        return 1.0
    kind = lr_decay_kwargs.get('kind')
    if kind == 'linear':
        return max(0.0, 1.0 - cur_nimg / max(total_nimg, 1))
    if kind == 'step':
        period = float(lr_decay_kwargs['epochs']) * dataset_size
        return float(lr_decay_kwargs['rate']) ** int(cur_nimg // period)
    raise ValueError(f'lr_decay_kwargs.kind must be "linear" or "step", got {kind!r}')

# Set the lr of G's and D's optimizers (shared with their regularisation and extra phases) to base x factor.
def _apply_lr_factor(base_lrs, factor):
    for opt, lrs in base_lrs:
        for group, lr in zip(opt.param_groups, lrs):
            group['lr'] = lr * factor

# WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): every D parameter into [-c, c].
def _clip_parameters(module, c):
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)

#----------------------------------------------------------------------------
# This rank's reals for one iteration (split into batch_gpu rounds) and the
# latents/labels of every phase (a full batch_size each, split likewise).

def _fetch_batch(data_iter, training_set, num_phases, batch_size, batch_gpu, z_dim, device):
    rounds = (lambda x: (x,)) if batch_gpu >= batch_size else (lambda x: x.split(batch_gpu))  # one round: no split views
    with profile_range('data_fetch'):
        images, labels = next(data_iter)
        images = images.to(device)
        real_img = rounds(images if images.is_floating_point() else misc.uint8_to_images(images))  # float items: toy points
        real_c = rounds(labels.to(device))
        all_gen_z = torch.randn([num_phases * batch_size, z_dim], device=device)
        gen_z = [rounds(chunk) for chunk in (all_gen_z.split(batch_size) if num_phases > 1 else (all_gen_z,))]
        if training_set.label_dim == 0:  # unconditional: no label picks (they drew from numpy's global RNG, which nothing else reads)
            all_gen_c = torch.zeros([num_phases * batch_size, 0], device=device)
        else:
            picks = [training_set.get_label(np.random.randint(len(training_set))) for _ in range(num_phases * batch_size)]
            all_gen_c = torch.from_numpy(np.stack(picks))
            all_gen_c = (all_gen_c.pin_memory() if device.type == 'cuda' else all_gen_c).to(device)
        gen_c = [rounds(chunk) for chunk in (all_gen_c.split(batch_size) if num_phases > 1 else (all_gen_c,))]
    return real_img, real_c, gen_z, gen_c

#----------------------------------------------------------------------------
# G_ema <- lerp(G, G_ema, beta) for parameters; buffers are copied from G.

def _update_ema(G, G_ema, beta, tensors=None):
    with torch.no_grad():
        if beta == 0:  # no EMA (ema_kimg = 0): G_ema = G, one bulk copy (lerp with weight 0 is the same copy)
            ema, net = tensors if tensors is not None else (misc.params_and_buffers(G_ema), misc.params_and_buffers(G))
            torch._foreach_copy_(ema, net)
            return
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

#----------------------------------------------------------------------------
# Everything an exact resume needs besides the networks: counters, optimizer
# and ADA state, and per-rank RNG, loss and sampler state. A collective call.

def _collect_resume_state(state, phases, ada, loss, sampler, device, num_gpus, run_options):
    sampler_state = sampler.state_dict()
    num_unused = int(sampler_state['num_yielded']) - state.consumed
    if num_unused != 0:
        sampler_state = sampler.state_dict(num_unused=num_unused)  # rewind what the DataLoader prefetched
    mine = dict(rng=_get_rng_state(device), loss=loss.rank_state_dict(), sampler=sampler_state)
    ranks = _gather_objects(mine, num_gpus)
    if ada is not None:
        ada.hold_signs()
    optimizers = {phase.opt_key: phase.opt.state_dict() for phase in phases}
    return dict(version=RESUME_STATE_VERSION, cur_nimg=state.cur_nimg, cur_tick=state.cur_tick + 1,
                batch_idx=state.batch_idx, total_sec=time.time() - state.start_time, num_gpus=num_gpus,
                optimizers=optimizers, ada=(None if ada is None else ada.state_dict()),
                loss=loss.state_dict(), ranks=ranks, training_options=run_options)

# Put the saved state back. Called last in setup, so that setup's own random draws do not matter.
def _restore_resume_state(resume, state, phases, ada, loss, device, num_gpus, rank):
    state.cur_nimg = state.tick_start_nimg = resume.get('cur_nimg')
    state.cur_tick = resume.get('cur_tick')
    state.batch_idx = resume.get('batch_idx')
    state.start_time -= resume.get('total_sec')
    saved_opts = resume.get('optimizers')
    for phase in phases:
        if phase.opt_key not in saved_opts:
            raise ValueError(f'{resume.path}: the snapshot has no optimizer state for "{phase.opt_key}" (it has {sorted(saved_opts)}); '
                             f'it was trained with other phases; resume with resume_exact=False to load weights only')
        # Options may have changed on purpose (e.g. the learning rate): keep the configured hyperparameters.
        configured = [{k: v for k, v in group.items() if k != 'params'} for group in phase.opt.param_groups]
        phase.opt.load_state_dict(saved_opts[phase.opt_key])
        for group, values in zip(phase.opt.param_groups, configured):
            group.update(values)
    if ada is not None and resume.get('ada') is not None:
        ada.load_state_dict(resume.get('ada'))
    loss.load_state_dict(resume.get('loss'))
    if not resume.same_ranks:
        if rank == 0:
            print(f'Note: the snapshot was written by {resume.get("num_gpus")} processes, this run has {num_gpus}: '
                  f'RNG, sampler and per-rank loss state start fresh, so the run will not continue exactly '
                  f'(the shared state, e.g. the plugins\' fitted models and pretraining, is kept).')
        return
    loss.load_rank_state_dict(resume.rank_state('loss'))
    _set_rng_state(resume.rank_state('rng'), device)

#----------------------------------------------------------------------------
# Write network-snapshot-<kimg>.pkl: the official keys (training_set_kwargs,
# G, D, G_ema, augment_pipe) followed by our 'resume_state'. Returns the path
# and the snapshot dict (on every rank; only rank 0 writes).

def _snapshot_copy(module, num_gpus):
    if num_gpus > 1:
        misc.check_ddp_consistency(module, ignore_regex=r'.*\.w_avg')
    return copy.deepcopy(module).eval().requires_grad_(False).cpu()

# Extras after the official keys, each only when used: the extra phases'
# modules and the sample-time transform specs (training.sampling).
def _save_network_snapshot(run_dir, cur_nimg, training_set_kwargs, modules, resume_state, num_gpus, rank,
                           extra_modules=None, sample_transform_kwargs=None):
    snapshot = dict(training_set_kwargs=dict(training_set_kwargs))
    for name, module in modules.items():
        snapshot[name] = None if module is None else _snapshot_copy(module, num_gpus)
    if extra_modules:
        snapshot['extra_modules'] = {name: _snapshot_copy(module, num_gpus) for name, module in extra_modules.items()}
    if sample_transform_kwargs:
        snapshot[sampling.SNAPSHOT_KEY] = [dict(spec) for spec in sample_transform_kwargs]
    snapshot['resume_state'] = resume_state
    path = os.path.join(run_dir, f'network-snapshot-{cur_nimg // 1000:06d}.pkl')
    if rank == 0:
        with dnnlib.util.atomic_write(path, 'wb') as f:
            pickle.dump(snapshot, f)
    return path, snapshot

#----------------------------------------------------------------------------
# Default metric_fn: compute a registered metric and (rank 0) append it to
# metric-<name>.jsonl. Returns {result name: value}.

def calc_and_report_metrics(metrics, G, dataset_kwargs, num_gpus, rank, device, run_dir, snapshot_pkl, snapshot=None):
    from metrics import metric_main
    results = dict()
    # One call, so that metrics needing the same generated images share one generator pass. The snapshot
    # dict lets metrics find state saved with the run (e.g. a plugin's fitted model for its metrics).
    for result in metric_main.calc_metrics(metrics, G=G, dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank,
                                           device=device, snapshot=snapshot):
        if rank == 0:
            metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
        results.update(result.results)
    return results

# Evaluate every metric on a snapshot's G_ema; returns {result name: value}.
def _evaluate_metrics(metrics, metric_fn, snapshot, snapshot_pkl, run_dir, dataset_kwargs, num_gpus, rank, device):
    if len(metrics) == 0:
        return dict()
    if rank == 0:
        print('Evaluating metrics...')
    return metric_fn(metrics=list(metrics), G=snapshot['G_ema'], dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank,
                     device=device, run_dir=run_dir, snapshot_pkl=snapshot_pkl, snapshot=snapshot)

#----------------------------------------------------------------------------
# Report the tick's progress, timing and memory statistics (rank 0's values)
# and print the status line.

def _report_tick(state, augment_pipe, device, rank):
    now = time.time()
    tick_nimg = state.cur_nimg - state.tick_start_nimg
    total_sec = now - state.start_time
    tick_sec = now - state.tick_start_time
    peak_gpu_gb = 0.0
    if device.type == 'cuda':
        peak_gpu_gb = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    fields = [
        ('tick',        'Progress/tick',            state.cur_tick,                              '<5d'),
        ('kimg',        'Progress/kimg',            state.cur_nimg / 1e3,                        '<8.1f'),
        ('time',        'Timing/total_sec',         total_sec,                                   None),
        ('sec/tick',    'Timing/sec_per_tick',      tick_sec,                                    '<7.1f'),
        ('sec/kimg',    'Timing/sec_per_kimg',      tick_sec / max(tick_nimg, 1) * 1e3,          '<7.2f'),
        ('maintenance', 'Timing/maintenance_sec',   state.maintenance_time,                      '<6.1f'),
        ('cpumem',      'Resources/cpu_mem_gb',     psutil.Process(os.getpid()).memory_info().rss / 2**30, '<6.2f'),
        ('gpumem',      'Resources/peak_gpu_mem_gb', peak_gpu_gb,                                '<6.2f'),
        ('augment',     'Progress/augment',         float(augment_pipe.p) if augment_pipe is not None else 0, '.3f'),
    ]
    words = []
    for label, stat, value, fmt in fields:
        training_stats.report0(stat, value)
        text = f'{dnnlib.util.format_time(value):<12s}' if fmt is None else format(value, fmt)
        words.append(f'{label} {text}')
    training_stats.report0('Timing/total_hours', total_sec / (60 * 60))
    training_stats.report0('Timing/total_days', total_sec / (24 * 60 * 60))
    if rank == 0:
        print(' '.join(words))

#----------------------------------------------------------------------------
# Logs of rank 0: stats.jsonl (truncated) and TensorBoard events when available.

def _open_logs(run_dir, rank):
    if rank != 0:
        return None, None
    stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'wt')
    stats_tfevents = None
    try:
        import torch.utils.tensorboard as tensorboard
        stats_tfevents = tensorboard.SummaryWriter(run_dir)
    except ImportError as err:
        print('Skipping tfevents export:', err)
    return stats_jsonl, stats_tfevents

# Append one stats.jsonl line (one write, so a kill never leaves half a line) and the TensorBoard scalars.
def _write_stats(stats_collector, stats_jsonl, stats_tfevents, metric_results, cur_nimg, start_time):
    stats_collector.update()
    stats = stats_collector.as_dict()
    timestamp = time.time()
    if stats_jsonl is not None:
        # Strict JSON: a diverged NaN/inf statistic is written as the string "NaN"/"Infinity"/"-Infinity".
        stats_jsonl.write(json.dumps(dnnlib.util.json_safe(dict(stats, timestamp=timestamp)), allow_nan=False) + '\n')
        stats_jsonl.flush()
    if stats_tfevents is not None:
        global_step, walltime = int(cur_nimg / 1e3), timestamp - start_time
        for name, value in stats.items():
            stats_tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
        for name, value in metric_results.items():
            stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
        stats_tfevents.flush()

#----------------------------------------------------------------------------
# Train G and D. Arguments are the official training_loop's, keyword-only,
# plus device, sampler_kwargs, sample_transform_kwargs, metric_fn and resume_exact.
# Returns the final networks, loss and counters (an EasyDict), for tests and notebooks.

def training_loop(*,
    # Run and processes.
    run_dir                 = '.',      # Folder for logs, images and snapshots.
    num_gpus                = 1,        # Processes taking part (GPUs, or CPU processes).
    rank                    = 0,        # This process, in [0, num_gpus - 1].
    device                  = None,     # torch.device or name; None = cuda:<rank> with CUDA, else cpu.
    random_seed             = 0,        # Seed of everything random (per rank via misc.rank_seed).
    # Data.
    training_set_kwargs     = {},       # Dataset class_name and arguments.
    data_loader_kwargs      = {},       # Extra torch.utils.data.DataLoader arguments.
    sampler_kwargs          = None,     # Sampler class_name and arguments; None = torch_utils.misc.InfiniteSampler.
    # Networks, optimizers, loss.
    G_kwargs                = {},       # Generator class_name and arguments.
    D_kwargs                = {},       # Discriminator class_name and arguments.
    G_opt_kwargs            = {},       # Generator optimizer class_name and arguments.
    D_opt_kwargs            = {},       # Discriminator optimizer class_name and arguments.
    loss_kwargs             = {},       # Loss class_name and arguments.
    sample_transform_kwargs = [],       # Sample-time latent transforms (training.sampling), stored in each snapshot.
    G_reg_interval          = 4,        # Lazy G regularisation every this many steps; None = in every step.
    D_reg_interval          = 16,       # Lazy D regularisation every this many steps; None = in every step.
    # Schedule.
    total_kimg              = 25000,    # Stop after this many thousand real images.
    batch_size              = 4,        # Images per step, all processes together.
    batch_gpu               = 4,        # Images one process handles at once (accumulation below that).
    ema_kimg                = 10,       # G_ema half-life in thousands of images.
    ema_rampup              = None,     # Cap the half-life at cur_nimg * ema_rampup; None = no cap.
    # Augmentation.
    augment_kwargs          = None,     # AugmentPipe class_name and arguments; None = no augmentation.
    augment_p               = 0,        # Starting augmentation probability.
    ada_target              = None,     # Adapt p towards this E[sign(D(real))]; None = keep p fixed.
    ada_interval            = 4,        # Adapt p every this many steps.
    ada_kimg                = 500,      # Thousands of images over which p can move by 1.
    # Reporting.
    kimg_per_tick           = 4,        # Tick length in thousands of images (fractions allowed).
    image_snapshot_ticks    = 50,       # Image grid every this many ticks; None = never.
    network_snapshot_ticks  = 50,       # Network pickle every this many ticks; None = never.
    metrics                 = [],       # Metrics evaluated on each network pickle.
    metric_fn               = None,     # Computes and reports a list of metrics (see calc_and_report_metrics); None = metrics.metric_main.
    # Resume.
    resume_pkl              = None,     # Pickle (path or URL) to start from; None = from scratch.
    resume_exact            = True,     # Continue from its resume_state when present; False = weights only.
    # Performance and callbacks.
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark.
    allow_tf32              = False,    # TF32 in matmuls and convolutions.
    abort_fn                = None,     # Returns True to stop early; None = never.
    progress_fn             = None,     # Called as progress_fn(cur_kimg, total_kimg) every tick.
    # The papers' schedule knobs (train.py --d-steps, --g-steps, --step-order, --steps, --clip, --lr-decay; docs/toy-lab.md).
    G_steps                 = 1,        # G steps per iteration, each with its own real batch and latents.
    D_steps                 = 1,        # D steps per iteration, each with its own real batch and latents.
    step_order              = 'g-first', # 'g-first': the G steps, then the D steps; 'd-first': the D steps first.
    total_steps             = None,     # Stop after this many G steps instead of total_kimg; None = total_kimg.
    D_clip                  = None,     # Clip every D parameter to [-D_clip, D_clip] after each D step (WGAN); None = never.
    lr_decay_kwargs         = None,     # dict(kind='linear') or dict(kind='step', rate, epochs); None = constant lr.
):
    # Initialise the process: device, seeds, numerics switches.
    run_options = _run_options(dict(locals()))
    start_time = time.time()
    device = _init_process(device, random_seed, num_gpus, rank, cudnn_benchmark, allow_tf32)
    if batch_size % (batch_gpu * num_gpus) != 0:
        raise ValueError(f'batch_size={batch_size} must be divisible by batch_gpu * num_gpus = {batch_gpu} * {num_gpus}')

    # Read the resume pickle once, then build data, networks, augmentation, loss and phases.
    resume = resume_module.ResumeSource(resume_pkl, resume_exact, num_gpus, rank, _broadcast_object)
    if resume.exact and resume.get('cur_nimg') >= total_kimg * 1000:
        raise ValueError(f'total_kimg={total_kimg}: the snapshot is already at kimg {resume.get("cur_nimg") / 1000:g}; raise total_kimg to train further')
    if rank == 0:
        print('Loading training set...')
    training_set, sampler, data_iter = _setup_data(training_set_kwargs, data_loader_kwargs, sampler_kwargs, random_seed, batch_size,
                                                   num_gpus, rank, device, resume.rank_state('sampler'))
    if rank == 0:
        print('Constructing networks...')
    G, D, G_ema = _build_networks(G_kwargs, D_kwargs, training_set, device)
    augment_pipe, ada = _build_augment(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg, batch_size, device)
    modules = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe)
    if rank == 0:
        _print_summaries(G, D, batch_gpu, device)
    _broadcast_modules(modules.values(), num_gpus)

    # The loss, with the run's context; then its extra phases. The resumed weights are copied after the
    # loss's setup, so that what a prior puts into the networks there (e.g. frozen features) is overridden
    # by an exact resume and kept by a weights-only one.
    loss = dnnlib.util.construct_class_by_name(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                                               augment_pipe=augment_pipe, **loss_kwargs)
    loss.setup(dnnlib.EasyDict(G=G, G_ema=G_ema, D=D, augment_pipe=augment_pipe, dataset_kwargs=dnnlib.EasyDict(training_set_kwargs),
                               random_seed=random_seed, rank=rank, num_gpus=num_gpus, run_dir=(run_dir if rank == 0 else None),
                               batch_size=batch_size, batch_gpu=batch_gpu, device=device))
    phases = _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device)
    num_builtin = len(phases)
    extra_phases, extra_modules = _setup_extra_phases(loss.extra_phases(), phases, G, D, device)
    phases += extra_phases
    resume.copy_weights(modules, extra_modules)
    resume.release()
    _broadcast_modules(list(modules.values()) + list(extra_modules.values()), num_gpus)

    # Export the real and initial fake image grids (through the sample-time transform, if any).
    transform = sampling.SampleTransform(sample_transform_kwargs, G=G_ema, D=D)
    grid = _export_initial_grids(run_dir, training_set, G_ema, batch_gpu, device, transform) if rank == 0 else None

    # Open the logs; set the counters; restore the resume state last.
    if rank == 0:
        print('Initializing logs...')
    stats_collector = training_stats.Collector(regex='.*')
    stats_jsonl, stats_tfevents = _open_logs(run_dir, rank)
    state = dnnlib.EasyDict(cur_nimg=0, cur_tick=0, batch_idx=0, tick_start_nimg=0, start_time=start_time,
                            tick_start_time=time.time(), maintenance_time=0.0, consumed=0,
                            last_snapshot_pkl=resume_pkl)  # the newest snapshot known to be good
    if resume.exact:
        _restore_resume_state(resume, state, phases, ada, loss, device, num_gpus, rank)
        state.consumed = int(resume.rank_state('sampler')['num_yielded']) if resume.same_ranks else 0
    if rank == 0:
        print(f'Training for {total_kimg} kimg...')
        print()

    # The steps of an iteration (G_steps, D_steps, step_order), the run length, the lr schedule.
    groups = _step_groups(phases, num_builtin, G_steps, D_steps, step_order)
    nimg_per_iter = batch_size * D_steps  # kimg counts the real images D is trained on
    total_nimg = total_kimg * 1000 if total_steps is None else -(-total_steps // G_steps) * nimg_per_iter
    ema_tensors = (misc.params_and_buffers(G_ema), misc.params_and_buffers(G))
    defer_stats = ada is None and hasattr(loss, 'flush_stats') and hasattr(loss, 'defer_stats')  # nothing reads them mid-tick
    if defer_stats:
        loss.defer_stats = True
    base_lrs = list({id(p.opt): (p.opt, [g['lr'] for g in p.opt.param_groups]) for p in phases if p.opt_key in ('G', 'D')}.values())

    while True:
        # Fetch data; run the phases that are due, one group (and real batch) after the other.
        feedback = loss.on_progress(state.cur_nimg)
        if feedback is not None and 'sampler_weights' in feedback:
            sampler.set_weights(feedback['sampler_weights'])  # e.g. a prior's resampling (PriorGAN Eq. 8)
        if lr_decay_kwargs:
            _apply_lr_factor(base_lrs, lr_decay_factor(lr_decay_kwargs, state.cur_nimg, total_nimg, len(training_set)))
        for group in groups:
            real_img, real_c, all_gen_z, all_gen_c = _fetch_batch(data_iter, training_set, len(group), batch_size, batch_gpu, G.z_dim, device)
            state.consumed += batch_size // num_gpus
            for phase, gen_z, gen_c in zip(group, all_gen_z, all_gen_c):
                if state.batch_idx % phase.interval == 0:
                    _run_phase(phase, loss, real_img, real_c, gen_z, gen_c, num_gpus)
                    if D_clip is not None and phase.opt_key == 'D':
                        _clip_parameters(D, D_clip)

        # Update G_ema and the counters; adapt the augmentation probability.
        with profile_range('Gema'):
            _update_ema(G, G_ema, ema_beta(batch_size, ema_kimg, ema_rampup, state.cur_nimg), ema_tensors)
        state.cur_nimg += nimg_per_iter
        state.batch_idx += 1
        if ada is not None and ada.is_due(state.batch_idx):
            ada.adjust(augment_pipe)

        # Continue unless the tick is over.
        done = state.cur_nimg >= total_kimg * 1000 if total_steps is None else state.batch_idx * G_steps >= total_steps
        if not done and state.cur_tick != 0 and state.cur_nimg < state.tick_start_nimg + kimg_per_tick * 1000:
            continue

        # Tick maintenance; it does not change the training RNG streams.
        tick_end_time = time.time()
        with _preserve_rng(device):
            if defer_stats:
                loss.flush_stats()
            _report_tick(state, augment_pipe, device, rank)
            if abort_fn is not None and abort_fn():
                done = True
                if rank == 0:
                    print()
                    print('Aborting...')

            # Stop a diverged run before it writes a snapshot: the last good one stays the newest.
            diverged = _find_non_finite(modules, num_gpus, device)
            if diverged is not None:
                _write_stats(stats_collector, stats_jsonl, stats_tfevents, dict(), state.cur_nimg, state.start_time)
                raise TrainingDivergedError(_divergence_message(diverged, state.cur_nimg, state.last_snapshot_pkl))

            # Image snapshot: the loss's pictures now; the fakes after the network snapshot of this tick.
            save_images = rank == 0 and image_snapshot_ticks is not None and (done or state.cur_tick % image_snapshot_ticks == 0)
            if save_images:
                loss.on_snapshot(run_dir, state.cur_nimg)

            # Save network snapshot; evaluate metrics on it.
            metric_results = dict()
            if network_snapshot_ticks is not None and (done or state.cur_tick % network_snapshot_ticks == 0):
                resume_out = _collect_resume_state(state, phases, ada, loss, sampler, device, num_gpus, run_options)
                snapshot_pkl, snapshot = _save_network_snapshot(run_dir, state.cur_nimg, training_set_kwargs, modules, resume_out, num_gpus, rank,
                                                                extra_modules, sample_transform_kwargs)
                state.last_snapshot_pkl = snapshot_pkl
                metric_results = _evaluate_metrics(metrics, metric_fn or calc_and_report_metrics, snapshot, snapshot_pkl,
                                                   run_dir, training_set_kwargs, num_gpus, rank, device)
                del snapshot
            if save_images:
                _save_fakes(G_ema, grid, os.path.join(run_dir, f'fakes{state.cur_nimg // 1000:06d}.png'), transform)
                training_set.on_snapshot(run_dir, state.cur_nimg, G=G_ema, loss=loss, transform=transform)

            # Collect statistics and write the logs.
            for phase in phases:
                training_stats.report0('Timing/' + phase.name, phase.timer.elapsed_ms if phase.timer.elapsed_ms is not None else [])
                phase.timer.elapsed_ms = None
            _write_stats(stats_collector, stats_jsonl, stats_tfevents, metric_results, state.cur_nimg, state.start_time)
            if progress_fn is not None:
                progress_fn(state.cur_nimg // 1000, total_kimg)

        # Start the next tick.
        state.cur_tick += 1
        state.tick_start_nimg = state.cur_nimg
        state.tick_start_time = time.time()
        state.maintenance_time = state.tick_start_time - tick_end_time
        if done:
            break

    # Done.
    if rank == 0:
        print()
        print('Exiting...')
    for log in (stats_jsonl, stats_tfevents):
        if log is not None:
            log.close()
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, loss=loss, cur_nimg=state.cur_nimg, cur_tick=state.cur_tick)

#----------------------------------------------------------------------------
