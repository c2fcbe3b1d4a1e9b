"""`torchrun ... tests/ddp_train.py train ARGS`: the `itemtower` CLI with tests/fakes.fake_e5_encoder as the
distillation teacher (what conftest patches in-process), so tests/test_distributed.py can run the real entry point
in 2 processes without the e5 weights' encode time."""

import sys

from fakes import fake_e5_encoder

import itemtower.training.data as training_data

training_data.e5_encoder = fake_e5_encoder

from itemtower.cli import app  # noqa: E402

if __name__ == "__main__":
    app(args=sys.argv[1:], prog_name="itemtower")
