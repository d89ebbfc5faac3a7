"""The digits rung: the image-space claims of the priors on a CPU-sized, imbalanced image set.

    python -m experiments.digits --jobs=2             # 3 seeds x (baseline, gmm, rf, posterior, mdgan, masked); ~75 core-minutes
    python -m experiments.digits --quick              # the machinery in about a minute

Data: scikit-learn's bundled 8x8 handwritten digits (offline), through `dataset_tool.py --source=digits` at 16 px,
with classes 7, 8, 9 made rare (15 % of their images kept: about 2 % of the set each). A classifier from
`train_classifier.py` (trained once on all 1,797 balanced digits) labels the generated images; the scores are
MDGAN's #Miss and KL of the class histogram against the training set's (Table 2), the share of the rare classes
(the data's is 6 %), and RFGAN's MS-SSIM of generated pairs (Table 1; lower = more diverse).

This is where PriorGAN's GMM on features, RFGAN's autoencoder and P²GAN's posterior + AdaIN meet images; MDGAN's
regularisers and the masked prior run here too (MDGAN's #Miss and KL come from its own MNIST experiment, which used
a larger set and many settings). None of the papers reports these digits, so there is no paper number: a row says
whether the prior beats our baseline here.
"""

import fcntl
import os
import subprocess
import sys
import tempfile

import numpy as np

from experiments import common

PAPER = 'Digits rung (all priors on imbalanced 16 px digits; no paper number)'
CLAIMS = {'digits': 'On imbalanced 16 px digits, a real-data prior lowers the KL between the generated and the data '
                    'class histograms compared with the same GAN without it (and keeps the rare classes).'}
DEFAULT_SEEDS = '0-2'

#----------------------------------------------------------------------------
# Settings, written once. Source: our choice (the papers have no digits experiment); reasons beside each.

SETTINGS = {
    'data': common.setting('sklearn load_digits at 16 px; classes 7,8,9 keep 15 % (about 2 % each, 6 % together)',
                           'issue 18 item 4: offline, imbalanced, a few rare classes'),
    'networks': common.setting('--cfg=demo (tiny StyleGAN2: cbase 1024, cmax 32, 2 mapping layers, batch 16, ADA)',
                               'our CPU config; a 16 px set makes it about 8 s/kimg on one quiet core'),
    'length': common.setting('24 kimg (1,500 G steps at batch 16), scored at 8, 16 and 24 kimg',
                             'issue 18 item 4 allows 5 min a run on 2 cores: 24 kimg is about 3.5 min on one; at the demo config\'s own 8 kimg '
                             'the fakes are still blobs, by 24 kimg they are digits and the baseline has collapsed onto a few of them'),
    'gmm': common.setting('--prior=gmm --prior-feature=tiny --prior-components=10',
                          'PriorGAN on the offline random conv features (the paper\'s ResNet101 needs a download); 10 components for 10 classes'),
    'rf': common.setting('--prior=rf with an autoencoder from build_rf.py, 4 kimg', 'RFGAN; the default 200 kimg AE would cost 16x the GAN here'),
    'posterior': common.setting('--prior=posterior (defaults)', 'P²GAN with its own defaults on images'),
    'mdgan': common.setting('--prior=mdgan (defaults: Reg-GAN, lambda1 0.2, lambda2 0.4, E shaped like D)',
                            'MDGAN\'s own metrics (#Miss, KL of a digit classifier, Table 2) on digits, as in its MNIST experiment'),
    'masked': common.setting('--prior=masked --masked-pool=8 (otherwise defaults: r 0.5, pre-sample 2x, selection in both steps)',
                             'Goerttler & Kloft\'s masked prior on images; images are generated through D from 8 candidates each '
                             '(the default 64 makes every image grid and score pass about a minute per 1,000 images here)'),
    'classifier': common.setting('train_classifier.py on all 1,797 digits at 16 px, 30 epochs', 'MDGAN\'s 4-layer CNN'),
    'evaluation': common.setting('2,000 generated images of the final G_ema; MS-SSIM over 500 generated pairs', 'cheap and stable enough'),
}
RARE = (7, 8, 9)
ARMS = {
    'baseline': [],
    'gmm': ['--prior=gmm', '--prior-feature=tiny', '--prior-components=10'],
    'rf': ['--prior=rf'],              # + --rf-ae=<prepared file>
    'posterior': ['--prior=posterior'],
    'mdgan': ['--prior=mdgan'],
    'masked': ['--prior=masked', '--masked-pool=8'],
}
FULL = dict(kimg=24, ae_kimg=4, classifier_epochs=30, num_gen=2000, num_pairs=500, est_sec=240, snap_args=['--tick=4', '--snap=2'])
QUICK = dict(kimg=0.1, ae_kimg=0.1, classifier_epochs=1, num_gen=200, num_pairs=50, est_sec=25, snap_args=['--snap=1000'])

#----------------------------------------------------------------------------
# The data, the classifier and the autoencoder: built once per machine (a lock serialises the workers).

def _run(cmd):
    proc = subprocess.run([sys.executable] + cmd, cwd=common.REPO, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}')

def _root(quick):
    root = os.path.join(tempfile.gettempdir(), f'sg2ada-digits-v1-{"quick" if quick else "full"}')
    os.makedirs(root, exist_ok=True)
    return root

def prepare(quick, what=('data',)):
    """Paths of the prepared files; builds those named in `what` (data, classifier, ae) once, each under its own lock,
    so training runs wait only for what they need (the autoencoder only for the rf arm, the classifier only at scoring)."""
    size, root = (QUICK if quick else FULL), _root(quick)
    files = dict(data=os.path.join(root, 'digits16-rare789.zip'), balanced=os.path.join(root, 'digits16.zip'),
                 classifier=os.path.join(root, 'classifier.pt'), ae=os.path.join(root, 'rf-ae.pt'))
    builders = dict(
        data=lambda: (_run(['dataset_tool.py', '--source=digits', f'--dest={files["data"]}', '--width=16', '--height=16',
                            '--digits-rare=' + ','.join(map(str, RARE)), '--digits-rare-frac=0.15']),
                      _run(['dataset_tool.py', '--source=digits', f'--dest={files["balanced"]}', '--width=16', '--height=16'])),
        classifier=lambda: _run(['train_classifier.py', f'--data={files["balanced"]}', f'--out={files["classifier"]}',
                                 f'--epochs={size["classifier_epochs"]}', '--device=cpu']),
        ae=lambda: _run(['build_rf.py', f'--data={files["data"]}', '--cfg=demo', f'--rf-ae-kimg={size["ae_kimg"]}', f'--out={files["ae"]}']))
    for name in ('data',) + tuple(w for w in what if w != 'data'):
        with open(os.path.join(root, f'.lock-{name}'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(files[name if name != 'data' else 'balanced']):
                builders[name]()
    return files

#----------------------------------------------------------------------------

def tasks(quick, seeds, only):
    size = QUICK if quick else FULL
    seeds = seeds[:1] if quick else seeds
    out = []
    for label, args in ARMS.items():
        for seed in seeds:
            train_args = ['--cfg=demo', f'--kimg={size["kimg"]}', f'--seed={seed}', '--metrics=none'] + size['snap_args'] + args
            out.append(common.Task(module=__name__, claim='digits', arm=label, seed=seed, args=train_args,
                                   est_sec=size['est_sec'] * (1.3 if label != 'baseline' else 1.0), extra=dict(quick=quick)))
    return out

def _images(G, num, seed, transform):
    import torch  # pylint: disable=import-outside-toplevel
    from training import sampling  # pylint: disable=import-outside-toplevel
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, num, 250):
        z = torch.randn([min(250, num - start), G.z_dim], generator=gen)
        c = torch.zeros([z.shape[0], G.c_dim])
        img = sampling.sample(G, z, c, transform, noise_mode='const')
        out.append((img * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    return torch.cat(out)

def scores(snapshot_pkl, files, num_gen, num_pairs, seed=123):
    """#Miss, KL, rare share and MS-SSIM of a snapshot's generated images (plain G(z) plus its sample transform)."""
    import torch  # pylint: disable=import-outside-toplevel
    from metrics import classifier as classifier_module, classifier_metrics, ms_ssim  # pylint: disable=import-outside-toplevel
    from training import sampling  # pylint: disable=import-outside-toplevel
    snapshot = common.load_snapshot(snapshot_pkl)
    G = snapshot['G_ema'].eval().requires_grad_(False)
    transform = sampling.load_sample_transform(snapshot)
    with torch.no_grad():
        img = _images(G, num_gen, seed, transform)
        net = classifier_module.load_classifier(files['classifier'])
        predicted = torch.cat([net(img[i:i + 500].repeat(1, 3, 1, 1)).argmax(1) for i in range(0, len(img), 500)]).numpy()
        pairs = ms_ssim.ms_ssim(img[0:2 * num_pairs:2].double(), img[1:2 * num_pairs:2].double())
    counts = _train_counts(files['data'])
    marginal = counts / counts.sum()
    return dict(miss=float(classifier_metrics.missing_classes(predicted, 10)),
                kl=float(classifier_metrics.class_histogram_kl(predicted, marginal)),
                rare_share=float(np.isin(predicted, RARE).mean()),
                msssim=float(pairs.mean()))

def _train_counts(path):
    import json, zipfile  # pylint: disable=import-outside-toplevel,multiple-imports
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read('dataset.json'))
    return np.asarray(meta['digits']['class_counts'], dtype=np.float64)

def run(task):
    quick = task.extra.get('quick', False)
    size = QUICK if quick else FULL
    files = prepare(quick, ('data', 'ae') if task.arm == 'rf' else ('data',))
    args = [f'--data={files["data"]}'] + list(task.args)
    if task.arm == 'rf':
        args.append(f'--rf-ae={files["ae"]}')
    run_dir = common.train(args, task.workdir)
    snaps = common.snapshots(run_dir)
    if not snaps:
        raise RuntimeError(f'{run_dir}: no network snapshot')
    snaps = snaps[1:] if len(snaps) > 1 else snaps   # not the untrained one of tick 0 (a tiny run's last one overwrites it)
    files = prepare(quick, ('classifier',))
    curve = [dict(kimg=kimg, **scores(path, files, size['num_gen'], size['num_pairs'])) for kimg, path in snaps]
    out = {key: value for key, value in curve[-1].items() if key != 'kimg'}   # the verdict scores the last snapshot
    out.update(curve=curve, run_dir=run_dir)
    return out

#----------------------------------------------------------------------------

def _fakes_picture(done, path):
    import PIL.Image, PIL.ImageDraw  # pylint: disable=import-outside-toplevel,multiple-imports
    tiles = []
    for label in ARMS:
        runs = [r for t, r in done if t.arm == label and 'run_dir' in r and os.path.isdir(r['run_dir'])]
        if not runs:
            continue
        fakes = sorted(f for f in os.listdir(runs[0]['run_dir']) if f.startswith('fakes') and f.endswith('.png'))
        if fakes:
            img = PIL.Image.open(os.path.join(runs[0]['run_dir'], fakes[-1])).convert('RGB')
            img.thumbnail((256, 256))
            tiles.append((label, img))
    if not tiles:
        return None
    fig = PIL.Image.new('RGB', (sum(t.width + 6 for _, t in tiles), max(t.height for _, t in tiles) + 16), (255, 255, 255))
    draw, x = PIL.ImageDraw.Draw(fig), 0
    for label, img in tiles:
        draw.text((x + 2, 1), label, fill=(0, 0, 0))
        fig.paste(img, (x, 16))
        x += img.width + 6
    return common.save_png(fig, path)

# MS-SSIM of random pairs of training images: the diversity the generated pairs should approach.
def _real_msssim(path, num_pairs, seed=123):
    import torch  # pylint: disable=import-outside-toplevel
    from metrics import ms_ssim  # pylint: disable=import-outside-toplevel
    from training import dataset as dataset_module  # pylint: disable=import-outside-toplevel
    data = dataset_module.ImageFolderDataset(path=path)
    idx = np.random.RandomState(seed).choice(len(data), size=min(2 * num_pairs, len(data) // 2 * 2), replace=False)
    img = torch.from_numpy(np.stack([data[int(i)][0] for i in idx]))
    return float(ms_ssim.ms_ssim(img[0::2].double(), img[1::2].double()).mean())

# Mean over seeds of a result key at each scored length: "8 kimg: 1.23, 16 kimg: ...".
def _curve_text(done, label, key):
    by_kimg = {}
    for task, result in done:
        if task.arm == label:
            for point in result.get('curve', []):
                by_kimg.setdefault(point['kimg'], []).append(point[key])
    return ', '.join(f'{kimg} kimg {np.mean(values):.2f}' for kimg, values in sorted(by_kimg.items()))

def _mechanism(done, base, method, label, real_rare, real_msssim):
    share = lambda a: f'{a["mean"]:.2f} ± {a["std"]:.2f}'
    text = (f'Rare-class share of the generated images: baseline {share(base["rare_share"])}, {label} {share(method["rare_share"])}, '
            f'data {real_rare:.2f}. MS-SSIM of generated pairs (higher = less diverse): baseline {share(base["msssim"])}, '
            f'{label} {share(method["msssim"])}, pairs of training images {real_msssim:.2f}.')
    if base['msssim']['mean'] > real_msssim + 0.2:
        text += (' The baseline fails the way the papers say GANs fail: its pairs are far more alike than real pairs (mode collapse '
                 'onto a few digits; see the fakes).')
    for name, key in (('KL', 'kl'), ('MS-SSIM', 'msssim')):
        text += (f' {name} over training (mean of seeds): baseline {_curve_text(done, "baseline", key)}; '
                 f'{label} {_curve_text(done, label, key)}.')
    return text

def finish(claim_id, done, ctx):
    base = {key: common.arms_of(done, 'baseline', key) for key in ('kl', 'miss', 'rare_share', 'msssim')}
    picture = _fakes_picture(done, os.path.join(ctx.pictures_dir, 'digits-fakes.png'))
    pictures = [os.path.relpath(picture, common.REPO)] if picture else []
    size, data_path = (QUICK if ctx.quick else FULL), prepare(ctx.quick)['data']
    counts = _train_counts(data_path)
    real_rare = float(counts[list(RARE)].sum() / counts.sum())
    real_msssim = _real_msssim(data_path, size['num_pairs'])
    errors = [f'{t.arm} seed {t.seed}: {r["error"][-300:]}' for t, r in done if 'error' in r]
    last = None
    for label in ARMS:
        if label == 'baseline':
            continue
        method = {key: common.arms_of(done, label, key) for key in base}
        extra = []
        for key, name in (('miss', '#Miss'), ('rare_share', f'rare-class share (data {real_rare:.3f})'), ('msssim', 'MS-SSIM of pairs')):
            extra += [dict(base[key], label=f'baseline: {name}'), dict(method[key], label=f'{label}: {name}')]
        last = common.write_result(
            ctx.out_dir, claim_id=f'digits-{label}', paper=PAPER, claim=CLAIMS['digits'].replace('a real-data prior', f'--prior={label}'),
            paper_number='none (no digits experiment in the papers)', metric='KL(generated class histogram || data class histogram), lower is better',
            command=ctx.command, settings=common.settings_text(SETTINGS),
            deviations=['not a paper experiment: the rung where the image-space priors meet images on a CPU budget',
                        f'{size["kimg"]} kimg of a tiny config is far from convergence; compare arms, not absolute numbers'],
            baseline=dict(base['kl'], label='baseline (--cfg=demo, no prior)'), method=dict(method['kl'], label=f'--prior={label}'),
            extra_arms=extra, verdict=common.verdict(base['kl'], method['kl'], better='lower'),
            mechanism=_mechanism(done, base, method, label, real_rare, real_msssim), tried=('failed runs: ' + '; '.join(errors)) if errors else 'one setting per prior (its defaults), no search',
            pictures=pictures, machine=common.machine(), date=common.now())
    return last

main = common.make_main(__name__, DEFAULT_SEEDS)

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
