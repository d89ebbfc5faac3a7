"""Custom PyTorch ops with pure-PyTorch twins: bias_act, upfirdn2d, conv2d_resample and gradient fixes."""
