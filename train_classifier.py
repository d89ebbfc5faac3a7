"""Train the small classifier of the classifier metrics (mode10k, miss100k) on a labelled dataset zip and print its test accuracy."""

import os

import click
import numpy as np

import dnnlib
from dnnlib import cli
from metrics import classifier as classifier_module
from training import toy_lab

#----------------------------------------------------------------------------
# All images and integer class labels of a dataset: uint8 [N, C, H, W], int64 [N].

def _load_labelled(path):
    if toy_lab.is_toy_data(path):
        raise click.ClickException(f'--data={path} is toy data (2-D points without class labels); the classifier metrics are '
                                   f'for labelled image datasets. Toy runs count modes with the toy metrics (--metrics=toy2k)')
    try:
        dataset = dnnlib.util.construct_class_by_name(class_name='training.dataset.ImageFolderDataset', path=path, use_labels=True)
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}') from err
    try:
        if not dataset.has_labels or not dataset.has_onehot_labels:
            raise click.ClickException(f'--data: "{path}" has no class labels; dataset.json must hold "labels": '
                                       f'[[file, class index], ...] (dataset_tool.py writes them for labelled sources)')
        images = np.stack([dataset[idx][0] for idx in range(len(dataset))])
        labels = np.array([int(dataset.get_details(idx).raw_label) for idx in range(len(dataset))], dtype=np.int64)
        return images, labels, dataset.label_dim, dataset.name
    finally:
        dataset.close()

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--data', help='Labelled dataset zip or folder (class indices in dataset.json)', metavar='PATH', required=True)
@click.option('--out', help='Classifier file to write', metavar='FILE', required=True)
@click.option('--epochs', help='Training epochs', type=click.IntRange(min=1), default=30, show_default=True)
@click.option('--batch', help='Batch size', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--lr', help='Adam learning rate', type=cli.FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True)
@click.option('--width', help='Channels of the first convolution (then 2x, 4x)', type=click.IntRange(min=1), default=32, show_default=True)
@click.option('--test-frac', help='Share of the images held out for the test accuracy', type=cli.FiniteFloat(min=0, max=1, min_open=True, max_open=True), default=0.1, show_default=True)
@click.option('--seed', help='Seed of the split, the initial weights and the batch order', type=int, default=0, show_default=True)
@click.option('--device', help='Torch device  [default: cuda if available, else cpu]', metavar='DEVICE')
def main(data, out, epochs, batch, lr, width, test_frac, seed, device):
    """Train a small CNN classifier for the MODE score and #Miss / KL metrics.

    The network is MDGAN's "4-layer CNN": three 3x3 convolutions (the last two
    strided), global average pooling, a linear layer. It trains with Adam on
    cross-entropy (random translations of up to 1/8 of the image) on a seeded
    split of the dataset, prints the accuracy on the held-out images, and saves
    a file of tensors, numbers and strings only: the metrics read it with
    torch.load(weights_only=True), so loading it runs no code.

    \b
    Example:
      python train_classifier.py --data=~/datasets/mnist.zip --out=mnist-classifier.pt
      python calc_metrics.py --metrics=mode10k,miss100k --classifier=mnist-classifier.pt --network=snapshot.pkl
    """
    device = cli.pick_device(device)
    cli.check_output_file(out, '--out')  # before any training
    images, labels, num_classes, name = _load_labelled(data)
    num_test = int(round(len(images) * test_frac))
    if num_test < 1 or num_test >= len(images):
        raise click.ClickException(f'--test-frac={test_frac} leaves {num_test} test images of {len(images)}; '
                                   f'choose a share that keeps at least one image on each side')

    # Seeded split.
    order = np.random.default_rng(seed).permutation(len(images))
    test, train = order[:num_test], order[num_test:]
    print(f'Dataset "{name}": {len(images)} images of {list(images.shape[1:])}, {num_classes} classes; '
          f'{len(train)} train, {len(test)} test')

    # Train, test, save.
    net = classifier_module.fit_classifier(images[train], labels[train], num_classes, epochs=epochs, batch_size=batch, lr=lr,
                                           width=width, seed=seed, device=device, verbose=True)
    accuracy = classifier_module.classifier_accuracy(net, images[test], labels[test], device=device)
    print(f'Test accuracy: {accuracy:.4f} ({len(test)} images)')
    counts = np.bincount(labels[train], minlength=num_classes)
    if os.path.dirname(os.path.abspath(out)):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    classifier_module.save_classifier(out, net.cpu(), counts, accuracy, dataset_name=name)
    print(f'Saved {out}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
