# The toy lab's one answer to "is this a toy run?" (docs/toy-lab.md).
#
# Toy data are 2-D points (training/toy_data.py); the toy networks are the papers' MLPs
# (training/toy_networks.py); the toy metrics and pictures are metrics/toy_metrics.py and
# training/toy_pictures.py. Every other module asks here rather than comparing class names itself.

from training import toy_data

TOY_DATASET_CLASS = 'training.toy_data.ToyDataset'
TOY_NETWORKS_MODULE = 'training.toy_networks'

def is_toy_data(path):
    """True for a toy spec (`toy:NAME,...`) or a file of points (.npy, .csv)."""
    return toy_data.is_toy_spec(path)

def is_toy_networks(net_kwargs):
    """True when G_kwargs or D_kwargs (anything with a class_name) build one of the toy MLPs."""
    name = (net_kwargs or {}).get('class_name') or ''
    return name.startswith(TOY_NETWORKS_MODULE + '.')

def is_toy_run(c):
    """True for a training config (train.py's `c`) whose data are toy points."""
    data = c.get('training_set_kwargs') or {}
    return data.get('class_name') == TOY_DATASET_CLASS or is_toy_networks(c.get('G_kwargs'))
