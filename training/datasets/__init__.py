"""Dataset readers (InterHand2.6M, FreiHAND, synthetic); samples as ``training.sample`` says."""
