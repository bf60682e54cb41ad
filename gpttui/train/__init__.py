"""The training engine behind `gpttui.train.trainer.Trainer`: set-up, loop, metrics, DDP."""
