"""The audio networks built here: the paper's word CNNs (``audio_cnn``) and the keyword-spotting networks (``kws``)."""
