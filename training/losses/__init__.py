"""Training losses: ACR (paper section 3.5) and DIR (official code); named terms in a dict."""
