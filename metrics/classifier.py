"""A user-given image classifier for the classifier metrics (MODE score, #Miss / KL of Che et al. 2017): the small CNN that train_classifier.py trains, its file format, safe loading, and the detector wrapper the metric passes use.

Classifier files (what --classifier / $SG2ADA_CLASSIFIER point to), either
  - a checkpoint written by train_classifier.py: a torch.save() dict of
    tensors, numbers and strings only, read with torch.load(weights_only=True),
    so loading runs no code from the file. It holds the architecture
    arguments of SmallClassifier, its state_dict, the class histogram of the
    labels it was trained on, and its test accuracy; or
  - a TorchScript module (torch.jit.save): loading runs the TorchScript
    code inside the file (not Python pickles). It must map float images
    [N, 3, H, W] in [-1, 1] at the generator's resolution to logits [N, K].
Anything else (a pickled nn.Module) is refused.
"""

import os
import zipfile

import numpy as np
import torch

from torch_utils import built_files
from torch_utils import misc

#----------------------------------------------------------------------------

FILE_KIND = 'sg2ada-classifier'
FORMAT_VERSION = 1
CLASSIFIER_ENV = 'SG2ADA_CLASSIFIER'

# A classifier file that is missing, unreadable or of another kind.
class ClassifierFileError(built_files.BuiltFileError):
    pass

FILE_FORMAT = built_files.FileFormat(FILE_KIND, FORMAT_VERSION, ('arch', 'state_dict', 'train_class_counts', 'test_accuracy'),
                                     title='Classifier file', noun='a classifier file from train_classifier.py',
                                     error=ClassifierFileError)
_FIX = 'train one with train_classifier.py, or give a TorchScript file'

#----------------------------------------------------------------------------
# The small CNN ("4-layer CNN" of Che et al. 2017, §4.1: three 3x3 convolutions, the
# last two strided, global average pooling and a linear layer). Input: float
# [N, in_channels, resolution, resolution] in [-1, 1]; output: logits [N, K].

class SmallClassifier(torch.nn.Module):
    def __init__(self,
        resolution,         # Input side in pixels.
        in_channels,        # 1 (grayscale) or 3 (RGB).
        num_classes,        # K.
        width       = 32,   # Channels of the first convolution (then 2x and 4x).
    ):
        super().__init__()
        self.resolution, self.in_channels, self.num_classes, self.width = int(resolution), int(in_channels), int(num_classes), int(width)
        self.conv1 = torch.nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.conv3 = torch.nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(4 * width, num_classes)

    def arch_kwargs(self):
        return dict(resolution=self.resolution, in_channels=self.in_channels, num_classes=self.num_classes, width=self.width)

    def forward(self, x):
        x = torch.nn.functional.leaky_relu(self.conv1(x), 0.2)
        x = torch.nn.functional.leaky_relu(self.conv2(x), 0.2)
        x = torch.nn.functional.leaky_relu(self.conv3(x), 0.2)
        return self.fc(x.mean(dim=[2, 3]))

#----------------------------------------------------------------------------
# Detector wrapper used in the metric passes: pixels -> class probabilities.
# Input: uint8 [N, 3, H, W] (grayscale datasets arrive repeated to 3
# channels). The pixels become [-1, 1] images; for a SmallClassifier they are
# averaged to one channel if it is grayscale and resized to its resolution.

class ClassifierProbs(torch.nn.Module):
    def __init__(self, net, in_channels=None, resolution=None):
        super().__init__()
        self.net = net
        self.in_channels = 0 if in_channels is None else int(in_channels)   # 0 = pass 3 channels
        self.resolution = 0 if resolution is None else int(resolution)      # 0 = keep the size
        self.eval().requires_grad_(False)

    def forward(self, img):
        x = misc.uint8_to_images(img) if img.dtype == torch.uint8 else img.to(torch.float32)
        if self.in_channels == 1:
            x = x.mean(dim=1, keepdim=True)
        if self.resolution > 0 and (x.shape[2] != self.resolution or x.shape[3] != self.resolution):
            shrink = min(x.shape[2], x.shape[3]) > self.resolution
            x = torch.nn.functional.interpolate(x, size=[self.resolution] * 2, mode='bilinear', align_corners=False, antialias=shrink)
        logits = self.net(x)
        return torch.softmax(logits.to(torch.float64), dim=1).to(torch.float32)

#----------------------------------------------------------------------------
# Save a trained SmallClassifier with what the metrics need to know.

def save_classifier(path, net, train_class_counts, test_accuracy, dataset_name=''):
    record = dict(
        kind            = FILE_KIND,
        format_version  = FORMAT_VERSION,
        arch            = net.arch_kwargs(),
        state_dict      = {k: v.detach().cpu() for k, v in net.state_dict().items()},
        train_class_counts = torch.as_tensor(np.asarray(train_class_counts), dtype=torch.int64),
        test_accuracy   = float(test_accuracy),
        dataset         = str(dataset_name),
    )
    built_files.write_record(record, path)

#----------------------------------------------------------------------------
# TorchScript archives hold compiled code; torch.save() archives do not.

def _is_torchscript_file(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any('/code/' in name for name in zf.namelist())

#----------------------------------------------------------------------------
# The classifier file to use: `path`, else $SG2ADA_CLASSIFIER. `what` names
# the metric in errors. Raises ValueError with the fix when there is none.

def classifier_path(path, what='classifier metrics'):
    if path is None:
        path = os.environ.get(CLASSIFIER_ENV) or None
    if path is None:
        raise ValueError(f'{what} need a classifier: pass --classifier=PATH (a file from train_classifier.py) '
                         f'or set {CLASSIFIER_ENV}=PATH')
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f'{what}: classifier file not found: "{path}"; train one with train_classifier.py')
    return path

# Load a classifier file (see the module docstring) as a ClassifierProbs on `device`.
def load_classifier(path, device='cpu'):
    if _is_torchscript_file(path):
        try:
            net = torch.jit.load(path, map_location='cpu')
        except RuntimeError as err:
            raise ValueError(f'"{path}" is not a loadable TorchScript classifier ({str(err).splitlines()[0]})') from err
        return ClassifierProbs(net).to(device)
    record = built_files.load_record(path, FILE_FORMAT, _FIX)   # plain data only: pickled code is refused
    net = SmallClassifier(**record['arch'])
    net.load_state_dict(record['state_dict'])
    probs = ClassifierProbs(net, in_channels=net.in_channels, resolution=net.resolution).to(device)
    probs.train_class_counts = record['train_class_counts'].numpy()
    probs.test_accuracy = record['test_accuracy']
    return probs

#----------------------------------------------------------------------------
# Training (train_classifier.py): Adam on cross-entropy, with a seeded
# shuffle per epoch and random x-translations of up to 1/8 of the image as
# augmentation. images: uint8 [N, C, H, W]; labels: int64 [N]. Returns the net.

def fit_classifier(images, labels, num_classes, epochs=30, batch_size=64, lr=1e-3, width=32, seed=0, device='cpu', verbose=False):
    images = torch.as_tensor(images)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    net = SmallClassifier(images.shape[2], images.shape[1], num_classes, width=width)
    _init_weights(net, gen)
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    shift = max(images.shape[2] // 8, 1)
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            x = misc.uint8_to_images(images[idx]).to(device)
            dx, dy = torch.randint(-shift, shift + 1, [2], generator=gen).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = torch.nn.functional.cross_entropy(net(x), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if verbose:
            print(f'epoch {epoch + 1:<4d} loss {total / len(order):.4f}')
    return net.eval().requires_grad_(False)

# Seeded initial weights: uniform in +-1/sqrt(fan_in), as torch's default layers, from `gen`.
def _init_weights(net, gen):
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                bound = 1 / np.sqrt(module.weight[0].numel())
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 2 * bound - bound)
                module.bias.copy_(torch.rand(module.bias.shape, generator=gen) * 2 * bound - bound)

# Accuracy of a SmallClassifier on uint8 images [N, C, H, W] with labels [N].
def classifier_accuracy(net, images, labels, batch_size=256, device='cpu'):
    correct = 0
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            x = misc.uint8_to_images(torch.as_tensor(images[lo:lo + batch_size])).to(device)
            correct += int((net(x).argmax(dim=1).cpu() == torch.as_tensor(labels[lo:lo + batch_size])).sum())
    return correct / max(len(images), 1)

#----------------------------------------------------------------------------
