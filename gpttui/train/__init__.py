"""The training engine behind `gpttui.trainer.Trainer`: set-up, loop, metrics, DDP."""
