"""Built-in experiments: name -> module (each module defines ``get_config()``).

An explicit registry: adding an experiment means adding its file and one line here.
Experiments outside the repo run with ``python launch.py --config path/to/file.py``.
"""

EXPERIMENTS: dict[str, str] = {
    "gan_mnist": "experiments.gan_mnist",
    "gan_fashion_mnist": "experiments.gan_fashion_mnist",
    "mnist_classifier": "experiments.mnist_classifier",
    "fashion_mnist_classifier": "experiments.fashion_mnist_classifier",
    "avatars_classifier": "experiments.avatars_classifier",
    "avatar_attributes_classifier": "experiments.avatar_attributes_classifier",
    "digits_encoder": "experiments.digits_encoder",
    "dcgan_celeba": "experiments.dcgan_celeba",
    "wgan_gp_celeba": "experiments.wgan_gp_celeba",
    "dcgan_portraits": "experiments.dcgan_portraits",
    "dcgan_avatars": "experiments.dcgan_avatars",
    "wgan_gp_avatars": "experiments.wgan_gp_avatars",
    "dcgan_fashion_mnist32": "experiments.dcgan_fashion_mnist32",
    "hinge_r1_fashion_mnist32": "experiments.hinge_r1_fashion_mnist32",
    "wgan_gp_fashion_mnist32": "experiments.wgan_gp_fashion_mnist32",
    "dtn_digits": "experiments.dtn_digits",
    "dtn_bitmoji": "experiments.dtn_bitmoji",
    "dtn_bitmoji32": "experiments.dtn_bitmoji32",
    "t2i_avatars": "experiments.t2i_avatars",
    "t2i_flowers": "experiments.t2i_flowers",
}
