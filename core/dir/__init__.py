"""DIR (ICCV 2023): the network, its hand layer, checkpoints and crops."""
