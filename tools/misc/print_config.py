"""Print a config as the tools run it: its base files merged and the `--cfg-options` overrides applied, checked
as tools/train.py and tools/test.py check it (file type, misspelled top-level keys).

    python tools/misc/print_config.py configs/classification/vmamba-tiny_8xb128-300e_in1k.py
    python tools/misc/print_config.py CONFIG --cfg-options train_dataloader.batch_size=64
"""
import argparse
import sys

from mmengine.config import DictAction

from vmamba_mm import launch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Print the whole config, bases merged and overrides applied.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override config entries, e.g. model.backbone.drop_path_rate=0.1')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = launch.load_config(args.config, args.cfg_options)
    except launch.USER_ERRORS as error:
        sys.exit(f'{type(error).__name__}: {error}')
    print(f'Config:\n{cfg.pretty_text}')


if __name__ == '__main__':
    main()
