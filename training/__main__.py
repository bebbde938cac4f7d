"""`python -m training --config C [...]`: the `sdfl train` arguments, as torchrun starts each rank:

    torchrun --nproc_per_node=2 -m training --config training/configs/sdfl_68.yaml
"""
import sys

from sdfl_core.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
