import pytest
import yaml

from gankit import config as C
from gankit.api import make_config
from gankit.errors import ConfigError


def test_unknown_key_in_wrong_section_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"unknown config key train.lr_g; did you mean optim.lr_g\?"):
        C.apply_overrides(C.Config(), ["train.lr_g=1e-3"])


def test_typo_suggests_close_key():
    with pytest.raises(ConfigError, match="did you mean train.n_critic"):
        C.apply_overrides(C.Config(), ["train.n_critc=5"])


def test_overrides_parse_yaml_scalars_and_check_types():
    cfg = C.apply_overrides(C.Config(), ["optim.lr_g=3e-4", "train.tensorboard=false", "loss.name=hinge",
                                         "train.n_critic=5"])
    assert cfg.optim.lr_g == 3e-4 and cfg.train.tensorboard is False and cfg.loss.name == "hinge"
    assert cfg.train.n_critic == 5
    with pytest.raises(ConfigError, match="train.batch must be int"):
        C.apply_overrides(C.Config(), ["train.batch=lots"])
    with pytest.raises(ConfigError, match="section.key=value"):
        C.apply_overrides(C.Config(), ["train.batch"])


@pytest.mark.parametrize("name", C.recipe_names())
def test_every_recipe_loads_validates_and_round_trips(name, tmp_path):
    cfg = C.resolve(C.load_recipe(name))
    assert cfg.recipe == name
    C.save(cfg, tmp_path / "c.yaml")
    assert C.load_file(tmp_path / "c.yaml") == cfg
    first = (C.recipe_dir() / f"{name}.yaml").read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20  # `gankit list configs` shows this line


def test_validation_names_the_bad_key():
    with pytest.raises(ConfigError, match="model.norm_d='group' is not one of"):
        make_config(None, overrides=["model.norm_d=group"])
    with pytest.raises(ConfigError, match="unknown loss 'hing'; did you mean hinge"):
        make_config(None, overrides=["loss.name=hing"])
    with pytest.raises(ConfigError, match="train.batch must be >= 1"):
        make_config(None, batch=0)
    with pytest.raises(ConfigError, match="neither a registered dataset"):
        make_config(None, data="/no/such/place")


def test_recipe_smoothing_does_not_block_a_loss_switch():
    # the issue's own example: mlp_mnist smooths labels (0.9); switching to WGAN-GP must just work
    cfg = make_config("mlp_mnist", overrides=["loss.name=wgan_gp", "train.n_critic=5"])
    assert cfg.loss.real_label == 1.0 and cfg.reg.gp_weight == 10.0 and cfg.train.n_critic == 5


def test_loss_implied_defaults():
    assert make_config("mlp_mnist", overrides=["loss.name=wgan_gp", "loss.real_label=1.0"]).reg.gp_weight == 10.0
    assert make_config("mlp_mnist", overrides=["loss.name=wgan", "loss.real_label=1.0"]).reg.weight_clip == 0.01
    # an explicit value wins
    cfg = make_config("mlp_mnist", overrides=["loss.name=wgan_gp", "reg.gp_weight=5", "loss.real_label=1.0"])
    assert cfg.reg.gp_weight == 5.0


def test_seconds_alone_means_no_step_limit():
    cfg = make_config(None, seconds=10)
    assert cfg.train.steps == 0 and cfg.train.seconds == 10
    with pytest.raises(ConfigError, match="both are 0"):
        make_config(None, steps=0)


def test_yaml_recipe_path_and_unknown_section(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"model": {"name": "mlp"}, "trian": {"steps": 3}}))
    with pytest.raises(ConfigError, match="did you mean train"):
        C.load_recipe(str(p))
    p.write_text(yaml.safe_dump({"model": {"name": "mlp"}, "train": {"steps": 3}}))
    cfg = C.load_recipe(str(p))
    assert cfg.model.name == "mlp" and cfg.recipe == "mine"
    with pytest.raises(ConfigError, match="unknown recipe 'dcgan_mnst'; did you mean dcgan_mnist"):
        C.load_recipe("dcgan_mnst")


@pytest.mark.parametrize(("shape", "count", "recipe"), [
    ((1, 28, 28), 5000, C.DEFAULT_RECIPE),
    ((1, 32, 32), 60000, C.DEFAULT_RECIPE),
    ((1, 28, 28), 500, C.SMALL_DATA_RECIPE),  # few images
    ((3, 32, 32), 3000, C.SMALL_DATA_RECIPE),  # colour
    ((1, 64, 64), 9000, C.SMALL_DATA_RECIPE),  # larger
    ((2,), 1000, C.TOY_RECIPE),
])
def test_recipe_for_data_by_channels_size_and_count(shape, count, recipe):
    name, why = C.recipe_for_data(shape, count)
    assert name == recipe and str(count) in why
    assert name in C.recipe_names()


def test_a_streamed_digit_set_gets_the_unconditional_net():
    # self-conditioning clusters the images in memory; a prepared (memory-mapped) set is streamed
    assert C.recipe_for_data((1, 28, 28), 60000, streamed=True)[0] == C.STREAMED_RECIPE != C.DEFAULT_RECIPE


def test_data_without_a_recipe_keeps_every_key_the_user_set():
    cfg = make_config(None, data="shapes", overrides=["train.batch=16", "optim.lr_d=1e-4"], steps=7, seed=3)
    assert cfg.recipe == C.AUTO
    chosen = C.with_recipe(cfg, C.SMALL_DATA_RECIPE)
    assert chosen.recipe == C.SMALL_DATA_RECIPE and chosen.reg.diffaug  # the recipe's own key
    assert (chosen.train.batch, chosen.optim.lr_d, chosen.train.steps, chosen.train.seed) == (16, 1e-4, 7, 3)
    assert chosen.data.source == "shapes"
    assert make_config("dcgan_mnist_fast", data="shapes").recipe == "dcgan_mnist_fast"  # named: never replaced
    # a value the user gave that happens to equal the default recipe's is kept too (--steps 9000 is 9000)
    same = make_config(None, data="shapes", steps=C.load_recipe(None).train.steps)
    chosen = C.with_recipe(same, C.SMALL_DATA_RECIPE)
    assert chosen.train.steps == C.load_recipe(None).train.steps != C.load_recipe(C.SMALL_DATA_RECIPE).train.steps
    assert C.with_recipe(make_config(None, data="shapes", seconds=5), C.SMALL_DATA_RECIPE).train.steps == 0
