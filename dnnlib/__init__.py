"""Small framework-independent utilities (StyleGAN2-ADA compatible `dnnlib` package)."""

from .util import EasyDict, make_cache_dir_path
