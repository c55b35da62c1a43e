"""Data: whole datasets as arrays (TFDS, offline packages, synthetic) and the grain batch pipeline.

    ds = load_dataset("mnist", split="train")          # tfds if prepared, else offline files
    batches = make_batches(ds, batch_size=64, seed=0)  # batches[step] -> {"image", "label"}
    it = make_iterator(batches, start_step=0)          # it.get_state() goes in the checkpoint
"""

from jgan.data.offline import read_idx
from jgan.data.pipeline import (NO_LABEL, image_spec, make_batches, make_index_batches,
                                make_iterator)
from jgan.data.sources import (DATASETS, SOURCES, SPLITS, ArrayDataset, CorruptDatasetError,
                               DatasetNotFoundError, load_dataset, make_synthetic)



def from_config(data_config, *, split: str | None = None) -> ArrayDataset:
  """The dataset a config's ``data`` group names (its ``split``, or the one given)."""
  d = data_config
  kwargs = {}
  if d.name == "synthetic":
    kwargs = dict(image_shape=tuple(d.synthetic_shape), num_examples=d.synthetic_examples)
  return load_dataset(d.name, split=split or d.split, sources=tuple(d.sources),
                      data_dir=d.data_dir, **kwargs)


__all__ = [
    "ArrayDataset", "CorruptDatasetError", "from_config", "DATASETS", "DatasetNotFoundError", "NO_LABEL",
    "SOURCES", "SPLITS", "image_spec", "load_dataset", "make_batches", "make_index_batches",
    "make_iterator", "make_synthetic", "read_idx",
]
