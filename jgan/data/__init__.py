"""Data: whole datasets as arrays (TFDS, offline packages, image folders, synthetic) and the grain
batch pipeline.

    ds = load_dataset("mnist", split="train")          # tfds if prepared, else offline files
    ds = load_dataset("image_folder", image_dir="~/portraits", image_size=64)
    batches = make_batches(ds, batch_size=64, seed=0)  # batches[step] -> {"image", "label"}
    it = make_iterator(batches, start_step=0)          # it.get_state() goes in the checkpoint
"""

from jgan.data.base import SPLITS, ArrayDataset, CorruptDatasetError, DatasetNotFoundError
from jgan.data.offline import read_idx
from jgan.data.pipeline import (NO_LABEL, image_spec, make_batches, make_index_batches,
                                make_iterator)
from jgan.data.sources import (DATASET_OPTIONS, DATASETS, DEFAULT_SOURCES, SOURCES, load_dataset,
                               make_synthetic)
from jgan.data.transforms import resize_images

_FOLDER_DATASETS = ("image_folder", "celeb_a")


def from_config(data_config, *, split: str | None = None) -> ArrayDataset:
  """The dataset a config's ``data`` group names (its ``split``, or the one given).

  Keys used (see ``jgan.config.base_config``): ``name``, ``split``, ``sources``, ``data_dir``
  (TFDS), and by dataset:

  * ``dir`` -> ``image_dir`` for ``image_folder`` and ``celeb_a`` (an error for the others,
    which read no folder);
  * ``image_size`` -> ``image_size`` for every dataset when non-zero (center crop and resize,
    e.g. 32 for FashionMNIST in a 32x32 DCGAN); for ``image_folder`` 0 keeps the stored size,
    for ``celeb_a`` and ``avatars`` 0 means their default, 64;
  * ``num_examples`` -> ``num_examples`` for ``avatars`` and ``printed_digits`` when non-zero;
  * ``synthetic_shape``, ``synthetic_examples`` for ``synthetic``;
  * ``styles`` -> ``styles`` for ``printed_digits`` ("all"; "seen" or "heldout": one side of
    its style split, :mod:`jgan.data.printed_digits`); an error for the others when not "all".

  Keys missing from an older config (e.g. one read back from a run's ``config.json``) count as
  unset. With ``text_encoder`` set (text-to-image configs) the dataset is its captioned
  version, see :mod:`jgan.data.captioned`.
  """
  d = data_config
  if d.get("text_encoder", ""):
    from jgan.data import captioned  # pylint: disable=import-outside-toplevel
    return captioned.from_config(d, split=split or d.split)
  image_size = d.get("image_size", 0) or 0
  image_dir = d.get("dir", None)
  num_examples = d.get("num_examples", 0) or 0
  kwargs = {}
  if d.name in _FOLDER_DATASETS:
    kwargs = dict(image_dir=image_dir, image_size=image_size)
  elif image_dir:
    raise ValueError(f"config.data.dir={image_dir!r} is set, but dataset {d.name!r} reads no "
                     f"folder; folders are for {', '.join(_FOLDER_DATASETS)} (e.g. "
                     "--config.data.name=image_folder --config.data.sources=folder).")
  elif image_size:
    kwargs["image_size"] = image_size
  if d.name == "synthetic":
    kwargs.update(image_shape=tuple(d.synthetic_shape), num_examples=d.synthetic_examples)
  elif d.name in ("avatars", "printed_digits") and num_examples:
    kwargs["num_examples"] = num_examples
  styles = d.get("styles", "all") or "all"
  if styles != "all":
    if d.name != "printed_digits":
      raise ValueError(f"styles={styles!r} is set, but only printed_digits has rendering "
                       f"styles to split (dataset {d.name!r}): set it to 'all' "
                       "(--config.data.styles=all, or for a DTN's source "
                       "--config.source_data.styles=all --config.eval.heldout_style.styles=all).")
    kwargs["styles"] = styles
  return load_dataset(d.name, split=split or d.split, sources=tuple(d.sources),
                      data_dir=d.get("data_dir", None), **kwargs)


def extra_from_config(config) -> dict[str, ArrayDataset]:
  """The datasets a two-domain task reads beside ``config.data``: ``{"source": ...}`` from
  ``config.source_data`` when the config has that group (DTN), else none."""
  if "source_data" not in config:
    return {}
  return {"source": from_config(config.source_data)}


__all__ = [
    "ArrayDataset", "CorruptDatasetError", "DATASET_OPTIONS", "DATASETS", "DEFAULT_SOURCES",
    "DatasetNotFoundError", "NO_LABEL", "SOURCES", "SPLITS", "extra_from_config", "from_config", "image_spec",
    "load_dataset", "make_batches", "make_index_batches", "make_iterator", "make_synthetic",
    "read_idx", "resize_images",
]
