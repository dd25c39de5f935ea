"""The open hand model: generator and its anatomy parameters."""
