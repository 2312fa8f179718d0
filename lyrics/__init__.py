"""The built-in corpus: original carol lyrics written for carolgen, one song a .txt file."""
